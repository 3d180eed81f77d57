// One partition's ring in shared memory: the claim/commit protocol of the
// producers, the gating positions, and the reader's step over commit
// entries. The protocol is specified in bus/README.md; the layout in
// partition_format.h.
//
// Threading: a PartitionRing is a view of a mapping and has no mutable state
// of its own; every method may be called from any thread of any process that
// maps the file. Per-caller state lives in ProducerCache and ReaderCursor,
// which belong to one thread at a time.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "liveness.h"
#include "mapped_file.h"
#include "partition_format.h"
#include "record_frame.h"
#include "ringbus/consumer.h"
#include "ringbus/record.h"
#include "sync.h"

namespace ringbus::detail {

// A reader's position in one partition, and its bookkeeping for abandoned claims.
struct ReaderCursor {
  std::uint64_t offset = 0;
  std::uint64_t position = 0;
  std::uint64_t deliver_from = 0;    // records below this offset are passed over
  int gating_slot = -1;              // >= 0 for a gating reader
  bool raises_frontier = false;      // started at or below the commit frontier
  // Abandoned-claim bookkeeping: the offset last found not ready, how many
  // times in a row, and since when it has been seen claimed (0: not yet).
  std::uint64_t stuck_offset = ~std::uint64_t{0};
  std::uint32_t idle_looks = 0;
  std::int64_t stuck_since_ns = 0;
  std::uint64_t skipped = 0;         // offsets stepped over (aborted or abandoned)
};

// A producer's private view of how far it may claim without looking at the
// gating slots and the frontier again ("each side caches the other side's
// index"), and its cursor for walking the commit frontier forward.
// The last look at whether the instance's broker is alive
// (PartitionRing::no_broker), so a caller that asks often probes rarely.
struct BrokerProbe {
  std::int64_t probed_ns = 0;  // when `gone` was last probed (0: never)
  bool gone = false;
};

class PartitionRing;

// A waiting consumer's view of its topic's broker (WaitStatus::no_broker):
// the first wait of an outage ends at once; while it lasts, waits sleep as
// usual and end with no_broker in place of timed_out.
struct BrokerWatch {
  BrokerProbe probe;
  bool reported = false;  // this outage was reported
  // With nothing to read: true if the wait should end now with no_broker
  // (the broker is gone and the outage not reported yet).
  bool newly_gone(const PartitionRing& ring) noexcept;
  // How a wait that found nothing ends: timed_out, or no_broker.
  WaitStatus at_deadline(const PartitionRing& ring) noexcept;
};

inline constexpr int kSlotNotYet = -1;
inline constexpr int kNoSlotFree = -2;

struct ProducerCache {
  std::uint64_t limit = 0;             // claims may end at or below this position
  // An exclusive owner's plain claims end at or below this: the lap marker
  // it last saw + C - 32 (a gating reader that joins starts at or above the
  // marker; README, "An exclusive owner").
  std::uint64_t lap_bound = 0;
  // The claim word as the owner last wrote it (only it writes the word):
  // reading it back would wait for the store to leave the store buffer,
  // behind the record's lines still on their way from the consumer's core.
  Pair owned_tail{0, 0};
  bool fence_commits = false;          // plain commits without membarrier: fence each one
  // A shared producer's publisher slot (README, "Shared producers' plain
  // commits"): its index, kSlotNotYet until the first plain claim, or
  // kNoSlotFree (every slot taken: its claims commit by CAS); taken by the
  // process of fork generation slot_generation.
  int publisher_slot = kSlotNotYet;
  std::uint32_t slot_generation = 0;
  std::uint64_t epoch = ~std::uint64_t{0};  // gate_epoch the limit was computed at
  std::uint64_t prefetched_to = 0;     // ring lines up to here were asked for
  std::int64_t backpressured_since_ns = 0;  // 0: the last claim went through
  BrokerProbe broker;
  ReaderCursor walker;
};

struct ClaimSpan {
  PublishStatus status = PublishStatus::ok;
  std::uint64_t position = 0;        // claim start (a padding frame, if it wrapped)
  std::uint64_t frame_position = 0;  // where the first record frame goes
  std::uint64_t end = 0;             // position after the claim
  std::uint64_t offset = 0;          // offset of the first record
  bool plain = false;                // committed by commit_plain (a plain store)
};

// What the reader finds at its cursor.
enum class Step : std::uint8_t {
  committed,  // a committed claim starts at the cursor
  skipped,    // a revoked offset was stepped over; look again
  not_ready,  // nothing published at the cursor yet (unclaimed, or pending)
  lapped,     // (non-gating only) producers overwrote the cursor's position
  deleted,    // nothing published at the cursor, and the topic was deleted
};

class PartitionRing {
 public:
  explicit PartitionRing(MappedFile file);

  PartitionHeader& header() const noexcept { return *header_; }
  std::uint64_t capacity() const noexcept { return capacity_; }
  std::uint32_t max_record_size() const noexcept { return max_record_size_; }
  std::uint32_t partition() const noexcept { return header_->id.partition; }
  const std::string& path() const noexcept { return file_.path(); }
  PartitionState state() const noexcept {
    return static_cast<PartitionState>(header_->state.load(std::memory_order_acquire));
  }
  // Gone from here: deleted, or released to another node (readers drain it).
  bool deleted() const noexcept {
    const PartitionState s = state();
    return s == PartitionState::deleted || s == PartitionState::released;
  }
  // What a producer is told when the partition is not live.
  PublishStatus refusal() const noexcept {
    switch (state()) {
      case PartitionState::deleted: return PublishStatus::topic_deleted;
      case PartitionState::mirror:
      case PartitionState::released: return PublishStatus::not_leader;
      default: return PublishStatus::partition_offline;
    }
  }
  bool mirror() const noexcept { return state() == PartitionState::mirror; }

  // The node that leads the topic when this broker does not (a mirror's or
  // a released ring): a seqlock (acquire byte loads validated by the
  // sequence), so a name changing meanwhile is read again, never torn. ""
  // if none was written.
  std::string leader_elsewhere() const;
  void set_leader_elsewhere(std::string_view name) noexcept;

  // ---- producer side -----------------------------------------------------
  // Claims `bytes` (a multiple of kFrameAlign, at most capacity/4) for
  // `records` records. If `timeout_ns` is 0 it never waits; otherwise it
  // waits for space up to that long (the clock is read only if it must
  // wait). Writes the padding frame when the claim wraps.
  // Refused (partition_owned) while an exclusive producer owns the
  // partition, unless `owner` (claim_owned's locked path). With `plain`
  // (the cache holds a publisher slot) the claim's floor is set in the
  // slot, and the span is to be committed by commit_plain, unless it had
  // to wait after its CAS (span.plain says).
  ClaimSpan claim(ProducerCache& cache, std::uint64_t bytes, std::uint32_t records,
                  std::int64_t timeout_ns, bool owner = false, bool plain = false) noexcept;
  // Publishes a claim: CAS of its commit entry from "not yet" to committed.
  // Fails (claim_revoked) only if readers revoked it as abandoned.
  PublishStatus commit(const ClaimSpan& claim) noexcept;

  // ---- an exclusive owner (bus/README.md, "An exclusive owner") -----------
  // Takes the partition's lease for this process (its client token): from
  // nobody, or from an owner whose process is dead. Errc::busy, naming the
  // holder, while a live producer (this process's included) holds it.
  Status take_lease(ProducerCache& cache);
  // Gives the lease back (every claim of the owner committed or aborted).
  void release_lease() noexcept;
  // True while an exclusive producer owns the partition.
  bool owned() const noexcept { return (load_acquire(&header_->claim[1]) & kOwnedBit) != 0; }
  // claim() for the lease's holder: a plain store of the claim word while
  // the claim stays inside the lap and below the limits, else claim()'s
  // locked path (which keeps the owned bit).
  ClaimSpan claim_owned(ProducerCache& cache, std::uint64_t bytes, std::uint32_t records,
                        std::int64_t timeout_ns) noexcept;
  // commit() for the lease's holder and for a plain claim of a publisher
  // slot: a release store (nobody revokes a live owner's or publisher's
  // claims), the slot's floor cleared, then the wake-up's load of `waiters`.
  PublishStatus commit_plain(const ProducerCache& cache, const ClaimSpan& claim) noexcept;

  // ---- shared producers' plain commits (bus/README.md) -------------------
  // True if the cache holds a publisher slot of this process, taking one
  // the first time (and again in a child made by fork()); false if every
  // slot is taken by a live producer (its claims then commit by CAS).
  bool publisher_slot(ProducerCache& cache) noexcept {
    if (cache.publisher_slot >= 0 && cache.slot_generation == fork_generation()) return true;
    return cache.publisher_slot != kNoSlotFree && take_publisher_slot(cache);
  }
  // Gives the slot back (no plain claim of it pending).
  void release_publisher_slot(ProducerCache& cache) noexcept;
  // True while a publisher slot was ever taken: sleepers fence plain commits.
  bool plain_commits() const noexcept {
    return owned() || header_->publisher_high_water.load(std::memory_order_relaxed) != 0;
  }
  // Withdraws a claim: every offset in it becomes revoked.
  void abort(const ClaimSpan& claim, std::uint32_t records) noexcept;
  std::byte* data_at(std::uint64_t position) const noexcept {
    return data_ + (position & mask_);
  }

  // ---- reader side ---------------------------------------------------------
  // Places a new cursor. For a gating reader also registers it; fails (false)
  // only when the gating slots are all taken.
  bool open_cursor(ReaderCursor& cursor, StartPosition::Kind kind, std::uint64_t offset,
                   bool gating, std::string& error);
  // The broker's flusher's gate. Takes over the gate a dead broker's flusher
  // left (the cursor then starts where that flusher's writes had completed:
  // nothing after it was overwritten), or registers a new one at the ring's
  // first offset. Fails only when every gating slot is taken.
  bool open_broker_gate(ReaderCursor& cursor, std::string& error);
  void close_cursor(ReaderCursor& cursor) noexcept;
  // Looks at the cursor; on `skipped` it has moved the cursor. Reads only
  // the cursor's commit entry, except every kLooksPerCheck-th time in a row
  // it finds nothing, when it also runs check_abandoned().
  Step step(ReaderCursor& cursor, bool gating) noexcept;
  // Reads the claim word: if the cursor's offset is claimed but has not been
  // committed for the abandoned-claim timeout, revokes it. Returns true if
  // a claim is pending at the cursor (callers about to block use this to
  // wake up in time).
  bool check_abandoned(ReaderCursor& cursor) noexcept;
  // Publishes a gating reader's position and offset (after it has consumed
  // up to it), and raises the commit frontier to it if the reader may.
  void publish_gate(const ReaderCursor& cursor) noexcept;
  // The position after the claim that starts at `position` (committed, so
  // its frames are written), and its record count. False if the bytes read
  // cannot be trusted (producers have since claimed over them).
  bool claim_extent(std::uint64_t position, std::uint64_t& end, std::uint32_t& records) const noexcept;
  // The frame checks of claim_extent alone.
  bool claim_valid(std::uint64_t position, std::uint64_t& end, std::uint32_t& records) const noexcept {
    return walk_claim(position, end, records, [](const std::byte*, const RecordHeader&) { return true; });
  }
  // Walks the frames of the committed claim at `position`, checking each
  // before anything trusts it: the padding frame's length, a record count,
  // frame_ok, and that the frames stay inside the claim's bounds (contiguous,
  // at most a quarter of the ring). Calls on_frame(frame, header) for each
  // record frame in turn (headers are read by copy: a non-gating reader's
  // bytes may change under it); on_frame returns false to stop. Returns false
  // at the first bad frame or stop, else the claim's end and record count
  // (its offsets). A claim of a batch frame has that one frame
  // (batch_frame_ok); the caller decodes its records (deliver_batch_frame).
  // The one walk every reader of claims uses (the frontier, gating delivery,
  // the non-gating copy).
  template <class F>
  bool walk_claim(std::uint64_t position, std::uint64_t& end, std::uint32_t& records, F&& on_frame) const noexcept {
    const std::uint64_t max_frame = sizeof(RecordHeader) + max_record_size_;
    std::uint64_t fp = position;
    RecordHeader h;
    std::memcpy(&h, data_at(fp), sizeof h);
    if (h.type == FrameType::padding) {
      if (h.frame_length != capacity_ - (fp & mask_)) return false;
      fp += h.frame_length;
      std::memcpy(&h, data_at(fp), sizeof h);
    }
    records = h.claim_records;
    if (records == 0) return false;
    const std::byte* frames = data_at(fp);
    const std::uint64_t room = std::min(capacity_ - (fp & mask_), capacity_ / 4);
    if (h.type == FrameType::batch) {
      // One frame for the whole claim (a Kafka batch from elsewhere).
      const std::uint64_t aligned = align_frame(h.frame_length);
      if (!batch_frame_ok(h, max_frame) || aligned > room || !on_frame(frames, h)) return false;
      end = fp + aligned;
      return true;
    }
    std::uint64_t at = 0;
    for (std::uint32_t i = 0; i < records; ++i) {
      if (at >= room) return false;  // frames are 32-aligned: a whole header fits below room
      std::memcpy(&h, frames + at, sizeof h);
      const std::uint64_t aligned = align_frame(h.frame_length);
      // One unlikely branch per frame (see frame_ok).
      if (__builtin_expect(!frame_ok(h, max_frame) | (aligned > room - at), false)) return false;
      if (!on_frame(frames + at, h)) return false;
      at += aligned;
    }
    end = fp + at;
    return true;
  }
  // True if, after consuming a claim starting at `position`, the bytes may
  // have been overwritten (non-gating readers check this after copying).
  bool overwritten_since(std::uint64_t position) const noexcept;
  Pair tail() const noexcept {
    const Pair t = load_pair(header_->claim);
    return {t.first, t.second & ~kOwnedBit};
  }
  // The earliest offset a reader can still get: on disk if the topic has a
  // commit log, else the first claim of the ring's newest lap.
  std::uint64_t earliest_offset() const noexcept {
    if (header_->log_durability.load(std::memory_order_acquire) != 0) {
      return header_->log_start_offset.load(std::memory_order_acquire);
    }
    if (tail().first <= capacity_) return header_->id.base_offset;
    return load_pair(header_->lap_marker).second;
  }

  // For blocking waits.
  std::atomic<std::uint32_t>* wake_word() const noexcept { return &header_->wake_seq; }
  void add_waiter() noexcept { header_->waiters.fetch_add(1, std::memory_order_seq_cst); }
  void remove_waiter() noexcept { header_->waiters.fetch_sub(1, std::memory_order_relaxed); }
  // True if step() would find something other than not_ready (for blocking
  // waits: a pending claim is waited for, not spun on).
  bool has_news(const ReaderCursor& cursor, bool gating) const noexcept;
  std::int64_t abandoned_timeout_ns() const noexcept { return abandoned_timeout_ns_; }

  std::uint32_t gating_readers() const noexcept;
  // Frees gating slots whose owner process is gone, by its client token
  // (liveness.h: across pid namespaces; never the broker's flusher's gate).
  // Returns how many.
  std::uint32_t reap_dead_gating_readers() noexcept;

  // The instance's directory (TopicMap sets it): its broker lock file for
  // no_broker(), its client tokens for gating slots (liveness.h).
  void set_instance_dir(std::string dir) {
    instance_dir_ = std::move(dir);
    broker_lock_ = instance_dir_ + "/broker.lock";
  }
  // True if the partition has a commit log and no broker is alive to write
  // it: the flusher's gate cannot move, so waiting for ring space or for
  // durability is in vain. Only callers that are held back ask; the probe (a
  // lock test on the broker's lock file, two system calls) runs at most every
  // 10 ms per probe.
  bool no_broker(BrokerProbe& probe) const noexcept;
  // The probe itself: true if the instance's broker holds its lock (or the
  // ring was not opened through a TopicMap).
  bool broker_alive() const noexcept { return broker_lock_.empty() || lock_is_held(broker_lock_.c_str()); }

 private:
  void refresh_limit(ProducerCache& cache) noexcept;
  // Walks the commit frontier forward over committed and revoked claims
  // until it reaches `target` or a claim still pending; returns it.
  Pair advance_frontier(ReaderCursor& walker, std::uint64_t target) noexcept;
  // ok once `end` fits; else timed_out, topic_deleted or no_broker.
  PublishStatus wait_for_space(ProducerCache& cache, std::uint64_t end, std::int64_t deadline_ns) noexcept;
  void note_backpressure(ProducerCache& cache) noexcept;
  // `raw` is the claim word as read, the owned bit included.
  void revoke_abandoned(ReaderCursor& cursor, Pair raw) noexcept;
  // publisher_slot()'s slow path: the first use, or a child made by fork().
  bool take_publisher_slot(ProducerCache& cache) noexcept;
  // True if a live publisher's floor lies below `end`: one of its plain
  // claims may be pending there (read after the claim word).
  bool publisher_in_flight_below(std::uint64_t end) const noexcept;
  // Asks for the ring lines of the next claims, for writing (see claim()).
  void prefetch_ahead(ProducerCache& cache, std::uint64_t end, std::uint64_t bytes) noexcept;
  // Restarts the cursor's stuck-claim bookkeeping if it moved to another offset.
  static void track_offset(ReaderCursor& cursor) noexcept {
    if (cursor.stuck_offset != cursor.offset) {
      cursor.stuck_offset = cursor.offset;
      cursor.idle_looks = 0;
      cursor.stuck_since_ns = 0;
    }
  }
  // Wakes blocked consumers, if any (the producer side of the futex handshake:
  // callers published with a seq_cst CAS just before).
  void wake_waiters() noexcept;
  std::atomic<std::uint64_t>& entry(std::uint64_t offset) const noexcept {
    return entries_[offset & entry_mask_];
  }
  // A revocation for a claim at or after `position` within one lap (a value
  // from a later lap, seen by a lapped reader, resumes a lap or more further).
  bool revoked_for(std::uint64_t v, std::uint64_t position) const noexcept {
    return is_revoked_entry(v) && entry_position(v) >= position && entry_position(v) < position + capacity_;
  }

  MappedFile file_;
  PartitionHeader* header_;
  std::atomic<std::uint64_t>* entries_;
  std::byte* data_;
  std::uint64_t capacity_;
  std::uint64_t mask_;
  std::uint64_t entry_mask_;
  std::uint32_t max_record_size_;
  std::int64_t abandoned_timeout_ns_;
  std::string instance_dir_;
  std::string broker_lock_;
};

// The waking side of the handshake for a partition's log marks, for whoever
// moves one (the flusher, a leader's node, a mirror's log): it stores the
// mark (seq_cst), then calls this. The sleepers (CommitSleep::watch_marks,
// a producer's wait_durable) announce themselves in durable_waiters, then
// read the marks: one of the two sees the other.
inline void wake_mark_waiters(PartitionHeader& h) noexcept {
  if (h.durable_waiters.load(std::memory_order_seq_cst) != 0) {
    h.durable_seq.fetch_add(1, std::memory_order_release);
    futex_wake_all(&h.durable_seq);
  }
}

// The sleeping side of the wake-up handshake with commit(), written once for
// every blocking reader (consumers, group members, the flusher). It is
// Dekker's: the sleeper announces itself on each ring (waiters += 1, seq_cst),
// reads the rings' wake words, and only then looks for news a last time; a
// producer commits (seq_cst) and then reads waiters (PartitionRing::
// wake_waiters). One of the two sees the other: either the last look finds
// the record, or the producer bumps the wake word and the futex returns at
// once. Keeps its vectors between sleeps (no allocation once warm).
class CommitSleep {
 public:
  // Announces the sleeper on `ring` and takes its wake word.
  void watch(PartitionRing& ring) {
    ring.add_waiter();
    rings_.push_back(&ring);
    watch(ring.wake_word());
  }
  // A word someone else bumps and wakes (a command queue, say).
  void watch(std::atomic<std::uint32_t>* word) {
    words_.push_back(word);
    values_.push_back(word->load(std::memory_order_seq_cst));
  }
  // Announces the sleeper as a waiter for a partition's log marks
  // (durability, the high watermark) and takes their wake word: whoever
  // moves a mark stores it, then calls wake_mark_waiters (seq_cst both sides).
  void watch_marks(PartitionHeader& h) {
    h.durable_waiters.fetch_add(1, std::memory_order_seq_cst);
    marks_.push_back(&h);
    watch(&h.durable_seq);
  }
  bool empty() const noexcept { return words_.empty(); }
  // Sleeps up to `timeout` unless has_news() (called after every announce)
  // says there is something already; then withdraws and forgets the set.
  template <class HasNews>
  void sleep(HasNews&& has_news, std::chrono::nanoseconds timeout) {
    // An exclusive owner and a publisher slot's producer commit with a
    // plain store, then load waiters: the asymmetric fence orders that
    // (README, "An exclusive owner").
    if (std::any_of(rings_.begin(), rings_.end(), [](const PartitionRing* r) { return r->plain_commits(); })) heavy_fence();
    if (!words_.empty() && !has_news()) futex_wait_any(words_, values_, timeout);
    for (PartitionRing* r : rings_) r->remove_waiter();
    for (PartitionHeader* h : marks_) h->durable_waiters.fetch_sub(1, std::memory_order_relaxed);
    rings_.clear();
    marks_.clear();
    words_.clear();
    values_.clear();
  }

 private:
  std::vector<PartitionRing*> rings_;
  std::vector<PartitionHeader*> marks_;
  std::vector<std::atomic<std::uint32_t>*> words_;
  std::vector<std::uint32_t> values_;
};

}  // namespace ringbus::detail
