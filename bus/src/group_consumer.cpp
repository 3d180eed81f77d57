// A member of a consumer group (ringbus/group.h). The protocol is in
// bus/README.md ("Consumer groups").
//
// A member reads through one non-gating Consumer over all the topic's
// partitions, steered by windows (consumer_access.h): a pubsub member opens
// the window of each partition it owns and keeps the others empty; a queue
// member opens, per partition, the window of the chunk it holds.
#include "ringbus/group.h"

#include <unistd.h>

#include <algorithm>
#include <optional>

#include "consumer_access.h"
#include "group_file.h"
#include "partition_ring.h"
#include "ringbus/producer.h"
#include "topic_files.h"

namespace ringbus {

using detail::ChunkGrant;
using detail::ChunkState;
using detail::ChunkView;
using detail::ClaimOutcome;
using detail::ConsumerAccess;
using detail::GroupFile;
using detail::Pair;

const char* to_string(GroupMode m) noexcept { return m == GroupMode::queue ? "queue" : "pubsub"; }

namespace {

// A queue chunk this member holds.
struct HeldChunk {
  std::uint32_t partition = 0;
  ChunkGrant grant;
  std::uint64_t skip = 0;       // offsets acknowledged before we got it (redelivery): not delivered again
  std::uint64_t delivered = 0;  // offsets handed to the handler (or the dead-letter topic)
  bool active = false;
};

}  // namespace

struct GroupConsumer::Impl {
  std::string instance;
  std::string topic;
  std::string group;
  GroupOptions options;
  std::shared_ptr<detail::TopicMap> map;
  std::shared_ptr<GroupFile> file;
  std::optional<Consumer> reader;
  detail::BrokerWatch broker;  // wait(): no_broker
  std::uint32_t slot = 0;
  std::uint32_t incarnation = 0;
  bool joined = false;
  std::uint32_t lease_ms = 0;
  std::int64_t heartbeat_every_ns = 0;
  std::int64_t last_heartbeat_ns = 0;
  // pubsub
  std::uint64_t generation_seen = ~std::uint64_t{0};   // settled at: owns what it should
  std::uint64_t generation_tried = ~std::uint64_t{0};  // last rebalance attempt
  std::int64_t retry_rebalance_ns = 0;                 // unsettled: try again from then
  std::vector<bool> owned;
  std::int64_t next_commit_ns = 0;
  // queue
  std::vector<HeldChunk> reading;   // per partition
  std::vector<HeldChunk> awaiting;  // auto_ack off: read, waiting for ack()
  std::vector<HeldChunk> taken;     // redeliveries taken over, not yet read
  std::int64_t next_scan_ns = 0;
  std::optional<Producer> dead_letters;
  std::uint32_t next_partition = 0;

  std::uint32_t partitions() const noexcept { return file->partition_count(); }
  std::uint32_t owner() const noexcept { return detail::chunk_owner(slot, incarnation); }
  std::uint32_t token() const noexcept { return detail::owner_token(slot, incarnation); }
  bool queue() const noexcept { return file->is_queue(); }

  Status rejoin();
  void tick(std::int64_t now);
  // pubsub
  void rebalance();
  bool rebalance_due(std::int64_t now) const;
  void commit_positions();
  void release_partition(std::uint32_t p);
  bool acquire_partition(std::uint32_t p);
  bool owner_alive(std::uint32_t token) const;
  // queue
  bool start_chunk(std::uint32_t p);
  void finish_chunk(HeldChunk& h);
  void scan_for_redelivery();
  void dead_letter(const HeldChunk& h, const Record& r);
  bool has_work() const;
};

Status GroupConsumer::Impl::rejoin() {
  auto j = file->join();
  if (!j) return j.error();
  slot = j->first;
  incarnation = j->second;
  joined = true;
  last_heartbeat_ns = detail::monotonic_ns();
  generation_seen = generation_tried = ~std::uint64_t{0};
  return {};
}

// Heartbeat, eviction of dead members, redelivery scans and auto-commit:
// at most every heartbeat_every_ns, never per record.
void GroupConsumer::Impl::tick(std::int64_t now) {
  if (now - last_heartbeat_ns < heartbeat_every_ns) return;
  last_heartbeat_ns = now;
  detail::MemberSlot& m = file->header().members[slot];
  if (m.word.load(std::memory_order_acquire) != detail::member_word(incarnation, detail::MemberState::active)) {
    // Evicted (we were silent past the session timeout): what we held is
    // someone else's now. Join again as a new member.
    std::fill(owned.begin(), owned.end(), false);
    for (HeldChunk& h : reading) h.active = false;
    awaiting.clear();
    taken.clear();
    if (!rejoin()) joined = false;
    return;
  }
  m.heartbeat_ns.store(now, std::memory_order_relaxed);
  (void)file->reap(now);
}

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

// ---- queue ----------------------------------------------------------------------

bool GroupConsumer::Impl::start_chunk(std::uint32_t p) {
  HeldChunk h;
  h.partition = p;
  bool got = false;
  if (auto it = std::find_if(taken.begin(), taken.end(), [&](const HeldChunk& t) { return t.partition == p; });
      it != taken.end()) {
    h.grant = it->grant;
    taken.erase(it);
    got = true;
  }
  if (!got) {
    const std::uint64_t end = map->ring(p).tail().second;
    if (file->claim_chunk(p, end, owner(), lease_ms, h.grant) != ClaimOutcome::granted) return false;
  }
  if (h.grant.deliveries > 1) {
    h.skip = file->acked_bits(p, h.grant.seq);
    if (h.skip == ~std::uint64_t{0}) return false;  // completed meanwhile (retired)
  }
  h.active = true;
  const Pair hint = detail::load_pair(file->partition(p).position_hint);
  if (!ConsumerAccess::set_window(*reader, p, h.grant.base, h.grant.base + h.grant.count, hint)) {
    // Its records are gone (retention, or lapped with no commit log): nothing
    // to deliver; finish_chunk acknowledges them as lost.
    (void)ConsumerAccess::set_window(*reader, p, h.grant.base + h.grant.count, h.grant.base + h.grant.count);
  }
  reading[p] = h;
  return true;
}

void GroupConsumer::Impl::finish_chunk(HeldChunk& h) {
  const std::uint32_t p = h.partition;
  const std::uint64_t all = detail::full_mask(h.grant.count);
  // Offsets never delivered (aborted by their producer, lost) are done with.
  const std::uint64_t now = options.auto_ack || h.grant.dead_letter ? all : (all & ~h.delivered);
  bool complete = false;
  const bool ours = file->ack(p, h.grant.seq, now, h.grant.count, complete);
  const Pair at = ConsumerAccess::ring_cursor(*reader, p);
  if (at.second != 0) detail::raise_pair(file->partition(p).position_hint, at);
  if (complete) file->advance_floor(p);
  if (ours && !complete && !options.auto_ack) awaiting.push_back(h);
  h.active = false;
}

void GroupConsumer::Impl::scan_for_redelivery() {
  const std::uint32_t now_ms = detail::monotonic_ms32();
  for (std::uint32_t p = 0; p < partitions(); ++p) {
    const Pair f = file->floor(p);
    const Pair d = file->dispatch(p);
    for (std::uint64_t seq = f.second; seq < d.second; ++seq) {
      const ChunkView c = file->chunk(p, seq);
      if (c.seq != seq || c.state != ChunkState::leased) continue;
      const bool expired = detail::ms32_diff(now_ms, c.deadline_ms) > 0;
      const bool mine = c.owner == owner();
      if (!expired && (mine || file->member_alive(c.owner >> 10, c.owner & 1023, 1023))) continue;
      if (mine) {
        // Our own lease ran out (auto_ack off and no ack): it goes back to
        // the group like anyone's; drop our claim on it.
        std::erase_if(awaiting, [&](const HeldChunk& h) { return h.partition == p && h.grant.seq == seq; });
        if (reading[p].active && reading[p].grant.seq == seq) continue;  // still reading it: let it finish
      }
      ChunkGrant g;
      if (file->take_over(p, c, owner(), lease_ms, g)) {
        taken.push_back(HeldChunk{p, g, 0, 0, false});
      }
    }
  }
}

void GroupConsumer::Impl::dead_letter(const HeldChunk& h, const Record& r) {
  const std::string dlq = file->settings().dead_letter_topic;
  if (dlq.empty()) {
    file->partition(h.partition).dead_lettered.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!dead_letters) {
    auto p = Producer::open(instance, dlq);
    if (p) dead_letters.emplace(std::move(p.value()));
  }
  const std::string origin = topic + "/" + std::to_string(r.partition) + "/" + std::to_string(r.offset);
  const std::string tries = std::to_string(h.grant.deliveries - 1);
  const Header headers[] = {{"ringbus.dead-letter.origin", origin}, {"ringbus.dead-letter.deliveries", tries}};
  // Not published (no such topic, too large): counted, and given up on like
  // the rest; the broker's log is not ours to write from a client.
  if (dead_letters) (void)dead_letters->publish(r.key, r.value, headers);
  file->partition(h.partition).dead_lettered.fetch_add(1, std::memory_order_relaxed);
}

bool GroupConsumer::Impl::has_work() const {
  for (std::uint32_t p = 0; p < partitions(); ++p) {
    if (queue()) {
      if (reading[p].active) return true;
      if (file->dispatch(p).first < map->ring(p).tail().second) return true;
    } else if (owned[p] && ConsumerAccess::passed(*reader, p) < map->ring(p).tail().second) {
      return true;
    }
  }
  return !taken.empty();
}

// ---- GroupConsumer ------------------------------------------------------------------

Result<GroupConsumer> GroupConsumer::join(std::string_view instance, std::string_view topic, std::string_view group,
                                          GroupOptions options) {
  auto map = detail::TopicMap::open(instance, topic, /*populate=*/false);
  if (!map) return map.error();
  const std::uint32_t n = map.value()->partition_count();
  std::vector<std::uint64_t> starts(n, detail::kNoOffset);
  if (options.settings.mode == GroupMode::queue) {
    // A new queue group starts every partition at its earliest or latest offset.
    for (std::uint32_t p = 0; p < n; ++p) {
      const detail::PartitionRing& ring = map.value()->ring(p);
      starts[p] = options.settings.start == StartPosition::Kind::earliest ? ring.earliest_offset() : ring.tail().second;
    }
  }
  auto file = GroupFile::open_or_create(instance, topic, map.value()->topic_id(), n, group, options.settings, starts);
  if (!file) return file.error();
  const GroupSettings actual = file.value()->settings();
  if (actual.mode != options.settings.mode) {
    return Error{Errc::invalid_argument, "group '" + std::string(group) + "' of topic '" + std::string(topic) + "' is a " +
                                             to_string(actual.mode) + " group; asked to join it as " +
                                             to_string(options.settings.mode)};
  }
  if (file.value()->header().id.topic_id != map.value()->topic_id()) {
    return Error{Errc::invalid_argument, "group '" + std::string(group) + "' belongs to an earlier topic '" +
                                             std::string(topic) + "' (deleted and created again)"};
  }
  ConsumerOptions copts;
  copts.start = StartPosition::latest();
  copts.idle = options.idle;
  auto reader = Consumer::open(instance, topic, copts);
  if (!reader) return reader.error();
  auto impl = std::make_unique<Impl>();
  impl->instance = instance;
  impl->topic = topic;
  impl->group = group;
  impl->options = options;
  impl->map = std::move(map.value());
  impl->file = std::move(file.value());
  impl->reader.emplace(std::move(reader.value()));
  impl->lease_ms = static_cast<std::uint32_t>(actual.lease.count());
  impl->heartbeat_every_ns = std::max<std::int64_t>(std::chrono::nanoseconds(actual.session_timeout).count() / 4, 1'000'000);
  impl->owned.assign(n, false);
  impl->reading.assign(n, HeldChunk{});
  // Every window starts empty: nothing is read until owned or claimed.
  for (std::uint32_t p = 0; p < n; ++p) {
    const std::uint64_t at = ConsumerAccess::passed(*impl->reader, p);
    (void)ConsumerAccess::set_window(*impl->reader, p, at, at);
  }
  if (auto s = impl->rejoin(); !s) return s.error();
  impl->next_commit_ns = detail::monotonic_ns() + std::chrono::nanoseconds(options.commit_interval).count();
  return GroupConsumer(std::move(impl));
}

GroupConsumer::GroupConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GroupConsumer::GroupConsumer(GroupConsumer&&) noexcept = default;
GroupConsumer& GroupConsumer::operator=(GroupConsumer&& o) noexcept {
  if (this != &o) {
    leave();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
GroupConsumer::~GroupConsumer() { leave(); }

GroupMode GroupConsumer::mode() const noexcept { return impl_->queue() ? GroupMode::queue : GroupMode::pubsub; }

std::vector<std::uint32_t> GroupConsumer::assignment() const {
  std::vector<std::uint32_t> a;
  for (std::uint32_t p = 0; p < impl_->partitions(); ++p) {
    if (impl_->queue() || impl_->owned[p]) a.push_back(p);
  }
  return a;
}

PollResult GroupConsumer::poll_with(detail::RecordHandlerRef handler, std::size_t max_records) {
  Impl& im = *impl_;
  PollResult total;
  if (!im.joined) {
    if (!im.rejoin()) return total;
  }
  const std::int64_t now = detail::monotonic_ns();
  im.tick(now);
  if (!im.joined) return total;
  if (!im.queue()) {
    if (im.rebalance_due(now)) im.rebalance();
    PollResult r = im.reader->poll(handler, max_records);
    if (im.options.commit_interval.count() > 0 && now >= im.next_commit_ns) {
      im.commit_positions();
      im.next_commit_ns = now + std::chrono::nanoseconds(im.options.commit_interval).count();
    }
    return r;
  }
  if (now >= im.next_scan_ns) {
    im.scan_for_redelivery();
    im.next_scan_ns = now + std::min<std::int64_t>(im.heartbeat_every_ns, std::int64_t{im.lease_ms} * 250'000);
  }
  auto deliver = [&](const Record& r) {
    HeldChunk& h = im.reading[r.partition];
    const std::uint64_t bit = std::uint64_t{1} << (r.offset - h.grant.base);
    if (h.skip & bit) return;  // acknowledged by an earlier holder
    h.delivered |= bit;
    if (h.grant.dead_letter) {
      im.dead_letter(h, r);
      return;
    }
    Record copy = r;
    copy.deliveries = h.grant.deliveries;
    handler(copy);
  };
  // Claim, read, acknowledge, and again, while chunks come and room is left.
  for (int round = 0; round < 64 && total.records < max_records; ++round) {
    bool any = false;
    for (std::uint32_t k = 0; k < im.partitions(); ++k) {
      const std::uint32_t p = (im.next_partition + k) % im.partitions();
      if (im.reading[p].active || im.start_chunk(p)) any = true;
    }
    if (!any) break;
    const PollResult r = im.reader->poll(deliver, max_records - total.records);
    total.records += r.records;
    if (r.status != PollStatus::ok && total.status == PollStatus::ok) {
      total.status = r.status;
      total.partition = r.partition;
      total.missed_from = r.missed_from;
      total.resumed_at = r.resumed_at;
    }
    bool finished = false;
    for (HeldChunk& h : im.reading) {
      if (h.active && ConsumerAccess::passed(*im.reader, h.partition) >= h.grant.base + h.grant.count) {
        im.finish_chunk(h);
        finished = true;
      }
    }
    if (!finished) break;  // waiting on records still being written
  }
  im.next_partition = (im.next_partition + 1) % im.partitions();
  // Nothing left to claim: the reader was not asked, so say here whether the
  // topic is gone (the deleted mark is set on every partition together).
  if (total.records == 0 && total.status == PollStatus::ok && im.map->ring(0).deleted()) {
    total.status = PollStatus::topic_deleted;
  }
  return total;
}

WaitStatus GroupConsumer::wait(std::chrono::nanoseconds timeout) {
  Impl& im = *impl_;
  const detail::PartitionRing& any_ring = im.map->ring(0);
  const std::int64_t deadline = detail::deadline_after(timeout.count());
  for (;;) {
    if (im.has_work()) return WaitStatus::ready;
    if (im.broker.newly_gone(any_ring)) return WaitStatus::no_broker;
    const std::int64_t now = detail::monotonic_ns();
    if (now >= deadline) return im.broker.at_deadline(any_ring);
    im.tick(now);
    // Wake for the heartbeat, for rebalances and redelivery scans, and for new records.
    if (!im.queue() && im.rebalance_due(now)) return WaitStatus::ready;
    if (im.queue() && now >= im.next_scan_ns) return WaitStatus::ready;
    // Slices of at most 100 ms, so a broker that dies meanwhile is noticed.
    std::chrono::nanoseconds slice(std::min<std::int64_t>({deadline - now, im.heartbeat_every_ns, 100'000'000}));
    if (im.queue()) slice = std::min<std::chrono::nanoseconds>(slice, std::chrono::nanoseconds(im.next_scan_ns - now));
    if (!im.queue() && im.generation_seen != im.file->header().generation.load(std::memory_order_acquire)) {
      slice = std::min<std::chrono::nanoseconds>(slice, std::chrono::nanoseconds(std::max<std::int64_t>(im.retry_rebalance_ns - now, 1'000'000)));
    }
    if (im.options.idle != IdleStrategy::block) {
      if (im.options.idle == IdleStrategy::yield) {
        ::sched_yield();
      } else {
        detail::cpu_relax();
      }
      continue;
    }
    std::vector<std::atomic<std::uint32_t>*> words;
    std::vector<std::uint32_t> values;
    for (std::uint32_t p = 0; p < im.partitions(); ++p) {
      if (!im.queue() && !im.owned[p]) continue;
      detail::PartitionRing& ring = im.map->ring(p);
      ring.add_waiter();
      words.push_back(ring.wake_word());
      values.push_back(ring.wake_word()->load(std::memory_order_acquire));
    }
    // Announced, then looked again (the Dekker pairing with commit()).
    if (!words.empty() && !im.has_work()) detail::futex_wait_any(words, values, slice);
    if (words.empty()) ::usleep(static_cast<useconds_t>(std::min<std::int64_t>(slice.count() / 1000, 10'000)));
    for (std::uint32_t p = 0; p < im.partitions(); ++p) {
      if (im.queue() || im.owned[p]) im.map->ring(p).remove_waiter();
    }
  }
}

Status GroupConsumer::ack(std::uint32_t partition, std::uint64_t offset) {
  Impl& im = *impl_;
  auto not_held = [&] {
    return Error{Errc::not_found, "this member holds no unacknowledged record at offset " + std::to_string(offset) +
                                      " of partition " + std::to_string(partition)};
  };
  if (partition >= im.partitions()) return not_held();
  auto covers = [&](const HeldChunk& h) {
    return h.partition == partition && offset >= h.grant.base && offset < h.grant.base + h.grant.count;
  };
  // Read and waiting for acknowledgements, or still being read (ack() from
  // inside the handler).
  auto it = std::find_if(im.awaiting.begin(), im.awaiting.end(), covers);
  const bool reading = it == im.awaiting.end() && im.reading[partition].active && covers(im.reading[partition]);
  if (it == im.awaiting.end() && !reading) return not_held();
  const HeldChunk& h = reading ? im.reading[partition] : *it;
  const std::uint64_t bit = std::uint64_t{1} << (offset - h.grant.base);
  bool complete = false;
  if ((im.file->acked_bits(partition, h.grant.seq) & bit) != 0 ||
      !im.file->ack(partition, h.grant.seq, bit, h.grant.count, complete)) {
    if (!reading && im.file->acked_bits(partition, h.grant.seq) == ~std::uint64_t{0}) im.awaiting.erase(it);  // retired
    return not_held();
  }
  if (complete) {
    if (!reading) im.awaiting.erase(it);
    im.file->advance_floor(partition);
  }
  return {};
}

Status GroupConsumer::commit(bool durable, std::chrono::milliseconds timeout) {
  Impl& im = *impl_;
  if (!im.queue() && im.joined) im.commit_positions();
  if (!durable) return {};
  detail::GroupHeader& h = im.file->header();
  // A topic with a commit log has a broker with a data directory, whose
  // keeper writes the offsets (it may not have seen this group yet).
  if (im.map->ring(0).header().log_durability.load(std::memory_order_acquire) == 0) {
    return Error{Errc::invalid_argument, "group '" + im.group + "': the broker has no data directory, so nothing is durable"};
  }
  const std::uint64_t want = im.file->request_persist();
  const std::int64_t deadline = detail::deadline_after(std::chrono::nanoseconds(timeout).count());
  for (;;) {
    h.persist_waiters.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t v = h.persist_wake.load(std::memory_order_seq_cst);
    const bool done = h.persisted_seq.load(std::memory_order_seq_cst) >= want;
    const std::int64_t now = detail::monotonic_ns();
    if (!done && now < deadline) detail::futex_wait(&h.persist_wake, v, std::chrono::nanoseconds(std::min<std::int64_t>(deadline - now, 100'000'000)));
    h.persist_waiters.fetch_sub(1, std::memory_order_relaxed);
    if (h.persisted_seq.load(std::memory_order_acquire) >= want) return {};
    // Only a live broker's keeper writes positions: with none, say so at once.
    if (!im.map->ring(0).broker_alive()) {
      return Error{Errc::io_error, "group '" + im.group + "': no broker is running, so its position is not durable"};
    }
    if (detail::monotonic_ns() >= deadline) {
      return Error{Errc::io_error, "group '" + im.group + "': the broker did not write the offsets within " +
                                       std::to_string(timeout.count()) + " ms (see its log)"};
    }
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

void GroupConsumer::leave() {
  if (!impl_ || !impl_->joined) return;
  Impl& im = *impl_;
  if (im.queue()) {
    // Acknowledge what the handler already had; hand the rest back at once.
    for (HeldChunk& h : im.reading) {
      if (!h.active) continue;
      bool complete = false;
      if (im.options.auto_ack && h.delivered != 0 && im.file->ack(h.partition, h.grant.seq, h.delivered, h.grant.count, complete) &&
          complete) {
        im.file->advance_floor(h.partition);
      }
      if (!complete) (void)im.file->release(h.partition, h.grant.seq, im.owner());
      h.active = false;
    }
    for (const HeldChunk& h : im.awaiting) (void)im.file->release(h.partition, h.grant.seq, im.owner());
    for (const HeldChunk& h : im.taken) (void)im.file->release(h.partition, h.grant.seq, im.owner());
    im.awaiting.clear();
    im.taken.clear();
  } else {
    for (std::uint32_t p = 0; p < im.partitions(); ++p) {
      if (im.owned[p]) im.release_partition(p);
    }
  }
  im.file->leave(im.slot, im.incarnation);
  im.joined = false;
}

}  // namespace ringbus
