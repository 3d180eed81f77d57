// The broker's small files on disk: a topic's configuration (topic.meta), a
// group's committed offsets (groups/<group>.offsets) and a partition's
// clean-shutdown marker (clean). Prose spec: io/README.md ("On disk, per
// broker", "Consumer group positions", "The clean-shutdown marker").
//
// All three start with the same envelope: a magic naming the kind of file, the
// version of its layout, and a CRC32C of every byte after the envelope
// (small_files.h seals and opens it). All integers little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "partition_format.h"

namespace ringbus::io {

struct FileEnvelope {
  std::uint64_t magic;    // 8 ASCII bytes naming the kind of file
  std::uint32_t version;  // of that kind's layout
  std::uint32_t crc32c;   // CRC32C (Castagnoli) of bytes [16, file size)
};
static_assert(std::is_trivially_copyable_v<FileEnvelope>);
static_assert(sizeof(FileEnvelope) == 16);
static_assert(offsetof(FileEnvelope, magic) == 0);
static_assert(offsetof(FileEnvelope, version) == 8);
static_assert(offsetof(FileEnvelope, crc32c) == 12);

// ---------------------------------------------------------------------------
// topic.meta: one TopicMetaRecord.
inline constexpr std::uint64_t kTopicMetaMagic = 0x4154454d504f5452ULL;  // bytes "RTOPMETA"
// Version 2 appended retention_policy; version 1 files (the same record
// without it) are still read, as policy "limits". Version 3 gave the
// reserved field its meaning, compression; a version 2 file reads as none.
// Version 4 appended min_insync (a cluster's topic); earlier files read as
// not replicated.
inline constexpr std::uint32_t kTopicMetaVersion = 4;

struct TopicMetaRecord {
  FileEnvelope envelope;
  std::uint64_t topic_id;
  std::uint32_t partitions;
  std::uint32_t max_record_size;
  std::uint64_t ring_bytes;
  std::int64_t abandoned_claim_timeout_ns;
  std::uint64_t segment_bytes;
  std::int64_t segment_age_ms;
  std::uint64_t retention_bytes;
  std::int64_t retention_age_ms;
  std::uint32_t durability;            // Durability
  std::uint32_t index_interval_bytes;
  std::int64_t flush_interval_ms;
  std::uint64_t flush_bytes;
  char name[detail::kTopicNameMax + 7];  // NUL-terminated
  // Version 2:
  std::uint32_t retention_policy;      // RetentionPolicy
  // Version 3 (0 in version 2):
  std::uint32_t compression;           // Compression
  // Version 4:
  std::uint32_t min_insync;            // a cluster's topic: what acks=all needs (0: not replicated)
  std::uint32_t reserved;              // 0
};
static_assert(std::is_trivially_copyable_v<TopicMetaRecord>);
static_assert(sizeof(TopicMetaRecord) == 376);
static_assert(offsetof(TopicMetaRecord, topic_id) == 16);
static_assert(offsetof(TopicMetaRecord, partitions) == 24);
static_assert(offsetof(TopicMetaRecord, max_record_size) == 28);
static_assert(offsetof(TopicMetaRecord, ring_bytes) == 32);
static_assert(offsetof(TopicMetaRecord, abandoned_claim_timeout_ns) == 40);
static_assert(offsetof(TopicMetaRecord, segment_bytes) == 48);
static_assert(offsetof(TopicMetaRecord, segment_age_ms) == 56);
static_assert(offsetof(TopicMetaRecord, retention_bytes) == 64);
static_assert(offsetof(TopicMetaRecord, retention_age_ms) == 72);
static_assert(offsetof(TopicMetaRecord, durability) == 80);
static_assert(offsetof(TopicMetaRecord, index_interval_bytes) == 84);
static_assert(offsetof(TopicMetaRecord, flush_interval_ms) == 88);
static_assert(offsetof(TopicMetaRecord, flush_bytes) == 96);
static_assert(offsetof(TopicMetaRecord, name) == 104);
static_assert(offsetof(TopicMetaRecord, retention_policy) == 360);
static_assert(offsetof(TopicMetaRecord, compression) == 364);
static_assert(offsetof(TopicMetaRecord, min_insync) == 368);
// A version 1 file ends before retention_policy, versions 2 and 3 before
// min_insync.
inline constexpr std::size_t kTopicMetaVersion1Size = offsetof(TopicMetaRecord, retention_policy);
inline constexpr std::size_t kTopicMetaVersion3Size = offsetof(TopicMetaRecord, min_insync);

// ---------------------------------------------------------------------------
// groups/<group>.offsets: a GroupOffsetsHeader, then the group's name
// (name_length bytes), its dead-letter topic (dead_letter_length bytes) and
// `partitions` u64 committed offsets (~0: a pubsub partition never started).
inline constexpr std::uint64_t kGroupOffsetsMagic = 0x5346464f50524752ULL;  // bytes "RGRPOFFS"
inline constexpr std::uint32_t kGroupOffsetsVersion = 1;

struct GroupOffsetsHeader {
  FileEnvelope envelope;
  std::uint32_t mode;        // GroupModeCode
  std::uint32_t start;       // GroupStartCode
  std::uint32_t partitions;  // 1..1024
  std::uint32_t max_deliveries;
  std::uint64_t lease_ms;
  std::uint64_t session_timeout_ms;
  std::uint32_t name_length;
  std::uint32_t dead_letter_length;
};
static_assert(std::is_trivially_copyable_v<GroupOffsetsHeader>);
static_assert(sizeof(GroupOffsetsHeader) == 56);
static_assert(offsetof(GroupOffsetsHeader, mode) == 16);
static_assert(offsetof(GroupOffsetsHeader, start) == 20);
static_assert(offsetof(GroupOffsetsHeader, partitions) == 24);
static_assert(offsetof(GroupOffsetsHeader, max_deliveries) == 28);
static_assert(offsetof(GroupOffsetsHeader, lease_ms) == 32);
static_assert(offsetof(GroupOffsetsHeader, session_timeout_ms) == 40);
static_assert(offsetof(GroupOffsetsHeader, name_length) == 48);
static_assert(offsetof(GroupOffsetsHeader, dead_letter_length) == 52);

// ---------------------------------------------------------------------------
// <partition dir>/clean: one CleanMarker, written by a clean close.
inline constexpr std::uint64_t kCleanMagic = 0x314e41454c434252ULL;  // bytes "RBCLEAN1"
inline constexpr std::uint32_t kCleanVersion = 1;

struct CleanMarker {
  FileEnvelope envelope;
  std::uint64_t end_offset;
  std::uint64_t last_base;        // the last segment's base offset
  std::uint64_t last_size;        // and its size in bytes
  std::int64_t max_timestamp_ns;
};
static_assert(std::is_trivially_copyable_v<CleanMarker>);
static_assert(sizeof(CleanMarker) == 48);
static_assert(offsetof(CleanMarker, end_offset) == 16);
static_assert(offsetof(CleanMarker, last_base) == 24);
static_assert(offsetof(CleanMarker, last_size) == 32);
static_assert(offsetof(CleanMarker, max_timestamp_ns) == 40);

// ---------------------------------------------------------------------------
// <partition dir>/leader-epoch-checkpoint: an EpochFileHeader, then `count`
// EpochEntry, in increasing epoch and start offset (Kafka's leader-epoch
// checkpoint: where each leader epoch's batches begin). A cache of what the
// batches carry: rebuilt from them when missing or damaged.
inline constexpr std::uint64_t kEpochFileMagic = 0x48434f5045524252ULL;  // bytes "RBREPOCH"
inline constexpr std::uint32_t kEpochFileVersion = 1;

struct EpochFileHeader {
  FileEnvelope envelope;
  std::uint32_t count;
  std::uint32_t reserved;  // 0
};
static_assert(std::is_trivially_copyable_v<EpochFileHeader>);
static_assert(sizeof(EpochFileHeader) == 24);
static_assert(offsetof(EpochFileHeader, count) == 16);
static_assert(offsetof(EpochFileHeader, reserved) == 20);

struct EpochEntry {
  std::int32_t epoch;
  std::uint32_t reserved;     // 0
  std::uint64_t start_offset;  // the base offset of the first batch of this epoch
};
static_assert(std::is_trivially_copyable_v<EpochEntry>);
static_assert(sizeof(EpochEntry) == 16);
static_assert(offsetof(EpochEntry, epoch) == 0);
static_assert(offsetof(EpochEntry, reserved) == 4);
static_assert(offsetof(EpochEntry, start_offset) == 8);

}  // namespace ringbus::io
