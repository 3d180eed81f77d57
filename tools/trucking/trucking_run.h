// What the trucking programs share to run as processes: clocks, Ctrl-C and
// SIGTERM handling, and joining a group again after the broker restarted.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "ringbus/group.h"

namespace ringbus::trucking {

std::int64_t steady_ms() noexcept;
std::int64_t realtime_ms() noexcept;
std::int64_t realtime_ns() noexcept;  // as record timestamps
void sleep_until_ms(std::int64_t steady_deadline_ms);

// SIGINT and SIGTERM set a flag the programs' loops look at.
void install_stop_handlers();
bool stop_requested() noexcept;

// Joins `group` on `topic`, retrying every 100 ms for up to timeout_s (the
// topic may not exist yet: the broker is restarting). Prints the last error
// and returns nullopt if it never works (or a stop was requested); an error
// that waiting cannot cure (invalid_argument, version_mismatch) at once.
std::optional<GroupConsumer> join_group(const std::string& program, const std::string& instance, const std::string& topic,
                                        const std::string& group, const GroupOptions& options, double timeout_s);

}  // namespace ringbus::trucking
