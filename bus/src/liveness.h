// Whether a client process of an instance is alive, across pid namespaces.
//
// A pid says nothing outside its namespace: a client in a container that
// shares /dev/shm with the broker but not its pids (the usual --ipc=host)
// writes a pid that means another process, or none, here. So each client
// process takes a *client token* per instance: a number N (1..2^31-1) with
// a file <instance>/clients/N on which it holds an OFD write lock for as long
// as it lives. The kernel drops the lock when the process dies, whatever its
// namespace, and lock_is_held() sees that from anywhere. Gating slots, group
// members and chunk claims record the token where they used to record the pid.
//
// Tokens are random and made with link(2) (never two live ones alike); the
// broker unlinks the files of dead clients (sweep_dead_clients). A child made
// by fork() drops its parent's token and takes its own on first use.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "ringbus/result.h"

namespace ringbus::detail {

// The directory of the client files (<instance directory>/clients).
std::string clients_directory(const std::string& instance_dir);

// This process's token for the instance whose directory is given; made on
// first use (then cached). Thread-safe.
Result<std::int32_t> client_token(const std::string& instance_dir);

// True if the client with this token is gone (its lock is free or its file
// is gone). Tokens <= 0 are never dead (0: none; negative: reserved, see
// kBrokerGateOwner). Two or three system calls: for reapers, not hot paths.
bool client_is_dead(const std::string& instance_dir, std::int32_t token) noexcept;

// Drops this process's token for the instance (its broker is closing it).
void release_client_token(const std::string& instance_dir);

// How many times this process was made by fork() from the one that first
// asked for a token: state tied to a token (a publisher slot) that a child
// finds recorded under another generation is its parent's.
inline std::atomic<std::uint32_t> g_fork_generation{0};  // bumped in the child, at fork()
inline std::uint32_t fork_generation() noexcept { return g_fork_generation.load(std::memory_order_relaxed); }

// Unlinks the files of dead clients (the broker, at start and now and then).
// Returns how many.
std::size_t sweep_dead_clients(const std::string& instance_dir);

}  // namespace ringbus::detail
