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

void ReplicaTracker::leader_progress(std::uint64_t end, std::uint64_t durable, Clock::time_point now) {
  if (ends_.empty() || end != ends_.back().second) ends_.emplace_back(now, end);
  while (ends_.size() > 1 && ends_[1].first < now - 2 * max_lag_) ends_.pop_front();
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
  for (const auto& [name, m] : mirrors_) out.push_back({name, m.written, m.durable});
  return out;
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
