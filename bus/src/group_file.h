// A consumer group's shared-memory file (group_format.h): creating and
// checking it, member slots, and the queue's chunk protocol. The protocol is
// specified in bus/README.md ("Consumer groups").
//
// Threading: a GroupFile is a view of a mapping; every method may be called
// from any thread of any process that maps the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "group_format.h"
#include "mapped_file.h"
#include "ringbus/group.h"
#include "ringbus/result.h"
#include "sync.h"

namespace ringbus::detail {

// Checks the header of a group file's bytes as a client must before trusting
// it; the message names the file and the field.
Status validate_group_header(const std::byte* data, std::uint64_t size, const std::string& path);

std::string group_path(std::string_view instance, std::string_view topic, std::string_view group);
// The group names of a topic (from its directory).
std::vector<std::string> list_group_names(std::string_view instance, std::string_view topic);

// Member slot words (group_format.h): incarnation << 8 | state.
constexpr std::uint64_t member_word(std::uint32_t incarnation, MemberState s) {
  return std::uint64_t{incarnation} << 8 | static_cast<std::uint8_t>(s);
}
constexpr MemberState state_of(std::uint64_t word) { return static_cast<MemberState>(word & 0xff); }
constexpr std::uint32_t incarnation_of(std::uint64_t word) { return static_cast<std::uint32_t>(word >> 8); }

// A snapshot of a chunk slot.
struct ChunkView {
  std::uint64_t seq = 0;
  ChunkState state = ChunkState::free;
  std::uint32_t deliveries = 0;
  std::uint32_t owner = 0;       // member slot << 10 | incarnation & 1023
  std::uint32_t deadline_ms = 0;
  std::uint64_t meta = 0;        // the raw second word, for the CAS
};

constexpr std::uint64_t chunk_meta(ChunkState s, std::uint32_t deliveries, std::uint32_t owner, std::uint32_t deadline_ms) {
  return std::uint64_t{static_cast<std::uint8_t>(s)} << 62 | std::uint64_t{deliveries & 0x3fff} << 48 |
         std::uint64_t{owner & 0xffff} << 32 | deadline_ms;
}
// While claiming, the meta holds only the claimer's client token
// (liveness.h; so that a claimer that died there can be undone).
constexpr std::uint64_t claiming_meta(std::uint32_t client) {
  return std::uint64_t{static_cast<std::uint8_t>(ChunkState::claiming)} << 62 | client;
}
constexpr std::uint64_t full_mask(std::uint32_t count) { return count >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << count) - 1; }

// A chunk handed to a member.
struct ChunkGrant {
  std::uint64_t seq = 0;
  std::uint64_t base = 0;
  std::uint32_t count = 0;
  std::uint32_t deliveries = 0;
  bool dead_letter = false;  // delivered max_deliveries times already: give up on it
};
enum class ClaimOutcome : std::uint8_t {
  granted,
  empty,  // nothing to hand out below the end offset
  busy,   // every chunk slot is in flight, or another member is claiming: try later
};

class GroupFile {
 public:
  // Opens the group, or creates it with `settings` (and, per partition, the
  // offset it starts at: pubsub kNoOffset is allowed; queue needs a value)
  // if it does not exist. The create is atomic (built under a temporary name,
  // then linked into place); of two racing creators one wins and the other
  // opens its file.
  static Result<std::shared_ptr<GroupFile>> open_or_create(std::string_view instance, std::string_view topic,
                                                           std::uint64_t topic_id, std::uint32_t partitions,
                                                           std::string_view group, const GroupSettings& settings,
                                                           const std::vector<std::uint64_t>& start_offsets);
  static Result<std::shared_ptr<GroupFile>> open(std::string_view instance, std::string_view topic,
                                                 std::string_view group);

  GroupHeader& header() const noexcept { return *header_; }
  const std::string& path() const noexcept { return file_.path(); }
  GroupSettings settings() const;
  std::uint32_t partition_count() const noexcept { return header_->id.partition_count; }
  bool is_queue() const noexcept { return header_->id.mode == static_cast<std::uint32_t>(GroupModeCode::queue); }
  GroupPartition& partition(std::uint32_t p) const noexcept { return partitions_[p]; }
  ChunkSlot& slot(std::uint32_t p, std::uint64_t seq) const noexcept {
    return slots_[std::uint64_t{p} * header_->id.chunk_slots + seq % header_->id.chunk_slots];
  }
  std::uint64_t chunk_slots() const noexcept { return header_->id.chunk_slots; }

  // ---- members ---------------------------------------------------------------
  // Takes a free slot for this process; returns its index and incarnation.
  Result<std::pair<std::uint32_t, std::uint32_t>> join();
  // Frees our own slot (if it is still ours) and bumps the generation.
  void leave(std::uint32_t slot, std::uint32_t incarnation) noexcept;
  // Evicts members whose process is gone or whose heartbeat is older than the
  // session timeout. Returns how many (and bumps the generation if any).
  std::uint32_t reap(std::int64_t now_ns) noexcept;
  // True if the member slot holds this incarnation, alive.
  bool member_alive(std::uint32_t slot, std::uint32_t incarnation_low, std::uint32_t incarnation_mask) const noexcept;
  // Live members' slots, ascending.
  std::vector<std::uint32_t> live_members() const;

  // ---- queue chunks ------------------------------------------------------------
  ChunkView chunk(std::uint32_t p, std::uint64_t seq) const noexcept;
  Pair dispatch(std::uint32_t p) const noexcept { return load_pair(partitions_[p].dispatch); }
  Pair floor(std::uint32_t p) const noexcept { return load_pair(partitions_[p].floor); }
  // Sets bits of chunk `seq`'s acknowledgement map; false if the chunk is no
  // longer `seq` (completed and retired). `complete` says if all its
  // offsets are now acknowledged.
  bool ack(std::uint32_t p, std::uint64_t seq, std::uint64_t bits, std::uint32_t count, bool& complete) noexcept;
  std::uint64_t acked_bits(std::uint32_t p, std::uint64_t seq) const noexcept;
  // Retires completed chunks at the floor and raises it.
  void advance_floor(std::uint32_t p) noexcept;
  // Hands the next up to kChunkRecords offsets below end_offset to `owner`
  // (a chunk_owner token), leased for lease_ms.
  ClaimOutcome claim_chunk(std::uint32_t p, std::uint64_t end_offset, std::uint32_t owner, std::uint32_t lease_ms,
                           ChunkGrant& out) noexcept;
  // Takes a leased chunk whose lease ran out or whose owner is gone, as seen
  // in `seen`; false if it changed meanwhile (someone else took it).
  bool take_over(std::uint32_t p, const ChunkView& seen, std::uint32_t owner, std::uint32_t lease_ms,
                 ChunkGrant& out) noexcept;
  // Ends our lease on a chunk now (leave): another member takes it at once.
  bool release(std::uint32_t p, std::uint64_t seq, std::uint32_t owner) noexcept;

  // Publishes (to the broker's keeper) that positions changed and must be
  // written; returns the sequence to wait for.
  std::uint64_t request_persist() noexcept { return header_->commit_seq.fetch_add(1, std::memory_order_acq_rel) + 1; }

 private:
  GroupFile(MappedFile file, std::string instance_dir);
  bool client_dead(std::int32_t client) const noexcept;
  MappedFile file_;
  std::string instance_dir_;  // for client tokens (liveness.h)
  std::int32_t client_ = 0;   // this process's token, from join(): what its member and claims are named by
  GroupHeader* header_;
  GroupPartition* partitions_;
  ChunkSlot* slots_;
};

// A member's token in pubsub owner words: (slot + 1) << 16 | incarnation & 0xffff.
constexpr std::uint32_t owner_token(std::uint32_t slot, std::uint32_t incarnation) {
  return (slot + 1) << 16 | (incarnation & 0xffff);
}
// A member's token in queue chunk metas: slot << 10 | incarnation & 1023.
constexpr std::uint32_t chunk_owner(std::uint32_t slot, std::uint32_t incarnation) {
  return slot << 10 | (incarnation & 1023);
}

std::uint32_t monotonic_ms32() noexcept;
// a - b in milliseconds modulo 2^32, as a signed distance.
inline std::int32_t ms32_diff(std::uint32_t a, std::uint32_t b) noexcept { return static_cast<std::int32_t>(a - b); }

}  // namespace ringbus::detail
