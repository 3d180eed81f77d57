// Publish-subscribe groups: partitions divided among the live members,
// rebalanced when members come and go; committed positions per partition
// (bus/README.md, "Consumer groups").
#include "group_member.h"

#include <algorithm>

#include "consumer_access.h"

namespace ringbus {

using detail::ConsumerAccess;

bool GroupConsumer::Impl::owner_alive(std::uint32_t tok) const {
  if (tok == 0) return false;
  return file->member_alive((tok >> 16) - 1, tok & 0xffff, 0xffff);
}

void GroupConsumer::Impl::commit_positions() {
  bool any = false;
  for (std::uint32_t p = 0; p < partitions(); ++p) {
    if (!owned[p]) continue;
    const std::uint64_t pos = ConsumerAccess::passed(*reader, p);
    detail::GroupPartition& part = file->partition(p);
    // Only while we still own it: a partition taken from us (we were evicted)
    // belongs to its new owner's commits.
    if (part.owner.load(std::memory_order_acquire) == token() &&
        part.committed.exchange(pos, std::memory_order_acq_rel) != pos) {
      any = true;
    }
  }
  if (any) (void)file->request_persist();
}

void GroupConsumer::Impl::release_partition(std::uint32_t p) {
  detail::GroupPartition& part = file->partition(p);
  std::uint32_t mine = token();
  if (part.owner.load(std::memory_order_acquire) == mine) {
    part.committed.store(ConsumerAccess::passed(*reader, p), std::memory_order_release);
    (void)part.owner.compare_exchange_strong(mine, 0, std::memory_order_acq_rel);
    (void)file->request_persist();
  }
  owned[p] = false;
  (void)ConsumerAccess::set_window(*reader, p, ConsumerAccess::passed(*reader, p), 0);
}

bool GroupConsumer::Impl::acquire_partition(std::uint32_t p) {
  detail::GroupPartition& part = file->partition(p);
  std::uint32_t cur = part.owner.load(std::memory_order_acquire);
  if (cur != token()) {
    if (cur != 0 && owner_alive(cur)) return false;  // its owner has not let go yet
    if (!part.owner.compare_exchange_strong(cur, token(), std::memory_order_acq_rel)) return false;
  }
  // Ours: go on from the group's committed position.
  const std::uint64_t committed = part.committed.load(std::memory_order_acquire);
  StartPosition start = StartPosition::at(committed);
  if (committed == detail::kNoOffset) {
    start = file->settings().start == StartPosition::Kind::earliest ? StartPosition::earliest() : StartPosition::latest();
  }
  if (!ConsumerAccess::place(*reader, p, start)) {
    // The committed offset is gone (retention): Kafka's auto.offset.reset.
    (void)ConsumerAccess::place(*reader, p, StartPosition::earliest());
  }
  part.committed.store(ConsumerAccess::passed(*reader, p), std::memory_order_release);
  owned[p] = true;
  return true;
}

// Kafka's range-free, coordinator-free assignment: partition p goes to the
// live member of rank p mod n (members ranked by slot). Every member computes
// the same answer from the same member slots; a partition changes hands only
// when its owner has committed and let go (or is dead).
void GroupConsumer::Impl::rebalance() {
  const std::uint64_t gen = file->header().generation.load(std::memory_order_acquire);
  const std::vector<std::uint32_t> live = file->live_members();
  const auto me = std::find(live.begin(), live.end(), slot);
  if (me == live.end()) return;  // evicted: tick() rejoins
  const auto rank = static_cast<std::uint32_t>(me - live.begin());
  const auto n = static_cast<std::uint32_t>(live.size());
  bool settled = true;
  for (std::uint32_t p = 0; p < partitions(); ++p) {
    if (owned[p] && p % n != rank) release_partition(p);
  }
  for (std::uint32_t p = 0; p < partitions(); ++p) {
    if (!owned[p] && p % n == rank && !acquire_partition(p)) settled = false;
  }
  generation_tried = gen;
  if (settled) {
    generation_seen = gen;
  } else {
    // Waiting for a member to let go: look again soon, not in a spin.
    retry_rebalance_ns = detail::monotonic_ns() + 20'000'000;
  }
}

bool GroupConsumer::Impl::rebalance_due(std::int64_t now) const {
  const std::uint64_t gen = file->header().generation.load(std::memory_order_acquire);
  return gen != generation_seen && (gen != generation_tried || now >= retry_rebalance_ns);
}

PollResult GroupConsumer::Impl::poll_pubsub(detail::RecordHandlerRef handler, std::size_t max_records, std::int64_t now) {
  if (rebalance_due(now)) rebalance();
  PollResult r = reader->poll(handler, max_records);
  if (options.commit_interval.count() > 0 && now >= next_commit_ns) {
    commit_positions();
    next_commit_ns = now + std::chrono::nanoseconds(options.commit_interval).count();
  }
  return r;
}

void GroupConsumer::Impl::leave_pubsub() {
  for (std::uint32_t p = 0; p < partitions(); ++p) {
    if (owned[p]) release_partition(p);
  }
}

Status GroupConsumer::rewind(std::uint32_t partition, std::uint64_t offset) {
  Impl& im = *impl_;
  if (im.queue()) return Error{Errc::invalid_argument, "rewind is for publish-subscribe groups (a queue acknowledges instead)"};
  if (partition >= im.partitions() || !im.owned[partition]) {
    return Error{Errc::invalid_argument, "this member does not own partition " + std::to_string(partition)};
  }
  return ConsumerAccess::place(*im.reader, partition, StartPosition::at(offset));
}

}  // namespace ringbus
