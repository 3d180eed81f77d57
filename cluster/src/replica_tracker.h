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
// - a mirror's lag in bytes is read off (offset, bytes) spots the leader's
//   progress leaves: the flusher's running count of bytes written
//   (PartitionHeader::log_bytes) at the ends it reported, thinned to a few
//   thousand. It counts from the spot at or below the mirror's offset; for
//   a mirror below the first spot (behind since this node began to lead),
//   the rest is estimated from the average record size seen.
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

  // The leader's own log: its end, its durable offset by its policy, and
  // the bytes written below its end (a running count).
  void leader_progress(std::uint64_t end, std::uint64_t durable, std::uint64_t bytes, Clock::time_point now);
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
  // What each mirror that acknowledged anything has written and made
  // durable, and the bytes of the leader's log it has not written.
  struct Progress {
    std::string node;
    std::uint64_t written = 0;
    std::uint64_t durable = 0;
    std::uint64_t lag_bytes = 0;
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
  std::uint64_t lag_bytes(std::uint64_t written) const;
  // Drops the spots no mirror needs (below the slowest one's), and every
  // second one when there are too many.
  void prune_spots();

  std::string leader_;
  std::vector<std::string> isr_;
  std::chrono::milliseconds max_lag_;
  std::uint64_t leader_end_ = 0;
  // When the leader's end changed, and to what (increasing), back to about
  // twice max_lag: the end was ends_[i].second from ends_[i].first on.
  std::deque<std::pair<Clock::time_point, std::uint64_t>> ends_;
  std::uint64_t leader_durable_ = 0;
  std::uint64_t leader_bytes_ = 0;  // written below leader_end_ (the running count)
  // (offset, bytes written below it), both increasing, from the leader's
  // progress, at least spot_gap_ offsets apart: at most kMaxSpots.
  std::deque<std::pair<std::uint64_t, std::uint64_t>> spots_;
  std::uint64_t spot_gap_ = 1;
  static constexpr std::size_t kMaxSpots = 4096;
  std::map<std::string, Mirror> mirrors_;
  std::uint64_t hw_ = 0;
};

}  // namespace ringbus::cluster
