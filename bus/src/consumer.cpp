#include "ringbus/consumer.h"

#include <sched.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include <unistd.h>

#include "consumer_access.h"
#include "log_cursor.h"
#include "partition_ring.h"
#include "record_frame.h"
#include "segment_files.h"
#include "topic_files.h"

namespace ringbus {

using detail::align_frame;
using detail::RecordHeader;
using detail::Step;

namespace {

struct PartitionCursor {
  detail::PartitionRing* ring;
  detail::ReaderCursor cursor;
  std::string log_dir;                   // "" : the topic has no commit log
  std::unique_ptr<log::LogCursor> disk;  // set while reading from the log
  // Group members read a window [cursor.deliver_from, window_end) at a time
  // (ConsumerAccess::set_window). A claim or batch that crosses window_end is
  // delivered up to it and the ring cursor stays at the claim's start, so the
  // next window can go on inside the same claim.
  std::uint64_t window_end = ~std::uint64_t{0};
  // A consumer that reads only replicated records: the partition's high
  // watermark, read at the start of each poll (~0: no such limit). It ends
  // the window like window_end does (a claim crossing it is delivered up to
  // it, and the cursor stays at the claim).
  std::uint64_t replicated_end = ~std::uint64_t{0};
  // A cluster mirror's rings (PartitionState::mirror when opened): they
  // carry no record, and the partition is read from the copy's log only.
  bool mirror = false;
  bool from_earliest = false;  // mirror: placed at the earliest before the copy's start was known

  // Every offset below this was delivered or passed over.
  std::uint64_t passed() const noexcept { return std::max(cursor.offset, cursor.deliver_from); }
  std::uint64_t end() const noexcept { return std::min(window_end, replicated_end); }
  bool in_window(std::uint64_t offset) const noexcept { return offset >= cursor.deliver_from && offset < end(); }
  // What the commit log holds for this reader: below log_written every batch
  // is completely written, and the high watermark lies between batches
  // (replicas acknowledge whole batches).
  std::uint64_t log_end() const noexcept {
    return std::min(ring->header().log_written.load(std::memory_order_acquire), replicated_end);
  }
};

}  // namespace

struct Consumer::Impl {
  std::string instance;
  std::shared_ptr<detail::TopicMap> topic;
  ConsumerOptions options;
  std::vector<PartitionCursor> parts;
  std::vector<std::uint32_t> partition_ids;
  std::size_t next = 0;              // partition to start the next poll at (fairness)
  std::vector<std::byte> copy;       // non-gating: the claim being checked
  std::vector<std::byte> inflated;   // a batch frame's records, decompressed
  detail::CommitSleep sleeper;  // for wait()
  detail::BrokerWatch broker;            // wait(): no_broker

  ~Impl() {
    for (PartitionCursor& p : parts) p.ring->close_cursor(p.cursor);
  }

  // Moves the cursor past a delivered claim, or, if the claim crosses the
  // window's end, leaves it at the claim's start (see window_end).
  static void advance(PartitionCursor& part, std::uint64_t end, std::uint32_t records) noexcept;
  bool deliver_in_place(PartitionCursor& part, const detail::RecordHandlerRef& handler, std::size_t& delivered);
  // torn if the copy may be torn (the consumer was lapped); corrupt if the
  // copy is whole but a batch frame in it fails its check.
  enum class Copy : std::uint8_t { ok, torn, corrupt };
  Copy deliver_copy(PartitionCursor& part, const detail::RecordHandlerRef& handler, std::size_t& delivered);
  bool has_news(const PartitionCursor& part) const noexcept;
  // The partition's high watermark, if the topic is replicated (the ring's
  // min_insync says) and this consumer reads only replicated records; else
  // no limit.
  std::uint64_t replicated_end(const PartitionCursor& part) const noexcept {
    const detail::PartitionHeader& h = part.ring->header();
    if (options.read_up_to == ReadUpTo::published || h.min_insync.load(std::memory_order_relaxed) == 0) return ~std::uint64_t{0};
    return h.log_replicated.load(std::memory_order_seq_cst);  // seq_cst: wait() sleeps by watch_marks
  }
  // Places the partition's cursor at a start position (the ring, or the
  // commit log if the ring no longer holds it); false with the reason.
  bool place(PartitionCursor& part, StartPosition start, std::string& error);
  PartitionCursor* find(std::uint32_t partition) noexcept {
    for (PartitionCursor& p : parts) {
      if (p.ring->partition() == partition) return &p;
    }
    return nullptr;
  }
  // Starts reading a partition from its commit log at `offset`; false (with
  // the reason) if the log does not have it.
  // or_earliest: if the offset was deleted, the log's earliest offset instead
  // (a start at the earliest reads the header's log start, which lags
  // retention's deletions for a moment; the files are the truth).
  bool go_to_disk(PartitionCursor& part, std::uint64_t offset, std::string& error, bool or_earliest = false);
  // Reads from disk; returns true if the partition is back on the ring.
  bool poll_disk(PartitionCursor& part, const detail::RecordHandlerRef& handler, std::size_t max_records,
                 PollResult& r);
  // A mirror's partition: where a start position lies in the copy's log
  // (a position at its end waits there: the disk cursor opens once there
  // is something to read), and a poll of it; true once the rings are
  // deleted (the node no longer mirrors the topic here) and what the copy
  // held was delivered.
  bool place_on_mirror(PartitionCursor& part, StartPosition start, std::string& error);
  bool poll_mirror(PartitionCursor& part, const detail::RecordHandlerRef& handler, std::size_t max_records,
                   PollResult& r);
};

bool Consumer::Impl::go_to_disk(PartitionCursor& part, std::uint64_t offset, std::string& error, bool or_earliest) {
  if (part.log_dir.empty()) return false;
  auto disk = std::make_unique<log::LogCursor>(part.log_dir);
  if (!disk->seek(offset, or_earliest, offset)) {
    error = disk->error();
    return false;
  }
  part.disk = std::move(disk);
  if (part.cursor.gating_slot >= 0) part.ring->close_cursor(part.cursor);
  part.cursor = detail::ReaderCursor{};
  part.cursor.offset = part.cursor.deliver_from = offset;
  return true;
}

bool Consumer::Impl::poll_disk(PartitionCursor& part, const detail::RecordHandlerRef& handler, std::size_t max_records,
                               PollResult& r) {
  detail::ReaderCursor& c = part.cursor;
  const std::uint32_t partition = part.ring->partition();
  const std::uint64_t limit = part.log_end();
  while (r.records < max_records && part.passed() < part.end()) {
    const log::LogStep s = part.disk->read(limit, partition, c.deliver_from, [&](const Record& rec) {
      if (part.in_window(rec.offset)) {
        handler(rec);
        ++r.records;
      }
    });
    if (s.kind == log::LogStep::batch) {
      // Past the window's end: the cursor has gone by records the next window
      // wants, so set_window seeks back (c.offset > its start).
      c.offset = std::max(c.deliver_from, s.next);
      c.deliver_from = std::min(c.offset, part.end());
      if (s.next > part.replicated_end) {
        // A batch across the high watermark (not one a replica acknowledged):
        // read it again from where delivery stopped once the mark has moved.
        std::string error;
        (void)go_to_disk(part, c.deliver_from, error);
        return false;
      }
      if (part.passed() >= part.window_end) return false;
      continue;
    }
    if (s.kind == log::LogStep::end) {
      if (part.mirror) return false;  // the copy's log is all there is
      // Caught up with the log: back to the ring if it still holds our position.
      std::string error;
      detail::ReaderCursor ring_cursor;
      if (part.ring->open_cursor(ring_cursor, StartPosition::Kind::offset, c.deliver_from, options.gating, error)) {
        part.disk.reset();
        c = ring_cursor;
        return true;
      }
      return false;
    }
    // Lost records: deleted by retention (or unreadable), or corrupt (reported
    // once: the records up to the next intact batch are lost to this reader).
    r.status = s.kind == log::LogStep::lost ? PollStatus::out_of_range : PollStatus::corrupt;
    r.partition = partition;
    r.missed_from = c.deliver_from;
    if (s.kind == log::LogStep::lost && !part.disk->positioned()) {
      part.disk.reset();
      return false;
    }
    c.offset = c.deliver_from = s.next;
    r.resumed_at = c.deliver_from;
    return false;
  }
  return false;
}

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
    if (h.type == detail::FrameType::batch) {
      return detail::deliver_batch_frame(h, frame, ring.partition(), inflated, delivered,
                                         [&](std::uint64_t o) { return part.in_window(o); }, handler);
    }
    if (part.in_window(h.offset)) {
      handler(detail::record_at(frame, ring.partition()));
      ++delivered;
    }
    return true;
  });
  if (!ok) return false;
  advance(part, end, k);
  return true;
}

void Consumer::Impl::advance(PartitionCursor& part, std::uint64_t end, std::uint32_t records) noexcept {
  detail::ReaderCursor& c = part.cursor;
  if (c.offset + records > part.end()) {
    c.deliver_from = part.end();  // stay at the claim: the next window goes on inside it
    return;
  }
  c.offset += records;
  c.position = end;
}

// Non-gating: producers may overwrite the claim at any moment, so copy it out,
// check that nothing we copied was overwritten meanwhile, and only then hand
// the copy to the handler. walk_claim bounds every length read from the ring:
// until the check has passed they may be garbage (torn: lapped).
Consumer::Impl::Copy Consumer::Impl::deliver_copy(PartitionCursor& part, const detail::RecordHandlerRef& handler,
                                                  std::size_t& delivered) {
  detail::PartitionRing& ring = *part.ring;
  detail::ReaderCursor& c = part.cursor;
  std::uint64_t end = 0;
  std::uint32_t k = 0;
  std::uint64_t used = 0;
  std::uint32_t copied = 0;
  bool batch = false;
  const bool ok = ring.walk_claim(c.position, end, k, [&](const std::byte* frame, const RecordHeader& h) {
    // Only what the handler will see (a group member passes over the other
    // members' records without copying them).
    batch = h.type == detail::FrameType::batch;
    const std::uint64_t last = h.offset + (batch ? h.claim_records - 1 : 0);
    if (last < c.deliver_from || h.offset >= part.end()) return true;
    ++copied;
    const std::uint64_t aligned = align_frame(h.frame_length);
    // Grows to the largest claim seen (at most a quarter of the ring).
    if (copy.size() < used + aligned) copy.resize(std::max<std::uint64_t>(used + aligned, 2 * copy.size()));
    std::memcpy(copy.data() + used, frame, h.frame_length);
    used += aligned;
    return true;
  });
  if (!ok || ring.overwritten_since(c.position)) return Copy::torn;
  if (batch && copied != 0) {
    // The copy is whole: a batch that fails its check now was bad when committed.
    const auto* h = reinterpret_cast<const RecordHeader*>(copy.data());
    if (!detail::deliver_batch_frame(*h, copy.data(), ring.partition(), inflated, delivered,
                                     [&](std::uint64_t o) { return part.in_window(o); }, handler)) {
      return Copy::corrupt;
    }
  } else {
    detail::deliver_frames(copy.data(), copied, ring.partition(), c.deliver_from, delivered, handler);
  }
  advance(part, end, k);
  return Copy::ok;
}

bool Consumer::Impl::place(PartitionCursor& part, StartPosition start, std::string& error) {
  if (start.kind == StartPosition::Kind::time) {
    start = StartPosition::at(detail::offset_for_time(instance, topic->name(), *part.ring, start.timestamp_ns));
  }
  if (part.cursor.gating_slot >= 0) part.ring->close_cursor(part.cursor);
  part.disk.reset();
  part.cursor = detail::ReaderCursor{};
  if (part.mirror) return place_on_mirror(part, start, error);
  // From the earliest, or an offset the ring no longer holds: the log.
  const std::uint64_t disk_start = part.ring->header().log_start_offset.load(std::memory_order_acquire);
  if (!part.log_dir.empty() && start.kind == StartPosition::Kind::earliest &&
      disk_start < part.ring->header().log_written.load(std::memory_order_acquire) &&
      go_to_disk(part, disk_start, error, /*or_earliest=*/true)) {
    return true;
  }
  if (part.ring->open_cursor(part.cursor, start.kind, start.offset, options.gating, error)) return true;
  std::string disk_error;
  if (start.kind == StartPosition::Kind::offset && start.offset < part.ring->tail().second &&
      go_to_disk(part, start.offset, disk_error)) {
    return true;
  }
  if (!disk_error.empty()) error = disk_error;
  return false;
}

bool Consumer::Impl::place_on_mirror(PartitionCursor& part, StartPosition start, std::string& error) {
  const detail::PartitionHeader& h = part.ring->header();
  const std::uint64_t written = h.log_written.load(std::memory_order_acquire);
  std::uint64_t at = written;
  if (start.kind == StartPosition::Kind::earliest) {
    at = h.log_start_offset.load(std::memory_order_acquire);
  } else if (start.kind == StartPosition::Kind::latest) {
    at = std::min(written, replicated_end(part));
  } else if (start.offset > written) {
    error = "offset " + std::to_string(start.offset) + " is past the end of this host's copy (" + std::to_string(written) + ")";
    return false;
  } else {
    at = start.offset;
  }
  part.cursor.offset = part.cursor.deliver_from = at;
  part.from_earliest = start.kind == StartPosition::Kind::earliest;
  return at >= written || go_to_disk(part, at, error, part.from_earliest);
}

bool Consumer::Impl::poll_mirror(PartitionCursor& part, const detail::RecordHandlerRef& handler, std::size_t max_records,
                                 PollResult& r) {
  if (!part.disk && part.passed() < part.log_end()) {
    // A copy whose start was not known yet when the consumer was placed at
    // the earliest starts where the copy does; any other position the copy
    // does not hold is reported, and reading goes on at its start.
    std::string error;
    const std::uint64_t from = part.passed();
    if (!go_to_disk(part, from, error, part.from_earliest)) {
      const std::uint64_t start = part.ring->header().log_start_offset.load(std::memory_order_acquire);
      r.status = PollStatus::out_of_range;
      r.partition = part.ring->partition();
      r.missed_from = from;
      r.resumed_at = std::max(from, start);
      part.cursor.offset = part.cursor.deliver_from = r.resumed_at;
      return false;
    }
    part.from_earliest = false;
  }
  const std::size_t before = r.records;
  if (part.disk) (void)poll_disk(part, handler, max_records, r);
  return r.status == PollStatus::ok && r.records == before && part.ring->deleted();
}

Result<Consumer> Consumer::open(std::string_view instance, std::string_view topic, ConsumerOptions options) {
  auto map = detail::TopicMap::open(instance, topic);
  if (!map) return map.error();
  auto impl = std::make_unique<Impl>();
  impl->instance = instance;
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
  const std::string log_dir = detail::topic_log_directory(instance, topic);
  for (const std::uint32_t p : ids) {
    PartitionCursor part{&impl->topic->ring(p), {}, log_dir.empty() ? "" : log::partition_log_directory(log_dir, p), {}};
    part.mirror = part.ring->mirror();
    std::string error;
    if (!impl->place(part, impl->options.start, error)) {
      return Error{Errc::invalid_argument, "topic '" + std::string(topic) + "': " + error};
    }
    impl->parts.push_back(std::move(part));
  }
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
    part.replicated_end = im.replicated_end(part);
    if (part.mirror) {
      const bool deleted = im.poll_mirror(part, handler, max_records, r);
      if (r.status != PollStatus::ok) {
        im.next = (im.next + 1) % count;
        return r;
      }
      all_deleted = all_deleted && deleted;
      continue;
    }
    if (part.disk) {
      const bool back_on_ring = im.poll_disk(part, handler, max_records, r);
      if (r.status != PollStatus::ok) {
        im.next = (im.next + 1) % count;
        return r;
      }
      if (!back_on_ring) {
        all_deleted = all_deleted && part.passed() >= part.replicated_end && part.ring->deleted();
        continue;
      }
    }
    const std::uint64_t start_position = part.cursor.position;
    bool part_deleted = false;
    while (r.records < max_records && part.passed() < part.end()) {
      const Step s = part.ring->step(part.cursor, gating);
      PollStatus lost = PollStatus::lapped;
      if (s == Step::committed) {
        std::size_t delivered = 0;
        const Impl::Copy got = gating ? (im.deliver_in_place(part, handler, delivered) ? Impl::Copy::ok : Impl::Copy::corrupt)
                                      : im.deliver_copy(part, handler, delivered);
        r.records += delivered;
        if (got == Impl::Copy::ok) continue;
        // A gating reader's claim cannot be overwritten by a live producer:
        // a bad frame there is corruption. A non-gating copy is torn (lapped)
        // unless it was whole and still bad.
        if (got == Impl::Copy::corrupt) lost = PollStatus::corrupt;
      } else if (s == Step::skipped) {
        continue;
      } else if (s == Step::deleted) {
        part_deleted = true;
        break;
      } else if (s != Step::lapped) {
        break;  // empty or pending
      }
      // Lapped with a commit log: what the ring lost is on disk.
      std::string disk_error;
      if (lost == PollStatus::lapped &&
          im.go_to_disk(part, std::max(part.cursor.offset, part.cursor.deliver_from), disk_error)) {
        break;
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
    // At the high watermark of a deleted topic (its leader stepped down):
    // what lies above it is not delivered, since no failover keeps it.
    if (part.passed() >= part.replicated_end && part.ring->deleted()) part_deleted = true;
    all_deleted = all_deleted && part_deleted;
    if (gating && !part.disk && part.cursor.position != start_position) part.ring->publish_gate(part.cursor);
  }
  im.next = (im.next + 1) % count;
  if (r.records == 0 && all_deleted) r.status = PollStatus::topic_deleted;
  return r;
}

bool Consumer::Impl::has_news(const PartitionCursor& part) const noexcept {
  // Nothing more is replicated yet: only the topic's deletion is news.
  if (part.passed() >= replicated_end(part)) return part.ring->deleted();
  if (part.mirror && !part.disk) {
    return part.passed() < part.ring->header().log_written.load(std::memory_order_acquire) || part.ring->deleted();
  }
  if (part.disk) return part.disk->next_offset() < part.ring->header().log_written.load(std::memory_order_acquire);
  return part.ring->has_news(part.cursor, options.gating);
}

WaitStatus Consumer::wait(std::chrono::nanoseconds timeout) {
  Impl& im = *impl_;
  const detail::PartitionRing& any_ring = im.topic->ring(0);
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
  // The flusher does not wake readers of the log: they look again soon.
  const bool reads_disk = std::any_of(im.parts.begin(), im.parts.end(),
                                      [](const PartitionCursor& p) { return p.disk != nullptr || p.mirror; });
  const std::int64_t deadline = detail::deadline_after(timeout.count());
  for (std::uint32_t i = 0;; ++i) {
    if (any_news()) return WaitStatus::ready;
    if (im.options.idle != IdleStrategy::block) {
      // Spinning: the clock, the broker and dead producers every 1024 looks.
      if ((i & 1023) == 1023) {
        if (im.broker.newly_gone(any_ring)) return WaitStatus::no_broker;
        if (detail::monotonic_ns() >= deadline) return im.broker.at_deadline(any_ring);
        (void)check_abandoned(timeout);
      }
      if (im.options.idle == IdleStrategy::yield) {
        sched_yield();
      } else {
        detail::cpu_relax();
      }
      continue;
    }
    if (im.broker.newly_gone(any_ring)) return WaitStatus::no_broker;
    const std::int64_t now = detail::monotonic_ns();
    if (now >= deadline) return im.broker.at_deadline(any_ring);
    // Sleep in slices of at most 100 ms, so a broker that dies meanwhile is
    // noticed.
    std::chrono::nanoseconds sleep = check_abandoned(std::chrono::nanoseconds(std::min<std::int64_t>(deadline - now, 100'000'000)));
    if (reads_disk) sleep = std::min<std::chrono::nanoseconds>(sleep, std::chrono::milliseconds(1));
    // (check_abandoned above may also have revoked what we were waiting on)
    // A reader of replicated records also waits for the high watermark,
    // which the leading node moves (and wakes, as for producers in
    // wait_replicated).
    for (PartitionCursor& p : im.parts) {
      im.sleeper.watch(*p.ring);
      if (im.replicated_end(p) != ~std::uint64_t{0}) im.sleeper.watch_marks(p.ring->header());
    }
    im.sleeper.sleep(any_news, sleep);
  }
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

const char* to_string(ReadUpTo r) noexcept { return r == ReadUpTo::published ? "published" : "replicated"; }

namespace detail {

Status ConsumerAccess::set_window(Consumer& consumer, std::uint32_t partition, std::uint64_t from, std::uint64_t to,
                                  Pair hint) {
  Consumer::Impl& im = *consumer.impl_;
  PartitionCursor* part = im.find(partition);
  if (part == nullptr) return Error{Errc::invalid_argument, "the consumer does not read partition " + std::to_string(partition)};
  part->window_end = to;
  if (!part->disk && !im.options.gating && hint.second > part->cursor.offset && hint.second <= from) {
    part->cursor.offset = hint.second;
    part->cursor.position = hint.first;
  }
  if (from >= part->cursor.offset) {
    // Ahead of (or inside the claim at) the cursor: pass over what lies between.
    part->cursor.deliver_from = from;
    return {};
  }
  std::string error;
  if (!im.place(*part, StartPosition::at(from), error)) {
    part->window_end = from;  // nothing to deliver until the caller moves on
    return Error{Errc::not_found, "partition " + std::to_string(partition) + ": " + error};
  }
  return {};
}

Status ConsumerAccess::place(Consumer& consumer, std::uint32_t partition, StartPosition start) {
  Consumer::Impl& im = *consumer.impl_;
  PartitionCursor* part = im.find(partition);
  if (part == nullptr) return Error{Errc::invalid_argument, "the consumer does not read partition " + std::to_string(partition)};
  part->window_end = ~std::uint64_t{0};
  std::string error;
  if (!im.place(*part, start, error)) return Error{Errc::not_found, "partition " + std::to_string(partition) + ": " + error};
  return {};
}

Pair ConsumerAccess::ring_cursor(const Consumer& consumer, std::uint32_t partition) {
  for (const PartitionCursor& p : consumer.impl_->parts) {
    if (p.ring->partition() == partition) return p.disk ? Pair{0, 0} : Pair{p.cursor.position, p.cursor.offset};
  }
  return {0, 0};
}

std::uint64_t ConsumerAccess::passed(const Consumer& consumer, std::uint32_t partition) {
  for (const PartitionCursor& p : consumer.impl_->parts) {
    if (p.ring->partition() == partition) return p.passed();
  }
  return 0;
}

}  // namespace detail

}  // namespace ringbus
