// The shared-memory layout of one partition ring file. The prose spec is in
// bus/README.md ("Partition file"); this file is the single source of truth
// for sizes and offsets, and every struct here is checked by static_assert.
//
// A partition file is:   [PartitionHeader][commit entries][ring data]
//   PartitionHeader  kPartitionHeaderSize bytes (identity, claim word, wake-up
//                    word, gating slots), each hot word on its own cache lines
//   commit entries   entry_count x 8 bytes, entry_count = ring_capacity / 32
//   ring data        ring_capacity bytes (a power of two), records framed by
//                    RecordHeader at 32-byte aligned positions
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ringbus::detail {

inline constexpr std::uint64_t kPartitionMagic = 0x50'53'55'42'47'4e'49'52ULL;  // "RINGBUSP"
inline constexpr std::uint32_t kLayoutVersion = 7;  // 2: base offset, commit-log line; 3: gate offsets, the broker's gate; 4: headers in Kafka's encoding; 5: batch frames; 6: the exclusive owner's lease; 7: publisher slots (shared producers' plain commits)

// Records are framed at this alignment; it is also the smallest frame, so a
// ring of C bytes holds at most C / kFrameAlign offsets, which is what sizes
// the commit-entry array (one entry per offset in flight).
inline constexpr std::uint32_t kFrameAlign = 32;
inline constexpr std::size_t kCacheLine = 64;
// Aeron pads hot counters to two lines: the adjacent-line prefetcher pulls
// pairs of lines, so one line of padding is not enough to stop false sharing.
inline constexpr std::size_t kHotPad = 2 * kCacheLine;

inline constexpr std::uint32_t kGatingSlots = 64;
inline constexpr std::uint32_t kPublisherSlots = 64;
inline constexpr std::uint32_t kTopicNameMax = 249;  // Kafka's limit
// The longest leader's name a ring keeps (PartitionHeader::leader): a
// cluster's node names may be longer, and are cut.
inline constexpr std::size_t kLeaderNameMax = 87;

inline constexpr std::uint64_t kMinRingCapacity = 64 * 1024;
inline constexpr std::uint64_t kMaxRingCapacity = 1ULL << 40;  // 1 TiB

// ---------------------------------------------------------------------------
// Record frame, at a kFrameAlign-aligned position of the ring.
// Layout of a record frame: [RecordHeader][key][headers][value], padded with
// unspecified bytes up to the next kFrameAlign boundary.
enum class FrameType : std::uint16_t {
  record = 1,
  padding = 2,  // fills the ring's end when a claim wraps; no offset
  // A Kafka record batch v2 from elsewhere (Producer::try_publish_record_batch),
  // whole: [RecordHeader][the batch as it came], the only frame of its
  // claim. claim_records is the batch's record count (one offset each, from
  // `offset`; the batch's own baseOffset is not read), key_length and
  // headers_length are 0, timestamp_ns is when it was claimed.
  batch = 3,
};

struct RecordHeader {
  std::uint32_t frame_length;    // header + key + headers + value, unaligned
  FrameType type;                // record or padding
  std::uint16_t claim_records;   // first frame of a claim: records in the claim
  std::uint32_t key_length;      // bytes; 0 = no key
  std::uint32_t headers_length;  // bytes of encoded headers (see record_headers.h)
  std::uint64_t offset;          // dense offset of this record in its partition
  std::int64_t timestamp_ns;     // CLOCK_REALTIME at publish, nanoseconds
};
static_assert(std::is_standard_layout_v<RecordHeader>);
static_assert(sizeof(RecordHeader) == 32);
static_assert(offsetof(RecordHeader, offset) == 16);
static_assert(kFrameAlign >= sizeof(RecordHeader));
static_assert(offsetof(RecordHeader, frame_length) == 0);
static_assert(offsetof(RecordHeader, type) == 4);
static_assert(offsetof(RecordHeader, claim_records) == 6);
static_assert(offsetof(RecordHeader, key_length) == 8);
static_assert(offsetof(RecordHeader, headers_length) == 12);
static_assert(offsetof(RecordHeader, timestamp_ns) == 24);

constexpr std::uint64_t align_frame(std::uint64_t n) {
  return (n + kFrameAlign - 1) & ~std::uint64_t{kFrameAlign - 1};
}

// ---------------------------------------------------------------------------
// Commit entries. Entry i describes offset o with o % entry_count == i. The
// value says, for the current lap, whether offset o was published:
//   committed:  p + 1            (p = ring position of the claim's first frame;
//                                 odd, since p is 32-aligned)
//   revoked:    kRevokedBit | r  (the claim was aborted or its producer died:
//                                 readers step to offset o + 1 at position r)
//   anything else is a value left from an earlier lap: not yet published.
// Positions only grow and a ring holds fewer than entry_count offsets, so a
// value left from an earlier lap always decodes to a position below the one a
// reader expects, and can never be mistaken for the current one. Keeping the
// entries apart from the data is what makes this exact: a stale record body
// can contain any bytes, a stale entry cannot.
inline constexpr std::uint64_t kRevokedBit = 1ULL << 63;
// In the claim word's offset: an exclusive producer owns the partition.
inline constexpr std::uint64_t kOwnedBit = 1ULL << 63;
constexpr std::uint64_t committed_entry(std::uint64_t pos) { return pos + 1; }
constexpr std::uint64_t revoked_entry(std::uint64_t resume) { return kRevokedBit | resume; }
constexpr bool is_revoked_entry(std::uint64_t v) { return (v & kRevokedBit) != 0; }
constexpr bool is_committed_entry(std::uint64_t v) { return (v & kRevokedBit) == 0 && (v & 1) == 1; }
constexpr std::uint64_t entry_position(std::uint64_t v) {
  return is_revoked_entry(v) ? (v & ~kRevokedBit) : v - 1;
}
// True if v was written for a claim after `position` (in this lap or a later
// one). Values from earlier laps are never that.
constexpr bool written_after(std::uint64_t v, std::uint64_t position) {
  return (is_committed_entry(v) || is_revoked_entry(v)) && entry_position(v) > position;
}

// ---------------------------------------------------------------------------
// Gating slot: one per registered gating reader (and the broker's flusher).
// Producers never claim past min(active positions) + capacity.
enum class SlotState : std::uint32_t { free = 0, active = 1, reserved = 2 };

// GatingSlot::owner of the broker's flusher. Producers free the slots of dead
// readers, but never this one: what it gates is not yet on disk, and only a
// starting broker takes it over (after a crash, from where the dead
// flusher's writes had completed).
inline constexpr std::int32_t kBrokerGateOwner = -1;

struct alignas(kHotPad) GatingSlot {
  std::atomic<std::uint64_t> position;  // the reader's next byte position
  std::atomic<std::uint32_t> state;     // SlotState
  std::atomic<std::int32_t> owner;      // the owner's client token (liveness.h), to free the slot if it
                                        // died; kBrokerGateOwner: the broker's flusher
  std::atomic<std::uint64_t> offset;    // the offset at `position` (stored before it)
  std::uint8_t pad[kHotPad - 24];
};
static_assert(sizeof(GatingSlot) == kHotPad);
static_assert(offsetof(GatingSlot, position) == 0);
static_assert(offsetof(GatingSlot, state) == 8);
static_assert(offsetof(GatingSlot, owner) == 12);
static_assert(offsetof(GatingSlot, offset) == 16);
static_assert(offsetof(GatingSlot, pad) == 24);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::int32_t>::is_always_lock_free);

// ---------------------------------------------------------------------------
// Publisher slot: one per shared Producer that commits with a plain store
// (bus/README.md, "Shared producers' plain commits"). `floor` is set, just
// before each claim's CAS, to the offset that CAS claims from, and cleared
// after the commit: readers never revoke a claim at or past a live owner's
// floor. The owner's line alone: nobody else writes it.
inline constexpr std::uint64_t kNoFloor = ~std::uint64_t{0};

struct alignas(kHotPad) PublisherSlot {
  std::atomic<std::int32_t> owner;   // the owner's client token (liveness.h); 0: free
  std::uint32_t reserved;
  std::atomic<std::uint64_t> floor;  // kNoFloor: no plain claim in flight
  std::uint8_t pad[kHotPad - 16];
};
static_assert(sizeof(PublisherSlot) == kHotPad);
static_assert(offsetof(PublisherSlot, owner) == 0);
static_assert(offsetof(PublisherSlot, floor) == 8);

// ---------------------------------------------------------------------------
// The identity of a partition file: written once by the creator before the
// file is published, read-only after. Trivially copyable, so a reader can copy
// it out of an untrusted file and check it (validate_partition_header).
struct PartitionIdentity {
  std::uint64_t magic;             // kPartitionMagic
  std::uint32_t layout_version;    // kLayoutVersion
  std::uint32_t header_size;       // sizeof(PartitionHeader)
  std::uint64_t file_size;         // header + entries + ring
  std::uint64_t ring_capacity;     // bytes, power of two
  std::uint64_t entry_count;       // ring_capacity / kFrameAlign
  std::uint64_t topic_id;          // unique per created topic (a new topic
                                   // with a reused name gets a new id)
  std::uint32_t max_record_size;   // key + headers + value bytes
  std::uint32_t partition;         // this partition's index
  std::uint32_t partition_count;
  std::uint32_t gating_slot_count; // kGatingSlots
  std::uint64_t abandoned_claim_timeout_ns;
  char topic_name[kTopicNameMax + 7];  // NUL-terminated
  std::uint64_t base_offset;       // offset of the ring's first record (a
                                   // topic recovered from its commit log goes
                                   // on from the log's end offset)
};
static_assert(std::is_trivially_copyable_v<PartitionIdentity>);
static_assert(offsetof(PartitionIdentity, magic) == 0);
static_assert(offsetof(PartitionIdentity, layout_version) == 8);
static_assert(offsetof(PartitionIdentity, header_size) == 12);
static_assert(offsetof(PartitionIdentity, ring_capacity) == 24);
static_assert(offsetof(PartitionIdentity, topic_name) == 72);
static_assert(offsetof(PartitionIdentity, base_offset) == 328);
static_assert(sizeof(PartitionIdentity) == 336);
static_assert(offsetof(PartitionIdentity, file_size) == 16);
static_assert(offsetof(PartitionIdentity, entry_count) == 32);
static_assert(offsetof(PartitionIdentity, topic_id) == 40);
static_assert(offsetof(PartitionIdentity, max_record_size) == 48);
static_assert(offsetof(PartitionIdentity, partition) == 52);
static_assert(offsetof(PartitionIdentity, partition_count) == 56);
static_assert(offsetof(PartitionIdentity, gating_slot_count) == 60);
static_assert(offsetof(PartitionIdentity, abandoned_claim_timeout_ns) == 64);

// ---------------------------------------------------------------------------
// The partition header. Lines are grouped by who writes them.
struct PartitionHeader {
  PartitionIdentity id;
  std::uint8_t pad_identity[kHotPad * 3 - sizeof(PartitionIdentity)];

  // --- status: written by the broker (delete, offline), read by clients
  // when idle (and by producers at each claim: 0 is the fast path).
  alignas(kHotPad) std::atomic<std::uint32_t> state;  // PartitionState
  std::atomic<std::uint32_t> gating_high_water;  // slots in use are [0, high water)
  std::atomic<std::uint64_t> gate_epoch;         // bumped on every gating registration
  // A cluster's topic led by another node (state mirror or released): that
  // node's name, NUL-terminated (a longer name is cut), written by the
  // broker's cluster node under a seqlock (leader_seq odd while it writes:
  // PartitionRing::leader_elsewhere). Zero in rings made before it.
  std::atomic<std::uint32_t> leader_seq;
  char leader[kLeaderNameMax + 1];
  // An exclusive producer's lease (bus/README.md, "An exclusive owner"):
  // its owner's client token (0: none), taken by a CAS from 0 or from a
  // dead owner's token; and {position, offset} of the claim word when it was
  // taken (stored by cas16 after the owned bit is set): the owner's claims
  // start there, and readers never revoke them while the owner lives.
  std::atomic<std::int32_t> lease_owner;
  alignas(16) std::uint64_t lease_start[2];

  // --- claim word: {position, next offset}, changed only together by a
  // 16-byte compare-and-swap (cmpxchg16b), read as two ordered 8-byte loads.
  // While an exclusive producer holds the lease, the offset carries
  // kOwnedBit and only that producer writes the word (an aligned 16-byte
  // store between its locked claims: bus/README.md, "An exclusive owner").
  alignas(kHotPad) std::uint64_t claim[2];
  std::uint8_t pad_claim[kHotPad - 16];

  // --- lap marker: {position, offset} of the first claim of the newest lap,
  // so a reader can start at the earliest record still in the ring.
  alignas(kHotPad) std::uint64_t lap_marker[2];
  std::uint8_t pad_lap[kHotPad - 16];

  // --- commit frontier: {position, offset} below which every claim is
  // committed or revoked. Producers never claim past it + capacity, so no
  // producer ever overwrites a claim that is still being written. Raised by
  // gating readers as they read (those that started at or below it), and by
  // producers walking the commit entries when it holds them back.
  alignas(kHotPad) std::uint64_t frontier[2];
  std::uint8_t pad_frontier[kHotPad - 16];

  // --- wake-up word for blocking consumers (futex, cross-process).
  alignas(kHotPad) std::atomic<std::uint32_t> wake_seq;
  std::atomic<std::uint32_t> waiters;
  // Publisher slots ever taken are [0, this): while it is not 0, a sleeper
  // fences the publishers' plain commits (CommitSleep::sleep).
  std::atomic<std::uint32_t> publisher_high_water;
  std::uint8_t pad_wake[kHotPad - 12];

  // --- commit log: written by the broker's flusher (io/), read by producers
  // waiting for durability and by consumers that read from disk.
  alignas(kHotPad) std::atomic<std::uint32_t> log_durability;  // LogDurability
  std::atomic<std::int32_t> log_error;          // 0, or the errno the flusher is stuck on
  std::atomic<std::uint64_t> log_start_offset;  // earliest offset on disk (retention raises it)
  std::atomic<std::uint64_t> log_written;       // batches below this offset are written (readable)
  std::atomic<std::uint64_t> log_durable;       // ... and below this one, fdatasync'ed
  std::atomic<std::uint32_t> durable_seq;       // futex word: bumped when log_durable or log_error changes
  std::atomic<std::uint32_t> durable_waiters;   // producers blocked in wait_durable or wait_replicated
  // Replication (a cluster's topic, cluster/README.md): min_insync is set
  // when the rings are made (from topic.meta), the other two by the leading
  // node of the cluster; read by producers in wait_replicated and by
  // consumers that read only replicated records; durable_seq wakes them.
  // All zero in a ring whose topic is not replicated (and in rings made
  // before these fields: they were padding, which is zero).
  std::atomic<std::uint64_t> log_replicated;    // the high watermark: below it, durable on every in-sync replica
  std::atomic<std::uint32_t> insync_replicas;   // in-sync replicas, the leader counted (0: none published yet)
  std::atomic<std::uint32_t> min_insync;        // what acks=all needs of them (0: not replicated)
  // Bytes of batches the flusher has written through this ring, a running
  // count (stored before log_written moves): a cluster's leader reads each
  // mirror's lag in bytes off it. Zero in older rings.
  std::atomic<std::uint64_t> log_bytes;
  // Producers blocked in wait_durable or wait_replicated (a hint, relaxed):
  // while any is, the flusher writes what the ring holds at once instead of
  // lingering for more (someone is waiting for it). Zero in older rings.
  std::atomic<std::uint32_t> ack_waiters;
  std::uint8_t pad_log[kHotPad - 68];

  GatingSlot gating[kGatingSlots];
  PublisherSlot publishers[kPublisherSlots];
};
static_assert(std::is_standard_layout_v<PartitionHeader>);
static_assert(offsetof(PartitionHeader, id) == 0);
static_assert(offsetof(PartitionHeader, state) == 3 * kHotPad);
static_assert(offsetof(PartitionHeader, claim) == 4 * kHotPad);
static_assert(offsetof(PartitionHeader, lap_marker) == 5 * kHotPad);
static_assert(offsetof(PartitionHeader, frontier) == 6 * kHotPad);
static_assert(offsetof(PartitionHeader, wake_seq) == 7 * kHotPad);
static_assert(offsetof(PartitionHeader, log_durability) == 8 * kHotPad);
static_assert(offsetof(PartitionHeader, log_written) == 8 * kHotPad + 16);
static_assert(offsetof(PartitionHeader, gating) == 9 * kHotPad);
static_assert(offsetof(PartitionHeader, publishers) == (9 + kGatingSlots) * kHotPad);
static_assert(sizeof(PartitionHeader) == (9 + kGatingSlots + kPublisherSlots) * kHotPad);
static_assert(offsetof(PartitionHeader, pad_identity) == 336);
static_assert(offsetof(PartitionHeader, gating_high_water) == 388);
static_assert(offsetof(PartitionHeader, gate_epoch) == 392);
static_assert(offsetof(PartitionHeader, leader_seq) == 400);
static_assert(offsetof(PartitionHeader, leader) == 404);
static_assert(offsetof(PartitionHeader, lease_owner) == 404 + kLeaderNameMax + 1);
static_assert(offsetof(PartitionHeader, lease_start) == 496);
static_assert(offsetof(PartitionHeader, lease_start) + 16 == 4 * kHotPad);
static_assert(offsetof(PartitionHeader, pad_claim) == 528);
static_assert(offsetof(PartitionHeader, pad_lap) == 656);
static_assert(offsetof(PartitionHeader, pad_frontier) == 784);
static_assert(offsetof(PartitionHeader, waiters) == 900);
static_assert(offsetof(PartitionHeader, publisher_high_water) == 904);
static_assert(offsetof(PartitionHeader, pad_wake) == 908);
static_assert(offsetof(PartitionHeader, log_error) == 1028);
static_assert(offsetof(PartitionHeader, log_start_offset) == 1032);
static_assert(offsetof(PartitionHeader, log_durable) == 1048);
static_assert(offsetof(PartitionHeader, durable_seq) == 1056);
static_assert(offsetof(PartitionHeader, durable_waiters) == 1060);
static_assert(offsetof(PartitionHeader, log_replicated) == 1064);
static_assert(offsetof(PartitionHeader, insync_replicas) == 1072);
static_assert(offsetof(PartitionHeader, min_insync) == 1076);
static_assert(offsetof(PartitionHeader, log_bytes) == 1080);
static_assert(offsetof(PartitionHeader, ack_waiters) == 1088);
static_assert(offsetof(PartitionHeader, pad_log) == 1092);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// PartitionHeader::state.
enum class PartitionState : std::uint32_t {
  live = 0,
  deleted = 1,  // the topic was deleted: producers stop, consumers drain what was published
  offline = 2,  // the partition's commit log cannot be opened: producers are refused
  mirror = 3,   // a cluster mirror's copy: producers are refused (not_leader),
                // consumers read the copy's log, never the ring
  released = 4,  // a cluster's topic this broker no longer leads (its node
                 // stepped down): producers are refused (not_leader);
                 // consumers drain what was published, then see the topic
                 // deleted (and open it again, as a mirror's copy)
};

// PartitionHeader::log_durability: whether a flusher serves the partition,
// and what "durable" means for it.
enum class LogDurability : std::uint32_t {
  none = 0,        // no commit log (a broker without a data directory)
  page_cache = 1,  // durable = written to the page cache
  synced = 2,      // durable = fdatasync'ed (by interval or before every ack)
};
static_assert(alignof(PartitionHeader) == kHotPad);

// Offsets inside the file.
inline constexpr std::uint64_t kEntriesOffset = sizeof(PartitionHeader);
constexpr std::uint64_t ring_data_offset(std::uint64_t entry_count) {
  // The ring starts page-aligned so that huge records never straddle a page
  // more than they have to, and so the header and entries are not in its TLB
  // reach.
  return (kEntriesOffset + entry_count * 8 + 4095) & ~std::uint64_t{4095};
}
constexpr std::uint64_t partition_file_size(std::uint64_t ring_capacity) {
  return ring_data_offset(ring_capacity / kFrameAlign) + ring_capacity;
}

}  // namespace ringbus::detail
