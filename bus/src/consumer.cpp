#include "ringbus/consumer.h"

#include <sched.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "partition_ring.h"
#include "record_frame.h"
#include "topic_files.h"

namespace ringbus {

using detail::align_frame;
using detail::RecordHeader;
using detail::Step;

namespace {

struct PartitionCursor {
  detail::PartitionRing* ring;
  detail::ReaderCursor cursor;
};

}  // namespace

struct Consumer::Impl {
  std::shared_ptr<detail::TopicMap> topic;
  ConsumerOptions options;
  std::vector<PartitionCursor> parts;
  std::vector<std::uint32_t> partition_ids;
  std::size_t next = 0;              // partition to start the next poll at (fairness)
  std::vector<std::byte> copy;       // non-gating: the batch being checked
  std::vector<std::atomic<std::uint32_t>*> wake_words;
  std::vector<std::uint32_t> wake_values;

  ~Impl() {
    for (PartitionCursor& p : parts) p.ring->close_cursor(p.cursor);
  }

  bool deliver_in_place(PartitionCursor& part, const detail::RecordHandlerRef& handler, std::size_t& delivered);
  // Returns false if the copy may be torn (the consumer was lapped).
  bool deliver_copy(PartitionCursor& part, const detail::RecordHandlerRef& handler, std::size_t& delivered);
  bool has_news(const PartitionCursor& part) const noexcept;
};

// Gating: producers cannot overwrite the claim while we hold its position, so
// the handler sees the ring itself. walk_claim checks each frame before it is
// delivered, so even a corrupted frame never becomes a view past the ring.
// Returns false at a corrupt frame (records before it were delivered).
bool Consumer::Impl::deliver_in_place(PartitionCursor& part, const detail::RecordHandlerRef& handler,
                                      std::size_t& delivered) {
  detail::PartitionRing& ring = *part.ring;
  detail::ReaderCursor& c = part.cursor;
  std::uint64_t end = 0;
  std::uint32_t k = 0;
  const bool ok = ring.walk_claim(c.position, end, k, [&](const std::byte* frame, const RecordHeader& h) {
    if (h.offset >= c.deliver_from) {
      handler(detail::record_at(frame, ring.partition()));
      ++delivered;
    }
    return true;
  });
  if (!ok) return false;
  c.offset += k;
  c.position = end;
  return true;
}

// Non-gating: producers may overwrite the claim at any moment, so copy it out,
// check that nothing we copied was overwritten meanwhile, and only then hand
// the copy to the handler. walk_claim bounds every length read from the ring:
// until the check has passed they may be garbage (torn: lapped).
bool Consumer::Impl::deliver_copy(PartitionCursor& part, const detail::RecordHandlerRef& handler, std::size_t& delivered) {
  detail::PartitionRing& ring = *part.ring;
  detail::ReaderCursor& c = part.cursor;
  std::uint64_t end = 0;
  std::uint32_t k = 0;
  std::uint64_t used = 0;
  const bool ok = ring.walk_claim(c.position, end, k, [&](const std::byte* frame, const RecordHeader& h) {
    const std::uint64_t aligned = align_frame(h.frame_length);
    // Grows to the largest claim seen (at most a quarter of the ring).
    if (copy.size() < used + aligned) copy.resize(std::max<std::uint64_t>(used + aligned, 2 * copy.size()));
    std::memcpy(copy.data() + used, frame, h.frame_length);
    used += aligned;
    return true;
  });
  if (!ok || ring.overwritten_since(c.position)) return false;
  detail::deliver_frames(copy.data(), k, ring.partition(), c.deliver_from, delivered, handler);
  c.offset += k;
  c.position = end;
  return true;
}

Result<Consumer> Consumer::open(std::string_view instance, std::string_view topic, ConsumerOptions options) {
  auto map = detail::TopicMap::open(instance, topic);
  if (!map) return map.error();
  auto impl = std::make_unique<Impl>();
  impl->topic = std::move(map.value());
  impl->options = std::move(options);
  const std::uint32_t n = impl->topic->partition_count();
  std::vector<std::uint32_t> ids = impl->options.partitions;
  if (ids.empty()) {
    for (std::uint32_t p = 0; p < n; ++p) ids.push_back(p);
  }
  for (const std::uint32_t p : ids) {
    if (p >= n) {
      return Error{Errc::invalid_argument, "topic '" + std::string(topic) + "' has " + std::to_string(n) +
                                               " partitions; there is no partition " + std::to_string(p)};
    }
    if (std::count(ids.begin(), ids.end(), p) > 1) {
      return Error{Errc::invalid_argument, "partition " + std::to_string(p) + " is listed twice"};
    }
  }
  for (const std::uint32_t p : ids) {
    PartitionCursor part{&impl->topic->ring(p), {}};
    std::string error;
    if (!part.ring->open_cursor(part.cursor, impl->options.start.kind, impl->options.start.offset,
                                impl->options.gating, error)) {
      return Error{Errc::invalid_argument, "topic '" + std::string(topic) + "': " + error};
    }
    impl->parts.push_back(part);
    impl->wake_words.push_back(part.ring->wake_word());
  }
  impl->wake_values.resize(impl->parts.size());
  impl->partition_ids = std::move(ids);
  return Consumer(std::move(impl));
}

Consumer::Consumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Consumer::Consumer(Consumer&&) noexcept = default;
Consumer& Consumer::operator=(Consumer&&) noexcept = default;
Consumer::~Consumer() = default;

PollResult Consumer::poll_with(detail::RecordHandlerRef handler, std::size_t max_records) {
  Impl& im = *impl_;
  PollResult r;
  const bool gating = im.options.gating;
  const std::size_t count = im.parts.size();
  bool all_deleted = true;
  for (std::size_t k = 0; k < count && r.records < max_records; ++k) {
    PartitionCursor& part = im.parts[(im.next + k) % count];
    const std::uint64_t start_position = part.cursor.position;
    bool part_deleted = false;
    while (r.records < max_records) {
      const Step s = part.ring->step(part.cursor, gating);
      PollStatus lost = PollStatus::lapped;
      if (s == Step::committed) {
        std::size_t delivered = 0;
        const bool ok = gating ? im.deliver_in_place(part, handler, delivered)
                               : im.deliver_copy(part, handler, delivered);
        r.records += delivered;
        if (ok) continue;
        // A gating reader's claim cannot be overwritten by a live producer:
        // a bad frame there is corruption. A non-gating copy is torn: lapped.
        if (gating) lost = PollStatus::corrupt;
      } else if (s == Step::skipped) {
        continue;
      } else if (s == Step::deleted) {
        part_deleted = true;
        break;
      } else if (s != Step::lapped) {
        break;  // empty or pending
      }
      // Lapped or corrupt: report the first offset lost, resume at the newest.
      const detail::Pair t = part.ring->tail();
      r.status = lost;
      r.partition = part.ring->partition();
      r.missed_from = std::max(part.cursor.offset, part.cursor.deliver_from);
      part.cursor.offset = t.second;
      part.cursor.position = t.first;
      part.cursor.deliver_from = t.second;
      r.resumed_at = t.second;
      if (gating) part.ring->publish_gate(part.cursor);
      im.next = (im.next + 1) % count;
      return r;
    }
    all_deleted = all_deleted && part_deleted;
    if (gating && part.cursor.position != start_position) part.ring->publish_gate(part.cursor);
  }
  im.next = (im.next + 1) % count;
  if (r.records == 0 && all_deleted) r.status = PollStatus::topic_deleted;
  return r;
}

bool Consumer::Impl::has_news(const PartitionCursor& part) const noexcept {
  return part.ring->has_news(part.cursor, options.gating);
}

bool Consumer::wait(std::chrono::nanoseconds timeout) {
  Impl& im = *impl_;
  auto any_news = [&] {
    return std::any_of(im.parts.begin(), im.parts.end(), [&](const PartitionCursor& p) { return im.has_news(p); });
  };
  // Looks for claims left pending by a dead producer (and revokes them once
  // the timeout has passed); returns how long we may sleep before looking again.
  auto check_abandoned = [&](std::chrono::nanoseconds limit) {
    for (PartitionCursor& p : im.parts) {
      if (p.ring->check_abandoned(p.cursor)) {
        limit = std::min<std::chrono::nanoseconds>(
            limit, std::max<std::chrono::nanoseconds>(std::chrono::milliseconds(1),
                                                      std::chrono::nanoseconds(p.ring->abandoned_timeout_ns() / 4)));
      }
    }
    return limit;
  };
  const std::int64_t deadline = detail::deadline_after(timeout.count());
  if (im.options.idle != IdleStrategy::block) {
    for (std::uint32_t i = 0;; ++i) {
      if (any_news()) return true;
      if ((i & 1023) == 1023) {
        if (detail::monotonic_ns() >= deadline) return false;
        (void)check_abandoned(timeout);
      }
      if (im.options.idle == IdleStrategy::yield) {
        sched_yield();
      } else {
        detail::cpu_relax();
      }
    }
  }
  // Announce ourselves, then look (Dekker with commit(): a producer that
  // commits after our look sees waiters != 0 and wakes us).
  for (std::size_t i = 0; i < im.parts.size(); ++i) {
    im.parts[i].ring->add_waiter();
    im.wake_values[i] = im.wake_words[i]->load(std::memory_order_acquire);
  }
  bool news = any_news();
  if (!news) {
    const std::chrono::nanoseconds sleep = check_abandoned(timeout);
    news = any_news();  // the check may have revoked what we were waiting on
    if (!news) {
      detail::futex_wait_any(im.wake_words, im.wake_values, sleep);
      news = any_news();
    }
  }
  for (PartitionCursor& p : im.parts) p.ring->remove_waiter();
  return news;
}

std::uint64_t Consumer::position(std::uint32_t partition) const {
  for (const PartitionCursor& p : impl_->parts) {
    if (p.ring->partition() == partition) return std::max(p.cursor.offset, p.cursor.deliver_from);
  }
  return 0;
}

std::uint64_t Consumer::skipped() const noexcept {
  std::uint64_t n = 0;
  for (const PartitionCursor& p : impl_->parts) n += p.cursor.skipped;
  return n;
}

const std::vector<std::uint32_t>& Consumer::partitions() const noexcept { return impl_->partition_ids; }

}  // namespace ringbus
