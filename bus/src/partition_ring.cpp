#include "partition_ring.h"

#include "liveness.h"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace ringbus::detail {

namespace {

constexpr auto kSlotReserved = static_cast<std::uint32_t>(SlotState::reserved);  // being set up
constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();

}  // namespace

PartitionRing::PartitionRing(MappedFile file) : file_(std::move(file)) {
  header_ = reinterpret_cast<PartitionHeader*>(file_.data());
  capacity_ = header_->id.ring_capacity;
  mask_ = capacity_ - 1;
  entry_mask_ = header_->id.entry_count - 1;
  entries_ = reinterpret_cast<std::atomic<std::uint64_t>*>(file_.data() + kEntriesOffset);
  data_ = file_.data() + ring_data_offset(header_->id.entry_count);
  max_record_size_ = header_->id.max_record_size;
  abandoned_timeout_ns_ = static_cast<std::int64_t>(header_->id.abandoned_claim_timeout_ns);
}

// ---------------------------------------------------------------------------
// Producer side

void PartitionRing::refresh_limit(ProducerCache& cache) noexcept {
  // Epoch first: a registration that bumps it after this load is caught by
  // the check after the claim (see claim()).
  cache.epoch = header_->gate_epoch.load(std::memory_order_acquire);
  const std::uint32_t high = header_->gating_high_water.load(std::memory_order_acquire);
  std::uint64_t lowest = kNoLimit;
  for (std::uint32_t i = 0; i < high && i < kGatingSlots; ++i) {
    const GatingSlot& slot = header_->gating[i];
    if (slot.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::active)) {
      // acquire: pairs with the reader's release of its position, so the
      // reader's reads of the bytes before it happen before our overwrite.
      lowest = std::min(lowest, slot.position.load(std::memory_order_acquire));
    }
  }
  // Never past a claim that is still being written, readers or not.
  Pair frontier = load_pair(header_->frontier);
  if (frontier.first < lowest) frontier = advance_frontier(cache.walker, lowest);
  // One frame of slack below a full lap keeps every position stored in a
  // commit entry strictly below the position of the entry's next lap, which
  // is what lets readers tell a stale entry from a current one (README).
  cache.limit = std::min(lowest, frontier.first) + capacity_ - kFrameAlign;
}

Pair PartitionRing::advance_frontier(ReaderCursor& w, std::uint64_t target) noexcept {
  const Pair stored = load_pair(header_->frontier);
  // Start from the shared frontier (we raised it to our cursor last time, so
  // it is never behind us). The walker's stuck-claim clock is kept: step()
  // restarts it when the offset changes.
  w.offset = stored.second;
  w.position = stored.first;
  // Bounded, so one claim never pays for a walk over a whole huge ring.
  for (std::uint32_t steps = 0; steps < 65536 && w.position < target; ++steps) {
    // gating=true: the walker is never lapped (producers respect the frontier
    // it publishes); step() revokes a claim stuck past the timeout.
    const Step s = step(w, /*gating=*/true);
    if (s == Step::skipped) continue;
    if (s != Step::committed) break;
    std::uint64_t end = 0;
    std::uint32_t records = 0;
    if (!claim_extent(w.position, end, records)) break;  // another walker is ahead
    w.offset += records;
    w.position = end;
  }
  if (w.offset > stored.second) raise_pair(header_->frontier, Pair{w.position, w.offset});
  return load_pair(header_->frontier);
}

bool PartitionRing::claim_extent(std::uint64_t position, std::uint64_t& end,
                                 std::uint32_t& records) const noexcept {
  return claim_valid(position, end, records) && !overwritten_since(position);
}

void PartitionRing::note_backpressure(ProducerCache& cache) noexcept {
  // A gating reader that died would hold producers back forever. Once this
  // producer has been held back for the abandoned-claim timeout (over any
  // number of calls, try_* included), free the slots of dead owners.
  const std::int64_t now = monotonic_ns();
  if (cache.backpressured_since_ns == 0) {
    cache.backpressured_since_ns = now;
  } else if (now - cache.backpressured_since_ns >= abandoned_timeout_ns_) {
    reap_dead_gating_readers();
    cache.backpressured_since_ns = now;
  }
}

PublishStatus PartitionRing::wait_for_space(ProducerCache& cache, std::uint64_t end,
                                            std::int64_t deadline_ns) noexcept {
  // Spin, then yield, then sleep (Aeron's back-off idle strategy). A reader
  // a few microseconds behind frees the space while this spins; a producer
  // held back by the disk (the flusher frees the space at the disk's pace)
  // must not keep a core busy yielding: the flusher's kernel helpers (the
  // io_uring workers, writeback) need it. On two cores a yielding producer
  // cost the flush 10-20% of its rate (bench/RESULTS.md).
  constexpr std::uint32_t kSpins = 128;
  constexpr std::uint32_t kYields = 64;
  constexpr timespec kSleep{0, 50'000};
  for (std::uint32_t spins = 0;; ++spins) {
    if (state() != PartitionState::live) return refusal();
    refresh_limit(cache);
    if (end <= cache.limit) return PublishStatus::ok;
    if (spins < kSpins) {
      cpu_relax();
      continue;
    }
    if (spins < kSpins + kYields) {
      sched_yield();
      if ((spins & 63) != 0) continue;
    } else {
      spins = kSpins + kYields;  // stays asleep between checks, never wraps
      ::nanosleep(&kSleep, nullptr);
    }
    if (no_broker(cache.broker)) return PublishStatus::no_broker;
    if (monotonic_ns() >= deadline_ns) return PublishStatus::timed_out;
    note_backpressure(cache);
  }
}

bool PartitionRing::no_broker(BrokerProbe& probe) const noexcept {
  // Without a log the broker gates nothing: readers free the space.
  if (broker_lock_.empty() ||
      header_->log_durability.load(std::memory_order_relaxed) == static_cast<std::uint32_t>(LogDurability::none)) {
    return false;
  }
  constexpr std::int64_t kProbeEveryNs = 10'000'000;
  const std::int64_t now = monotonic_ns();
  if (probe.probed_ns == 0 || now - probe.probed_ns >= kProbeEveryNs) {
    probe.probed_ns = now;
    probe.gone = !broker_alive();
  }
  return probe.gone;
}

bool BrokerWatch::newly_gone(const PartitionRing& ring) noexcept {
  if (!ring.no_broker(probe)) {
    reported = false;
    return false;
  }
  if (reported) return false;
  reported = true;
  return true;
}

WaitStatus BrokerWatch::at_deadline(const PartitionRing& ring) noexcept {
  reported = ring.no_broker(probe);
  return reported ? WaitStatus::no_broker : WaitStatus::timed_out;
}

ClaimSpan PartitionRing::claim(ProducerCache& cache, std::uint64_t bytes, std::uint32_t records,
                               std::int64_t timeout_ns, bool owner, bool plain) noexcept {
  ClaimSpan out;
  // A plain claim's floor (README, "Shared producers' plain commits"): set
  // just before each CAS to the offset it claims from, so a reader that
  // sees the claim sees the floor (the CAS is a locked instruction), and
  // cleared when that CAS fails: it is set only while a claim of ours may be
  // in flight, never while we wait or after we are refused.
  std::atomic<std::uint64_t>* floor = plain ? &header_->publishers[cache.publisher_slot].floor : nullptr;
  const auto clear_floor = [floor] {
    if (floor != nullptr) floor->store(kNoFloor, std::memory_order_release);
  };
  // relaxed: advisory; a producer that races a delete publishes into a ring
  // nobody will read, which is harmless.
  if (header_->state.load(std::memory_order_relaxed) != 0) {
    out.status = refusal();
    return out;
  }
  Pair cur = load_pair(header_->claim);
  std::uint64_t end = 0;
  std::uint64_t pad = 0;
  std::int64_t deadline_ns = 0;  // set when we first have to wait
  for (;;) {
    // An exclusive producer owns the partition: only it claims (a CAS from
    // a value without the bit fails, and the value reloaded lands here).
    if ((cur.second & kOwnedBit) != 0 && !owner) {
      out.status = PublishStatus::partition_owned;
      return out;
    }
    const std::uint64_t index = cur.first & mask_;
    pad = index + bytes > capacity_ ? capacity_ - index : 0;
    end = cur.first + pad + bytes;
    if (end > cache.limit) {
      refresh_limit(cache);
      if (end > cache.limit) {
        if (timeout_ns == 0) {
          note_backpressure(cache);
          out.status = no_broker(cache.broker) ? PublishStatus::no_broker : PublishStatus::back_pressured;
          return out;
        }
        if (deadline_ns == 0) deadline_ns = deadline_after(timeout_ns);
        out.status = wait_for_space(cache, end, deadline_ns);
        if (out.status != PublishStatus::ok) return out;
      }
      cur = load_pair(header_->claim);
      continue;
    }
    // The claim: position and next offset advance together, so offsets stay
    // dense whichever producer wins. On failure cur is reloaded. (An
    // owner's offset carries the owned bit, and keeps it.)
    if (floor != nullptr) floor->store(cur.second & ~kOwnedBit, std::memory_order_relaxed);
    if (cas16(header_->claim, cur, Pair{end, cur.second + records})) break;
    clear_floor();
  }
  out.plain = plain;
  out.position = cur.first;
  out.frame_position = cur.first + pad;
  out.end = end;
  out.offset = cur.second & ~kOwnedBit;
  prefetch_ahead(cache, end, bytes);

  if (pad != 0 || (cur.first & mask_) == 0) {
    // This claim starts the newest lap: remember it for readers that start
    // at the earliest record in the ring (before anything below can return).
    raise_pair(header_->lap_marker, Pair{out.position, out.offset});
  }
  cache.backpressured_since_ns = 0;

  // A gating reader may have registered between our limit check and the
  // claim. It bumps gate_epoch and then reads the claim word; we claimed and
  // now read gate_epoch (both sequentially consistent, the claim a locked
  // instruction). Either it saw our claim and started beyond its reach, or we
  // see its epoch here and wait for it like any gating reader (try_* calls
  // withdraw the claim at once instead: they never wait).
  if (header_->gate_epoch.load(std::memory_order_seq_cst) != cache.epoch) {
    refresh_limit(cache);
    if (end > cache.limit) {
      // Waiting with a claim made: the reader waited for may have to revoke
      // a dead claim before ours, which our floor forbids. So drop it, and
      // commit by CAS (a revocation meanwhile makes that fail).
      clear_floor();
      out.plain = false;
      const PublishStatus waited = timeout_ns == 0 ? (state() != PartitionState::live ? refusal() : PublishStatus::back_pressured)
                                                   : wait_for_space(cache, end, deadline_after(timeout_ns));
      if (waited != PublishStatus::ok) {
        abort(out, records);
        out.status = waited;
        return out;
      }
    }
  }
  if (pad != 0) {
    auto* h = reinterpret_cast<RecordHeader*>(data_at(out.position));
    h->frame_length = static_cast<std::uint32_t>(pad);
    h->type = FrameType::padding;
    h->claim_records = 0;
    h->key_length = 0;
    h->headers_length = 0;
    h->offset = out.offset;
    h->timestamp_ns = 0;
  }
  return out;
}

void PartitionRing::prefetch_ahead(ProducerCache& cache, std::uint64_t end, std::uint64_t bytes) noexcept {
  // Ask for the cache lines of the next claims now, for writing: the
  // commit's locked instruction waits until every line of this record is
  // ours, and a line a consumer read last lap costs a cross-core transfer.
  // Asked for a few claims ahead (4x this one, 512 B to 4 KiB: measured best
  // for 64 B to 4 KiB records), those transfers overlap this claim's work.
  // Each claim asks only for the lines the window newly covers, and never
  // past the limit, where a gating reader may still be reading the last lap.
  const std::uint64_t ahead = std::min(end + std::clamp<std::uint64_t>(4 * bytes, 512, 4096), cache.limit);
  for (std::uint64_t at = std::max(end, cache.prefetched_to) & ~std::uint64_t{kCacheLine - 1}; at < ahead;
       at += kCacheLine) {
    __builtin_prefetch(data_at(at), /*rw=*/1);
  }
  cache.prefetched_to = std::max(cache.prefetched_to, ahead);
}

// ---------------------------------------------------------------------------
// An exclusive owner (README, "An exclusive owner";
// bus/model/exclusive_owner.pml models these steps)

Status PartitionRing::take_lease(ProducerCache& cache) {
  auto token = client_token(instance_dir_);
  if (!token) return token.error();
  if (!has_atomic_store16()) {
    return Error{Errc::invalid_argument,
                 "an exclusive producer needs a processor with AVX (its claim word is one 16-byte store)"};
  }
  std::int32_t holder = header_->lease_owner.load(std::memory_order_acquire);
  for (;;) {
    if (holder != 0 && (holder == token.value() || !client_is_dead(instance_dir_, holder))) {
      return Error{Errc::busy, "partition " + std::to_string(partition()) + " is owned by " +
                                   (holder == token.value() ? std::string("another exclusive producer of this process")
                                                            : "the exclusive producer of client " + std::to_string(holder)) +
                                   " (it is released when that producer closes or its process dies)"};
    }
    if (header_->lease_owner.compare_exchange_strong(holder, token.value(), std::memory_order_seq_cst)) break;
  }
  // The owned bit (a takeover from a dead owner finds it set): from here
  // shared producers are refused and only we write the claim word. Then
  // where our claims start: readers never revoke a claim from there on
  // while we live, and a revocation run before it stops there.
  Pair c = load_pair(header_->claim);
  while (!cas16(header_->claim, c, Pair{c.first, c.second | kOwnedBit})) {
  }
  store16(header_->lease_start, Pair{c.first, c.second & ~kOwnedBit});
  cache.owned_tail = Pair{c.first, c.second | kOwnedBit};
  cache.lap_bound = 0;  // the first claim takes the locked path
  cache.fence_commits = !register_heavy_fence();
  return {};
}

bool PartitionRing::take_publisher_slot(ProducerCache& cache) noexcept {
  // First use, or a child made by fork(): the slot it copied is its parent's.
  auto token = client_token(instance_dir_);
  cache.publisher_slot = kNoSlotFree;
  if (!token) return false;
  for (std::uint32_t i = 0; i < kPublisherSlots; ++i) {
    PublisherSlot& s = header_->publishers[i];
    std::int32_t holder = s.owner.load(std::memory_order_acquire);
    // Free, or its producer's process is dead (it stores nothing more).
    if (holder != 0 && !client_is_dead(instance_dir_, holder)) continue;
    if (!s.owner.compare_exchange_strong(holder, token.value(), std::memory_order_seq_cst)) continue;
    s.floor.store(kNoFloor, std::memory_order_relaxed);
    raise_to(header_->publisher_high_water, i + 1, std::memory_order_seq_cst);
    cache.publisher_slot = static_cast<int>(i);
    cache.slot_generation = fork_generation();
    cache.fence_commits = !register_heavy_fence();
    return true;
  }
  return false;
}

void PartitionRing::release_publisher_slot(ProducerCache& cache) noexcept {
  // Only the taker's process: a forked child's copy must not free its
  // parent's slot.
  if (cache.publisher_slot < 0 || cache.slot_generation != fork_generation()) return;
  PublisherSlot& s = header_->publishers[cache.publisher_slot];
  s.floor.store(kNoFloor, std::memory_order_relaxed);
  s.owner.store(0, std::memory_order_release);
  cache.publisher_slot = kSlotNotYet;
}

void PartitionRing::release_lease() noexcept {
  // Only the holder's: a forked child's copy of the producer (another
  // token) must not clear the bit under its parent.
  auto token = client_token(instance_dir_);
  std::int32_t mine = token ? token.value() : 0;
  if (mine == 0 || header_->lease_owner.load(std::memory_order_acquire) != mine) return;
  // The bit first: a reader that then finds no bit revokes by the usual
  // rules, and we have no claim left pending.
  Pair c = load_pair(header_->claim);
  while (!cas16(header_->claim, c, Pair{c.first, c.second & ~kOwnedBit})) {
  }
  header_->lease_owner.compare_exchange_strong(mine, 0, std::memory_order_seq_cst);
}

ClaimSpan PartitionRing::claim_owned(ProducerCache& cache, std::uint64_t bytes, std::uint32_t records,
                                     std::int64_t timeout_ns) noexcept {
  ClaimSpan out;
  if (header_->state.load(std::memory_order_relaxed) != 0) {
    out.status = refusal();
    return out;
  }
  const Pair cur = cache.owned_tail;
  const std::uint64_t index = cur.first & mask_;
  const std::uint64_t end = cur.first + bytes;
  // Inside the lap (no padding, not a lap's first claim: those raise the
  // lap marker), below the gating readers and the frontier, and below the
  // lap marker + C - 32, so that a gating reader joining now (at or above
  // the marker) needs no handshake with us (README).
  if (index != 0 && index + bytes <= capacity_ && end <= std::min(cache.limit, cache.lap_bound)) {
    // The claim word before the frames (stores stay in order on x86):
    // a non-gating reader that sees a frame overwritten sees the claim.
    cache.owned_tail = Pair{end, cur.second + records};
    store_pair(header_->claim, cache.owned_tail);
    out.position = out.frame_position = cur.first;
    out.end = end;
    out.offset = cur.second & ~kOwnedBit;
    prefetch_ahead(cache, end, bytes);
    cache.backpressured_since_ns = 0;
    return out;
  }
  out = claim(cache, bytes, records, timeout_ns, /*owner=*/true);
  cache.owned_tail = load_pair(header_->claim);  // moved, or not (refused or waited out)
  cache.lap_bound = load_pair(header_->lap_marker).first + capacity_ - kFrameAlign;
  return out;
}

PublishStatus PartitionRing::commit_plain(const ProducerCache& cache, const ClaimSpan& claim) noexcept {
  // release: the frames before it. A store, not a CAS: nobody revokes a
  // live owner's or publisher's claims, and a dead one stores nothing more.
  entry(claim.offset).store(committed_entry(claim.position), std::memory_order_release);
  // After the entry (stores stay in order): a reader that finds the floor
  // cleared finds the claim committed.
  if (cache.publisher_slot >= 0) {
    header_->publishers[cache.publisher_slot].floor.store(kNoFloor, std::memory_order_release);
  }
  // The wake-up's load of waiters may pass the store above (store-load);
  // a sleeper's heavy_fence() orders them. Without it, an RMW on waiters
  // does (the Dekker pairing of commit(): the sleeper's is one too).
  const std::uint32_t waiters = cache.fence_commits ? header_->waiters.fetch_add(0, std::memory_order_seq_cst)
                                                    : header_->waiters.load(std::memory_order_relaxed);
  if (waiters != 0) {
    header_->wake_seq.fetch_add(1, std::memory_order_release);
    futex_wake_all(&header_->wake_seq);
  }
  return PublishStatus::ok;
}

PublishStatus PartitionRing::commit(const ClaimSpan& claim) noexcept {
  std::atomic<std::uint64_t>& e = entry(claim.offset);
  std::uint64_t v = e.load(std::memory_order_relaxed);
  // A revocation for this lap resumes beyond our claim (and a value written
  // for a later claim means the slot moved on after a revocation); anything
  // else here is a value from an earlier lap.
  if (written_after(v, claim.position)) return PublishStatus::claim_revoked;
  // seq_cst (release for the record's bytes, plus the order the futex
  // handshake below needs). A CAS, not a store, so that a reader that revoked
  // this claim as abandoned cannot be overwritten by a late commit.
  if (!e.compare_exchange_strong(v, committed_entry(claim.position), std::memory_order_seq_cst,
                                 std::memory_order_relaxed)) {
    return PublishStatus::claim_revoked;
  }
  wake_waiters();
  return PublishStatus::ok;
}

void PartitionRing::abort(const ClaimSpan& claim, std::uint32_t records) noexcept {
  // Highest offset first: a reader that sees the first offset revoked walks
  // through the others, which must be revoked by then.
  for (std::uint64_t x = claim.offset + records; x-- > claim.offset;) {
    std::atomic<std::uint64_t>& e = entry(x);
    std::uint64_t v = e.load(std::memory_order_relaxed);
    while (!written_after(v, claim.position)) {
      if (e.compare_exchange_weak(v, revoked_entry(claim.end), std::memory_order_seq_cst,
                                  std::memory_order_relaxed)) {
        break;
      }
    }
  }
  wake_waiters();
}

void PartitionRing::wake_waiters() noexcept {
  // Dekker with a blocking consumer, which increments waiters and then reads
  // the entry: one of us sees the other. Only then is the system call paid.
  if (header_->waiters.load(std::memory_order_seq_cst) != 0) {
    header_->wake_seq.fetch_add(1, std::memory_order_release);
    futex_wake_all(&header_->wake_seq);
  }
}

// ---------------------------------------------------------------------------
// Reader side

bool PartitionRing::open_cursor(ReaderCursor& cursor, StartPosition::Kind kind, std::uint64_t offset,
                                bool gating, std::string& error) {
  // A gating reader's slot names its owner by client token (liveness.h).
  std::int32_t token = 0;
  if (gating) {
    auto t = client_token(instance_dir_);
    if (!t) {
      error = t.error().message;
      return false;
    }
    token = t.value();
  }
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const Pair t = tail();
    Pair start{t.first, t.second};  // latest
    if (kind != StartPosition::Kind::latest) {
      if (t.first <= capacity_) {
        start = Pair{0, header_->id.base_offset};  // never wrapped: everything is still here
      } else {
        start = load_pair(header_->lap_marker);
        if (t.first > start.first + capacity_) {  // overwritten: a new marker is coming
          sched_yield();
          continue;
        }
      }
    }
    std::uint64_t deliver_from = start.second;
    if (kind == StartPosition::Kind::offset) {
      if (offset > t.second) {
        error = "offset " + std::to_string(offset) + " is past the end of partition " +
                std::to_string(partition()) + " (end offset " + std::to_string(t.second) + ")";
        return false;
      }
      if (offset < start.second) {
        error = "offset " + std::to_string(offset) + " of partition " + std::to_string(partition()) +
                " is no longer in the ring (earliest is " + std::to_string(start.second) + ")";
        return false;
      }
      deliver_from = offset;
    }
    cursor = ReaderCursor{};
    cursor.offset = start.second;
    cursor.position = start.first;
    cursor.deliver_from = deliver_from;
    if (!gating) return true;
    cursor.raises_frontier = start.first <= load_pair(header_->frontier).first;

    int slot = -1;
    for (std::uint32_t i = 0; i < kGatingSlots && slot < 0; ++i) {
      std::uint32_t expected = static_cast<std::uint32_t>(SlotState::free);
      if (header_->gating[i].state.compare_exchange_strong(expected, kSlotReserved,
                                                          std::memory_order_acquire)) {
        slot = static_cast<int>(i);
      }
    }
    if (slot < 0) {
      error = "all " + std::to_string(kGatingSlots) + " gating slots of partition " +
              std::to_string(partition()) + " are in use";
      return false;
    }
    GatingSlot& s = header_->gating[slot];
    s.owner.store(token, std::memory_order_relaxed);
    s.position.store(start.first, std::memory_order_relaxed);
    // A CAS, not a store: a reaper that took the slot for a dead registrant's
    // (it still had the previous owner's pid) has freed it; then start over.
    std::uint32_t reserved = kSlotReserved;
    if (!s.state.compare_exchange_strong(reserved, static_cast<std::uint32_t>(SlotState::active),
                                         std::memory_order_release)) {
      continue;
    }
    raise_to(header_->gating_high_water, static_cast<std::uint32_t>(slot) + 1, std::memory_order_release);
    // Registration handshake with claiming producers (see claim()).
    header_->gate_epoch.fetch_add(1, std::memory_order_seq_cst);
    const Pair after = load_pair_seq_cst(header_->claim);
    if (after.first > start.first + capacity_) {
      // Producers had already claimed over our start: try again further on.
      s.state.store(static_cast<std::uint32_t>(SlotState::free), std::memory_order_release);
      continue;
    }
    cursor.gating_slot = slot;
    return true;
  }
  error = "could not find a stable start position in partition " + std::to_string(partition()) +
          " (producers are lapping the ring faster than a reader can join)";
  return false;
}

bool PartitionRing::open_broker_gate(ReaderCursor& cursor, std::string& error) {
  // A dead broker's flusher left its gate: producers never free it, so
  // everything from its position on is still in the ring.
  for (std::uint32_t i = 0; i < kGatingSlots; ++i) {
    GatingSlot& s = header_->gating[i];
    if (s.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SlotState::active) ||
        s.owner.load(std::memory_order_relaxed) != kBrokerGateOwner) {
      continue;
    }
    cursor = ReaderCursor{};
    cursor.position = s.position.load(std::memory_order_acquire);
    cursor.offset = s.offset.load(std::memory_order_relaxed);  // its writer is dead: no race
    cursor.deliver_from = cursor.offset;
    cursor.gating_slot = static_cast<int>(i);
    cursor.raises_frontier = cursor.position <= load_pair(header_->frontier).first;
    return true;
  }
  if (!open_cursor(cursor, StartPosition::Kind::offset, header_->id.base_offset, true, error)) return false;
  GatingSlot& s = header_->gating[cursor.gating_slot];
  s.offset.store(cursor.offset, std::memory_order_relaxed);
  s.owner.store(kBrokerGateOwner, std::memory_order_release);
  return true;
}

void PartitionRing::close_cursor(ReaderCursor& cursor) noexcept {
  if (cursor.gating_slot >= 0) {
    header_->gating[cursor.gating_slot].state.store(static_cast<std::uint32_t>(SlotState::free),
                                                    std::memory_order_release);
    cursor.gating_slot = -1;
  }
}

void PartitionRing::publish_gate(const ReaderCursor& cursor) noexcept {
  // release: our reads of everything below position happen before a
  // producer (which acquires the position) overwrites it. The offset first:
  // a broker adopting a dead flusher's gate reads both.
  GatingSlot& slot = header_->gating[cursor.gating_slot];
  slot.offset.store(cursor.offset, std::memory_order_relaxed);
  slot.position.store(cursor.position, std::memory_order_release);
  // A reader that started at or below the frontier has seen every claim
  // since committed or revoked, so its cursor is a frontier too. Raising it
  // here (once per poll) spares producers the walk.
  if (cursor.raises_frontier) raise_pair(header_->frontier, Pair{cursor.position, cursor.offset});
}

bool PartitionRing::overwritten_since(std::uint64_t position) const noexcept {
  // The copy's loads must complete before we look at the claim word; if no
  // claim reached into position's lap yet, nothing we copied was overwritten.
#if defined(__SANITIZE_THREAD__)
  // TSan does not model fences. The copy this orders races with overwriting
  // producers by design (seqlock style), so it is not run under TSan with
  // concurrent producers anyway; a compiler barrier keeps the build going.
  std::atomic_signal_fence(std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_acquire);
#endif
  // Exact: a claim ending at e has overwritten the positions below e - C.
  return tail().first > position + capacity_;
}

Step PartitionRing::step(ReaderCursor& cursor, bool gating) noexcept {
  const std::uint64_t v = entry(cursor.offset).load(std::memory_order_acquire);
  if (v == committed_entry(cursor.position)) return Step::committed;
  if (revoked_for(v, cursor.position)) {
    // An aborted or abandoned offset: step over it. (A value from an earlier
    // lap always decodes below the cursor's position; README.)
    if (cursor.offset >= cursor.deliver_from) ++cursor.skipped;
    cursor.offset += 1;
    cursor.position = entry_position(v);
    return Step::skipped;
  }
  // The entry was written for a later claim: producers reused the slot, so
  // they are a lap or more past us. (Overwritten bytes of a claim we are
  // still copying are caught by the copy's own check.)
  if (!gating && written_after(v, cursor.position)) return Step::lapped;
  if (deleted()) return Step::deleted;
  // Not published yet. The claim word is the producers' hottest line; a
  // caught-up reader that read it on every empty poll would pull it away from
  // them each time, so it looks only every so often.
  constexpr std::uint32_t kLooksPerCheck = 64;
  track_offset(cursor);
  if (++cursor.idle_looks % kLooksPerCheck == 0) check_abandoned(cursor);
  return Step::not_ready;
}

bool PartitionRing::check_abandoned(ReaderCursor& cursor) noexcept {
  track_offset(cursor);
  const Pair raw = load_pair(header_->claim);  // the owned bit too
  const Pair t{raw.first, raw.second & ~kOwnedBit};
  if (t.second <= cursor.offset) {
    cursor.stuck_since_ns = 0;  // nothing claimed there: nobody to wait for
    return false;
  }
  const std::uint64_t v = entry(cursor.offset).load(std::memory_order_acquire);
  if (v == committed_entry(cursor.position) || revoked_for(v, cursor.position)) return false;
  // Claimed, not committed. If it stays so for the abandoned-claim timeout,
  // its producer is taken for dead and the claim is revoked.
  const std::int64_t now = monotonic_ns();
  if (cursor.stuck_since_ns == 0) {
    cursor.stuck_since_ns = now;
  } else if (now - cursor.stuck_since_ns >= abandoned_timeout_ns_) {
    revoke_abandoned(cursor, raw);
    cursor.stuck_since_ns = 0;
    return false;
  }
  return true;
}

void PartitionRing::revoke_abandoned(ReaderCursor& cursor, Pair raw) noexcept {
  const std::uint64_t o = cursor.offset;
  const std::uint64_t p = cursor.position;
  const Pair t{raw.first, raw.second & ~kOwnedBit};
  // Never store a resume position a lap or more past the cursor (the stale /
  // current distinction rests on it); a reader that far behind is lapped.
  if (t.first + kFrameAlign > p + capacity_) return;

  // The run of offsets to revoke is [o, j): up to the first offset after o
  // that is already published for this lap (committed, or revoked by someone
  // else), or up to the claim word's offset. R is where readers resume.
  std::uint64_t j = t.second;
  std::uint64_t resume = t.first;
  if ((raw.second & kOwnedBit) != 0) {
    // A live exclusive owner's claims are never revoked: it commits with a
    // plain store, which would land on the revocation. Wait for them, and
    // stop a run that reaches them where they start. The claim word was
    // read before the lease (the model's order): a lease taken since holds
    // claims only past it. A dead owner stores nothing more.
    const std::int32_t owner = header_->lease_owner.load(std::memory_order_acquire);
    const Pair start = load_pair(header_->lease_start);
    if (owner != 0 && !client_is_dead(instance_dir_, owner)) {
      if (o >= start.second) return;
      if (start.second < j) {
        j = start.second;
        resume = start.first;
      }
    }
  }
  for (std::uint64_t x = o + 1; x < j; ++x) {
    const std::uint64_t v = entry(x).load(std::memory_order_acquire);
    if ((is_committed_entry(v) || is_revoked_entry(v)) && entry_position(v) > p) {
      j = x;
      resume = entry_position(v);
      break;
    }
  }
  // A live publisher's plain claim may lie in the run: wait for it (it
  // clears its floor once committed; bus/model/shared_publishers.pml).
  if (publisher_in_flight_below(j)) return;
  // Highest first, so a reader never finds a revoked offset followed by one
  // that is not yet revoked.
  for (std::uint64_t x = j; x-- > o;) {
    std::atomic<std::uint64_t>& e = entry(x);
    std::uint64_t v = e.load(std::memory_order_acquire);
    for (;;) {
      // Committed or revoked for this lap (its producer was alive after all,
      // or another revoker got here first) - or for a later lap, if we were
      // delayed so long that producers lapped the ring: never overwrite that.
      if ((is_committed_entry(v) && entry_position(v) >= p) || (is_revoked_entry(v) && entry_position(v) > p)) {
        resume = entry_position(v);
        break;
      }
      if (e.compare_exchange_weak(v, revoked_entry(resume), std::memory_order_seq_cst,
                                  std::memory_order_acquire)) {
        break;
      }
    }
  }
  wake_waiters();
}

bool PartitionRing::publisher_in_flight_below(std::uint64_t end) const noexcept {
  const std::uint32_t n = std::min(header_->publisher_high_water.load(std::memory_order_acquire), kPublisherSlots);
  for (std::uint32_t i = 0; i < n; ++i) {
    const PublisherSlot& s = header_->publishers[i];
    if (s.floor.load(std::memory_order_acquire) >= end) continue;  // kNoFloor too
    const std::int32_t owner = s.owner.load(std::memory_order_acquire);
    if (owner != 0 && !client_is_dead(instance_dir_, owner)) return true;
  }
  return false;
}

bool PartitionRing::has_news(const ReaderCursor& cursor, bool gating) const noexcept {
  // seq_cst: the load of Consumer::wait's Dekker handshake (waiters += 1,
  // then this; commit is a seq_cst CAS, then a load of waiters).
  const std::uint64_t v = entry(cursor.offset).load(std::memory_order_seq_cst);
  return v == committed_entry(cursor.position) || revoked_for(v, cursor.position) ||
         (!gating && written_after(v, cursor.position)) || deleted();
}

std::uint32_t PartitionRing::gating_readers() const noexcept {
  std::uint32_t n = 0;
  for (const GatingSlot& s : header_->gating) {
    n += s.state.load(std::memory_order_relaxed) == static_cast<std::uint32_t>(SlotState::active);
  }
  return n;
}

std::uint32_t PartitionRing::reap_dead_gating_readers() noexcept {
  std::uint32_t freed = 0;
  for (GatingSlot& s : header_->gating) {
    std::uint32_t st = s.state.load(std::memory_order_acquire);
    // Active, or reserved by a reader that may have died while registering.
    if (st == static_cast<std::uint32_t>(SlotState::free)) continue;
    const std::int32_t owner = s.owner.load(std::memory_order_relaxed);
    // The flusher's gate holds what is not on disk yet: only a starting
    // broker takes it over.
    if (owner == kBrokerGateOwner || !client_is_dead(instance_dir_, owner)) continue;
    if (s.state.compare_exchange_strong(st, static_cast<std::uint32_t>(SlotState::free),
                                        std::memory_order_acq_rel)) {
      ++freed;
    }
  }
  return freed;
}

std::string PartitionRing::leader_elsewhere() const {
  PartitionHeader& h = *header_;
  char name[kLeaderNameMax + 1];
  for (;;) {
    const std::uint32_t before = h.leader_seq.load(std::memory_order_acquire);
    if (before % 2 == 0) {
      // Acquire loads (plain moves on x86), not a fence (which ThreadSanitizer
      // does not model): a byte from a write in progress carries that
      // write's odd sequence with it, and the check below sees it.
      for (std::size_t i = 0; i <= kLeaderNameMax; ++i) name[i] = std::atomic_ref<char>(h.leader[i]).load(std::memory_order_acquire);
      if (h.leader_seq.load(std::memory_order_relaxed) == before) break;
    }
    cpu_relax();
  }
  name[kLeaderNameMax] = '\0';
  return name;
}

// One writer (the broker's cluster node): odd while the bytes change.
void PartitionRing::set_leader_elsewhere(std::string_view name) noexcept {
  PartitionHeader& h = *header_;
  const std::uint32_t seq = h.leader_seq.load(std::memory_order_relaxed);
  h.leader_seq.store(seq + 1, std::memory_order_relaxed);
  const std::size_t n = std::min(name.size(), kLeaderNameMax);
  // Release stores: each keeps the odd sequence before it.
  for (std::size_t i = 0; i <= kLeaderNameMax; ++i)
    std::atomic_ref<char>(h.leader[i]).store(i < n ? name[i] : '\0', std::memory_order_release);
  h.leader_seq.store(seq + 2, std::memory_order_release);
}

}  // namespace ringbus::detail
