// A member of a consumer group (ringbus/group.h): what both kinds of group
// do alike. Each kind's protocol: group_pubsub.cpp, group_queue.cpp; the
// member's state: group_member.h.
#include <unistd.h>

#include <algorithm>

#include "consumer_access.h"
#include "group_member.h"

namespace ringbus {

using detail::ConsumerAccess;
using detail::GroupFile;
using detail::HeldChunk;

const char* to_string(GroupMode m) noexcept { return m == GroupMode::queue ? "queue" : "pubsub"; }

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
  if (map.value()->ring(0).mirror()) {
    // Its groups are the leader's (their files are copied here for a
    // failover); a member here would commit where the leader never sees it.
    return Error{Errc::invalid_argument, "topic '" + std::string(topic) +
                                             "' is a mirror's copy on this host: consumer groups read it on the node "
                                             "that leads it (ringbus cluster status says which)"};
  }
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
  if (!im.joined) {
    if (!im.rejoin()) return {};
  }
  const std::int64_t now = detail::monotonic_ns();
  im.tick(now);
  if (!im.joined) return {};
  return im.queue() ? im.poll_queue(handler, max_records, now) : im.poll_pubsub(handler, max_records, now);
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
    for (std::uint32_t p = 0; p < im.partitions(); ++p) {
      if (im.queue() || im.owned[p]) im.sleeper.watch(im.map->ring(p));
    }
    // Nothing to wait on (no partition owned): a short sleep until the next look.
    if (im.sleeper.empty()) ::usleep(static_cast<useconds_t>(std::min<std::int64_t>(slice.count() / 1000, 10'000)));
    im.sleeper.sleep([&] { return im.has_work(); }, slice);
  }
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

void GroupConsumer::leave() {
  if (!impl_ || !impl_->joined) return;
  Impl& im = *impl_;
  if (im.queue()) {
    im.leave_queue();
  } else {
    im.leave_pubsub();
  }
  im.file->leave(im.slot, im.incarnation);
  im.joined = false;
}

}  // namespace ringbus
