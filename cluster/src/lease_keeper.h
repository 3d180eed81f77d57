// A node's etcd lease, kept alive on a thread of its own, and the clock by
// which the node fences itself (cluster/README.md, "Leases and fencing").
//
// Whatever a node holds in etcd under its lease (its membership, its
// leaderships) is gone once etcd lets the lease expire; another node may
// then take over. So the node must stop acting on the lease *before* etcd
// can have let it expire: valid() is true only until the time the last
// answered keep-alive was *sent* plus the TTL etcd answered, less a margin
// for the two clocks' drift. Counting from the send, not the answer, is what
// makes it safe: etcd restarted the TTL at some moment after the send.
//
// valid() reads the clock itself, so a process that was stopped (SIGSTOP)
// or starved past that time sees false at once when it runs again, before
// it acknowledges anything, whatever the keeper thread has or has not done.
// An expired or revoked lease (a keep-alive answered with TTL 0) is lost
// for good: on_lost is called once and the node starts over with a new one.
//
// Threading: valid() and the accessors from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <time.h>

#include "etcd_client.h"

namespace ringbus::cluster {

// CLOCK_BOOTTIME: unlike steady_clock (CLOCK_MONOTONIC) it runs on while the
// machine is suspended, as the time at etcd does.
struct BootClock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<BootClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    return time_point(duration(ts.tv_sec * 1'000'000'000LL + ts.tv_nsec));
  }
};

struct LeaseOptions {
  std::chrono::seconds ttl{2};
  // How often a keep-alive is sent (0: a third of the TTL).
  std::chrono::milliseconds keepalive_every{0};
  // valid() ends this much before the TTL runs out (0: a tenth of the TTL,
  // at least 50 ms): etcd's clock may run faster than ours.
  std::chrono::milliseconds margin{0};
};

class LeaseKeeper {
 public:
  using Clock = BootClock;
  // Grants a lease (on a client of its own) and starts keeping it alive.
  // `on_lost(why)` is called once, from the keeper's thread, when the lease
  // has expired or was revoked at etcd.
  static Result<std::unique_ptr<LeaseKeeper>> start(const EtcdOptions& etcd, LeaseOptions options,
                                                    std::function<void(const std::string&)> on_lost = {});
  // Stops the thread and revokes the lease (best effort): a node that shuts
  // down gives up what it held at once, not a TTL later.
  ~LeaseKeeper();

  std::int64_t id() const noexcept { return id_; }
  bool valid() const noexcept { return Clock::now() < valid_until(); }
  Clock::time_point valid_until() const noexcept { return Clock::time_point(Clock::duration(until_.load())); }
  // When the keep-alive (or grant) that valid_until() counts from was sent.
  Clock::time_point last_renewal_sent() const noexcept {
    return Clock::time_point(Clock::duration(sent_.load()));
  }
  bool lost() const noexcept { return lost_.load(); }

 private:
  LeaseKeeper(std::unique_ptr<EtcdClient> client, LeaseOptions options,
              std::function<void(const std::string&)> on_lost, std::int64_t id, Clock::time_point sent);
  void run();
  void renewed(Clock::time_point sent, std::int64_t ttl_s);

  std::unique_ptr<EtcdClient> client_;
  LeaseOptions options_;
  std::function<void(const std::string&)> on_lost_;
  std::int64_t id_;
  std::atomic<Clock::rep> until_{0};
  std::atomic<Clock::rep> sent_{0};
  std::atomic<bool> lost_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // under mu_
  std::thread thread_;
};

}  // namespace ringbus::cluster
