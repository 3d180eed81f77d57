// The leader's view of one partition's replicas (cluster/README.md,
// "Leadership and the in-sync set"): what each mirror acknowledged, which
// ones fell out of sync, and the high watermark, Kafka's way:
//
// - a mirror is caught up as of the last moment the leader's log end was
//   no further than what the mirror has written (so a mirror that trails
//   a steady stream by a little stays caught up); it lags once it has not
//   been caught up for max_lag (time, not offsets: a burst does not throw a
//   healthy mirror out);
// - the high watermark is the lowest durable offset over the in-sync set as
//   etcd holds it, the leader's own included, and never moves back;
// - the set shrinks in etcd (a swap) before the high watermark relies on
//   the smaller set: the caller swaps, then set_isr(); a mirror joins again
//   once what it made durable reaches the high watermark (so joining never
//   pulls the high watermark back).
//
// Threading: one thread (the leader's replication thread), or a lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

namespace ringbus::cluster {

class ReplicaTracker {
 public:
  using Clock = std::chrono::steady_clock;
  ReplicaTracker(std::string leader, std::vector<std::string> isr, std::chrono::milliseconds max_lag,
                 Clock::time_point now);

  // The leader's own log: its end, and its durable offset by its policy.
  void leader_progress(std::uint64_t end, std::uint64_t durable, Clock::time_point now);
  void acknowledged(const std::string& mirror, std::uint64_t written, std::uint64_t durable, Clock::time_point now);
  // The in-sync set as etcd now holds it (the leader first).
  void set_isr(std::vector<std::string> isr);
  const std::vector<std::string>& isr() const noexcept { return isr_; }

  // In-sync mirrors not caught up for max_lag: to take out of the set.
  std::vector<std::string> lagging(Clock::time_point now) const;
  // Mirrors out of the set whose durable offset reached the high watermark.
  std::vector<std::string> caught_up() const;
  std::uint64_t high_watermark() const noexcept { return hw_; }
  std::uint64_t leader_end() const noexcept { return leader_end_; }
  // What each mirror that acknowledged anything has written and made durable.
  struct Progress {
    std::string node;
    std::uint64_t written = 0;
    std::uint64_t durable = 0;
  };
  std::vector<Progress> progress() const;

 private:
  struct Mirror {
    std::uint64_t written = 0;
    std::uint64_t durable = 0;
    Clock::time_point caught_up_at;
  };
  void recompute();
  // The last moment the leader's end was at or below `written`.
  Clock::time_point caught_up_as_of(std::uint64_t written, Clock::time_point now) const;

  std::string leader_;
  std::vector<std::string> isr_;
  std::chrono::milliseconds max_lag_;
  std::uint64_t leader_end_ = 0;
  // When the leader's end changed, and to what (increasing), back to about
  // twice max_lag: the end was ends_[i].second from ends_[i].first on.
  std::deque<std::pair<Clock::time_point, std::uint64_t>> ends_;
  std::uint64_t leader_durable_ = 0;
  std::map<std::string, Mirror> mirrors_;
  std::uint64_t hw_ = 0;
};

}  // namespace ringbus::cluster
