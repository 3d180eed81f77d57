// The shared-memory layout of a consumer group file. The prose spec is in
// bus/README.md ("Consumer groups"); this file is the single source of truth
// for sizes and offsets, and every struct is checked by static_assert.
//
// A group file, topics/<topic>/group-<name> in the instance directory, is:
//   [GroupHeader][GroupPartition x partitions][ChunkSlot x partitions x chunk_slots]
// (chunk_slots is 0 for a publish-subscribe group.)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "partition_format.h"

namespace ringbus::detail {

inline constexpr std::uint64_t kGroupMagic = 0x47'53'55'42'47'4e'49'52ULL;  // "RINGBUSG"
inline constexpr std::uint32_t kGroupLayoutVersion = 2;  // 2: members and claims named by client token
inline constexpr std::uint32_t kGroupMembers = 64;       // members per group
inline constexpr std::uint32_t kChunkSlots = 256;        // queue: chunks in flight per partition
inline constexpr std::uint32_t kChunkRecords = 64;       // queue: offsets per chunk (one ack bitmap word)
inline constexpr std::uint32_t kMaxDeliveriesLimit = 10000;  // fits the 14-bit delivery count
inline constexpr std::uint32_t kGroupNameMax = 249;
inline constexpr std::uint64_t kNoOffset = ~std::uint64_t{0};  // pubsub: nothing committed yet

enum class GroupModeCode : std::uint32_t { pubsub = 1, queue = 2 };
enum class GroupStartCode : std::uint32_t { earliest = 1, latest = 2 };

struct GroupIdentity {
  std::uint64_t magic;               // kGroupMagic
  std::uint32_t layout_version;      // kGroupLayoutVersion
  std::uint32_t header_size;         // sizeof(GroupHeader)
  std::uint64_t file_size;           // header + partitions + chunk slots
  std::uint64_t topic_id;            // the topic this group belongs to
  std::uint32_t partition_count;     // the topic's
  std::uint32_t mode;                // GroupModeCode
  std::uint32_t chunk_slots;         // kChunkSlots for a queue group, 0 for pubsub
  std::uint32_t max_deliveries;      // queue: dead-letter after this many deliveries (0: never)
  std::uint64_t lease_ns;            // queue: a chunk not acknowledged within this is redelivered
  std::uint64_t session_timeout_ns;  // a member with no heartbeat for this long is dead
  std::uint32_t start;               // GroupStartCode: where a partition with no committed offset starts
  std::uint32_t reserved;
  char group_name[256];              // NUL-terminated
  char dead_letter_topic[256];       // NUL-terminated; empty: none
};
static_assert(std::is_standard_layout_v<GroupIdentity>);
static_assert(sizeof(GroupIdentity) == 584);
static_assert(offsetof(GroupIdentity, magic) == 0);
static_assert(offsetof(GroupIdentity, layout_version) == 8);
static_assert(offsetof(GroupIdentity, header_size) == 12);
static_assert(offsetof(GroupIdentity, file_size) == 16);
static_assert(offsetof(GroupIdentity, topic_id) == 24);
static_assert(offsetof(GroupIdentity, partition_count) == 32);
static_assert(offsetof(GroupIdentity, mode) == 36);
static_assert(offsetof(GroupIdentity, chunk_slots) == 40);
static_assert(offsetof(GroupIdentity, max_deliveries) == 44);
static_assert(offsetof(GroupIdentity, lease_ns) == 48);
static_assert(offsetof(GroupIdentity, session_timeout_ns) == 56);
static_assert(offsetof(GroupIdentity, start) == 64);
static_assert(offsetof(GroupIdentity, reserved) == 68);
static_assert(offsetof(GroupIdentity, group_name) == 72);
static_assert(offsetof(GroupIdentity, dead_letter_topic) == 328);

// Member slot word: incarnation << 8 | state. The incarnation grows on every
// join, so a token naming an earlier occupant of the slot no longer matches.
enum class MemberState : std::uint8_t { free = 0, reserved = 1, active = 2 };

struct alignas(kHotPad) MemberSlot {
  std::atomic<std::uint64_t> word;
  std::atomic<std::int32_t> client;        // the member's client token (liveness.h): alive while locked
  std::atomic<std::int32_t> pid;           // in the member's own pid namespace: for display only
  std::atomic<std::int64_t> heartbeat_ns;  // CLOCK_MONOTONIC, written by the member
  std::atomic<std::int64_t> joined_ns;     // CLOCK_REALTIME, for display
};
static_assert(sizeof(MemberSlot) == kHotPad);
static_assert(offsetof(MemberSlot, client) == 8);
static_assert(offsetof(MemberSlot, pid) == 12);
static_assert(offsetof(MemberSlot, heartbeat_ns) == 16);
static_assert(offsetof(MemberSlot, word) == 0);
static_assert(offsetof(MemberSlot, joined_ns) == 24);

struct GroupHeader {
  GroupIdentity id;
  alignas(kHotPad) std::atomic<std::uint64_t> generation;  // +1 on every join, leave and eviction
  // Durable commits: a member asking for one bumps commit_seq and waits
  // (futex on persist_wake) until the broker has written the group's offsets
  // to its data directory and raised persisted_seq to at least that value.
  alignas(kHotPad) std::atomic<std::uint64_t> commit_seq;
  alignas(kHotPad) std::atomic<std::uint64_t> persisted_seq;
  std::atomic<std::uint32_t> persist_wake;
  std::atomic<std::uint32_t> persist_waiters;
  std::atomic<std::int32_t> keeper_pid;  // the broker persisting this group (0: none, no data directory)
  std::uint32_t pad0;
  alignas(kHotPad) MemberSlot members[kGroupMembers];
};
static_assert(std::is_standard_layout_v<GroupHeader>);
static_assert(offsetof(GroupHeader, generation) == 640);
static_assert(offsetof(GroupHeader, commit_seq) == 768);
static_assert(offsetof(GroupHeader, persisted_seq) == 896);
static_assert(offsetof(GroupHeader, members) == 1024);
static_assert(sizeof(GroupHeader) == 1024 + kGroupMembers * kHotPad);
static_assert(offsetof(GroupHeader, id) == 0);
static_assert(offsetof(GroupHeader, persist_wake) == 904);
static_assert(offsetof(GroupHeader, persist_waiters) == 908);
static_assert(offsetof(GroupHeader, keeper_pid) == 912);
static_assert(offsetof(GroupHeader, pad0) == 916);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// Per partition. Publish-subscribe uses the first block; queues the rest.
struct GroupPartition {
  // pubsub: the next offset the group reads (kNoOffset until the first
  // member starts the partition), and the member that owns it (0: none;
  // else (member slot + 1) << 16 | incarnation & 0xffff).
  alignas(kHotPad) std::atomic<std::uint64_t> committed;
  std::atomic<std::uint32_t> owner;
  std::uint32_t pad0;
  // queue: {next offset to hand out, sequence number of the next chunk},
  // changed by cas16 only (the sequence grows on every change).
  alignas(kHotPad) std::uint64_t dispatch[2];
  // queue: {offset, chunk sequence}: every offset below is acknowledged and
  // every chunk below is retired. The group's committed offset.
  alignas(kHotPad) std::uint64_t floor[2];
  // queue: a claim boundary {ring position, offset} a member's reader
  // reached, raised (by offset) after each chunk: members whose readers are
  // behind jump there instead of walking the other members' records.
  alignas(kHotPad) std::uint64_t position_hint[2];
  // queue: statistics, for describe.
  std::atomic<std::uint64_t> redelivered;    // chunks handed out again
  std::atomic<std::uint64_t> dead_lettered;  // records given up on
};
static_assert(std::is_standard_layout_v<GroupPartition>);
static_assert(sizeof(GroupPartition) == 4 * kHotPad);
static_assert(offsetof(GroupPartition, dispatch) % 16 == 0);
static_assert(offsetof(GroupPartition, floor) % 16 == 0);
static_assert(offsetof(GroupPartition, position_hint) % 16 == 0);
static_assert(offsetof(GroupPartition, owner) == 8);
static_assert(offsetof(GroupPartition, pad0) == 12);
static_assert(offsetof(GroupPartition, redelivered) == 400);
static_assert(offsetof(GroupPartition, dead_lettered) == 408);

// A queue chunk: up to kChunkRecords consecutive offsets handed to one member
// at a time. Slot i holds chunk sequences i, i + chunk_slots, ...
//   state = {seq, meta}: meta = state << 62 | deliveries << 48 | owner << 32 | lease deadline
//           (state: ChunkState; owner: member slot << 10 | incarnation & 1023;
//            deadline: CLOCK_MONOTONIC milliseconds, low 32 bits, compared modulo 2^32)
//   acks  = {bitmap of acknowledged offsets (bit i: base + i), seq}
enum class ChunkState : std::uint8_t { free = 0, claiming = 1, leased = 2 };

struct alignas(kCacheLine) ChunkSlot {
  std::uint64_t state[2];
  std::uint64_t acks[2];
  std::atomic<std::uint64_t> base;
  std::atomic<std::uint32_t> count;
  std::uint32_t pad0;
  std::uint64_t pad1[2];
};
static_assert(std::is_standard_layout_v<ChunkSlot>);
static_assert(sizeof(ChunkSlot) == kCacheLine);
static_assert(offsetof(ChunkSlot, acks) == 16);
static_assert(offsetof(ChunkSlot, state) == 0);
static_assert(offsetof(ChunkSlot, base) == 32);
static_assert(offsetof(ChunkSlot, count) == 40);
static_assert(offsetof(ChunkSlot, pad0) == 44);
static_assert(offsetof(ChunkSlot, pad1) == 48);

constexpr std::uint64_t group_file_size(std::uint32_t partitions, std::uint32_t chunk_slots) {
  return sizeof(GroupHeader) + std::uint64_t{partitions} * sizeof(GroupPartition) +
         std::uint64_t{partitions} * chunk_slots * sizeof(ChunkSlot);
}

}  // namespace ringbus::detail
