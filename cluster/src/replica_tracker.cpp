#include "replica_tracker.h"

#include <algorithm>

namespace ringbus::cluster {

ReplicaTracker::ReplicaTracker(std::string leader, std::vector<std::string> isr, std::chrono::milliseconds max_lag,
                               Clock::time_point now)
    : leader_(std::move(leader)), max_lag_(max_lag) {
  // A mirror is given max_lag from the start to show it is caught up.
  for (const auto& n : isr)
    if (n != leader_) mirrors_[n].caught_up_at = now;
  set_isr(std::move(isr));
}

void ReplicaTracker::leader_progress(std::uint64_t end, std::uint64_t durable, std::uint64_t bytes,
                                     Clock::time_point now) {
  if (ends_.empty() || end != ends_.back().second) ends_.emplace_back(now, end);
  if (bytes < leader_bytes_) {  // a count begun again (a new ring)
    spots_.clear();
    spot_gap_ = 1;
  }
  leader_bytes_ = bytes;
  if (spots_.empty() || end >= spots_.back().first + spot_gap_) {
    spots_.emplace_back(end, bytes);
    prune_spots();
  }
  leader_end_ = end;
  leader_durable_ = durable;
  // With nothing new written, a mirror that holds everything stays caught up.
  for (auto& [name, m] : mirrors_)
    if (m.written >= leader_end_) m.caught_up_at = now;
  recompute();
}

void ReplicaTracker::acknowledged(const std::string& mirror, std::uint64_t written, std::uint64_t durable,
                                  Clock::time_point now) {
  if (mirror == leader_) return;
  Mirror& m = mirrors_[mirror];
  m.written = std::max(m.written, written);
  m.durable = std::max(m.durable, durable);
  m.caught_up_at = std::max(m.caught_up_at, caught_up_as_of(m.written, now));
  recompute();
}

ReplicaTracker::Clock::time_point ReplicaTracker::caught_up_as_of(std::uint64_t written, Clock::time_point now) const {
  if (written >= leader_end_) return now;
  // The end was ends_[i].second until ends_[i + 1].first.
  Clock::time_point as_of{};
  for (std::size_t i = 0; i + 1 < ends_.size(); ++i)
    if (ends_[i].second <= written) as_of = ends_[i + 1].first;
  return as_of;
}

void ReplicaTracker::set_isr(std::vector<std::string> isr) {
  isr_ = std::move(isr);
  recompute();
}

std::vector<std::string> ReplicaTracker::lagging(Clock::time_point now) const {
  std::vector<std::string> out;
  for (const auto& n : isr_) {
    if (n == leader_) continue;
    const auto it = mirrors_.find(n);
    if (it == mirrors_.end() || now - it->second.caught_up_at > max_lag_) out.push_back(n);
  }
  return out;
}

std::vector<std::string> ReplicaTracker::caught_up() const {
  std::vector<std::string> out;
  for (const auto& [name, m] : mirrors_) {
    if (std::find(isr_.begin(), isr_.end(), name) != isr_.end()) continue;
    if (m.durable >= hw_) out.push_back(name);
  }
  return out;
}

std::vector<ReplicaTracker::Progress> ReplicaTracker::progress() const {
  std::vector<Progress> out;
  for (const auto& [name, m] : mirrors_) out.push_back({name, m.written, m.durable, lag_bytes(m.written)});
  return out;
}

std::uint64_t ReplicaTracker::lag_bytes(std::uint64_t written) const {
  if (spots_.empty() || written >= leader_end_) return 0;
  const auto above = std::upper_bound(spots_.begin(), spots_.end(), written,
                                      [](std::uint64_t w, const auto& spot) { return w < spot.first; });
  if (above != spots_.begin()) return leader_bytes_ - std::prev(above)->second;
  // Below every spot: the bytes since the first, and the records under it
  // at the average size seen since (none seen: nothing).
  const auto& [first, first_bytes] = spots_.front();
  const std::uint64_t seen = leader_bytes_ - first_bytes;
  const double per_record = leader_end_ > first ? static_cast<double>(seen) / static_cast<double>(leader_end_ - first) : 0;
  return seen + static_cast<std::uint64_t>(per_record * static_cast<double>(first - written));
}

void ReplicaTracker::prune_spots() {
  std::uint64_t slowest = leader_end_;
  for (const auto& [name, m] : mirrors_) slowest = std::min(slowest, m.written);
  while (spots_.size() > 1 && spots_[1].first <= slowest) spots_.pop_front();
  if (spots_.size() > kMaxSpots) {
    // Every second spot goes, and new ones come twice as far apart: the
    // spots stay evenly spread over what the mirrors still need.
    std::deque<std::pair<std::uint64_t, std::uint64_t>> kept;
    for (std::size_t i = 0; i < spots_.size(); i += 2) kept.push_back(spots_[i]);
    spots_ = std::move(kept);
    spot_gap_ *= 2;
  } else if (spots_.size() < kMaxSpots / 4 && spot_gap_ > 1) {
    spot_gap_ /= 2;
  }
}

void ReplicaTracker::recompute() {
  std::uint64_t hw = leader_durable_;
  for (const auto& n : isr_) {
    if (n == leader_) continue;
    const auto it = mirrors_.find(n);
    hw = std::min(hw, it == mirrors_.end() ? 0 : it->second.durable);
  }
  hw_ = std::max(hw_, hw);
}

}  // namespace ringbus::cluster
