// The on-disk format of a partition's commit log. Prose spec: io/README.md.
//
// A batch is what the flusher writes in one go: a BatchHeader, then record
// frames exactly as they were in the ring (bus/src/partition_format.h,
// RecordHeader + key + headers + value, each padded to 32 bytes), without the
// ring's padding frames. Keeping the ring's framing lets the flusher copy a
// run of claims with one memcpy and lets a reader use one record parser for
// ring and disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "partition_format.h"

namespace ringbus::log {

inline constexpr std::uint32_t kBatchMagic = 0x31'42'42'52;  // "RBB1"
inline constexpr std::uint16_t kBatchVersion = 1;
inline constexpr std::uint32_t kBatchAlign = detail::kFrameAlign;  // batches start 32-aligned

struct BatchHeader {
  std::uint32_t magic;            // kBatchMagic: a recovery scan can spot a batch start
  std::uint32_t crc32c;           // CRC32C of bytes [8, batch_length): everything after this field
  std::uint32_t batch_length;     // bytes, header included; a multiple of kBatchAlign
  std::uint16_t version;          // kBatchVersion
  std::uint16_t flags;            // 0 (no compression yet)
  std::uint64_t base_offset;      // first offset the batch covers
  std::uint32_t offset_span;      // offsets covered: [base_offset, base_offset + offset_span)
  std::uint32_t record_count;     // records present; fewer than offset_span when
                                  // offsets were retired (aborted or abandoned claims)
  std::int64_t first_timestamp_ns;
  std::int64_t max_timestamp_ns;
  std::uint64_t reserved[2];      // 0
};
static_assert(std::is_standard_layout_v<BatchHeader>);
static_assert(std::is_trivially_copyable_v<BatchHeader>);
static_assert(sizeof(BatchHeader) == 64);
static_assert(sizeof(BatchHeader) % kBatchAlign == 0);
static_assert(offsetof(BatchHeader, crc32c) == 4);
static_assert(offsetof(BatchHeader, batch_length) == 8);
static_assert(offsetof(BatchHeader, base_offset) == 16);
static_assert(offsetof(BatchHeader, first_timestamp_ns) == 32);
static_assert(offsetof(BatchHeader, magic) == 0);
static_assert(offsetof(BatchHeader, version) == 12);
static_assert(offsetof(BatchHeader, flags) == 14);
static_assert(offsetof(BatchHeader, offset_span) == 24);
static_assert(offsetof(BatchHeader, record_count) == 28);
static_assert(offsetof(BatchHeader, max_timestamp_ns) == 40);
static_assert(offsetof(BatchHeader, reserved) == 48);

// ---------------------------------------------------------------------------
// Segment files. A partition's log is a sequence of segments, each named by
// its base offset (20 digits, so names sort): <base>.log holds a
// SegmentHeader then batches; <base>.index and <base>.timeindex hold an
// IndexHeader then sparse entries. Each file starts with magic and version.

inline constexpr std::uint64_t kSegmentMagic = 0x544e4d4745534252ULL;    // bytes "RBSEGMNT"
inline constexpr std::uint64_t kIndexMagic = 0x58444946464f4252ULL;      // bytes "RBOFFIDX"
inline constexpr std::uint64_t kTimeIndexMagic = 0x5844494d49544252ULL;  // bytes "RBTIMIDX"
// A segment's version names the format of its batches: 1, RBB1 (above);
// 2, Kafka's record batch v2 (record_batch_format.h), back to back with no
// alignment. Readers read both, each segment by its own version; new
// segments are written as kSegmentVersion. Index files have one layout
// whatever their segment's version (readers accept either in their header).
inline constexpr std::uint32_t kSegmentVersionRbb1 = 1;
inline constexpr std::uint32_t kSegmentVersionKafka = 2;
inline constexpr std::uint32_t kSegmentVersion = kSegmentVersionKafka;

struct SegmentHeader {
  std::uint64_t magic;          // kSegmentMagic
  std::uint32_t version;        // kSegmentVersion
  std::uint32_t header_size;    // sizeof(SegmentHeader); batches start here
  std::uint64_t base_offset;    // the first offset this segment may hold
  std::int64_t created_ns;      // CLOCK_REALTIME when created (age-based rolling)
  std::uint64_t reserved[4];
};
static_assert(std::is_trivially_copyable_v<SegmentHeader>);
static_assert(sizeof(SegmentHeader) == 64);
static_assert(sizeof(SegmentHeader) % kBatchAlign == 0);
static_assert(offsetof(SegmentHeader, magic) == 0);
static_assert(offsetof(SegmentHeader, version) == 8);
static_assert(offsetof(SegmentHeader, header_size) == 12);
static_assert(offsetof(SegmentHeader, base_offset) == 16);
static_assert(offsetof(SegmentHeader, created_ns) == 24);
static_assert(offsetof(SegmentHeader, reserved) == 32);

struct IndexHeader {
  std::uint64_t magic;          // kIndexMagic or kTimeIndexMagic
  std::uint32_t version;        // kSegmentVersion
  std::uint32_t entry_size;     // sizeof(IndexEntry) or sizeof(TimeIndexEntry)
  std::uint64_t base_offset;    // the segment's base offset
  std::uint64_t reserved;
};
static_assert(sizeof(IndexHeader) == 32);
static_assert(offsetof(IndexHeader, magic) == 0);
static_assert(offsetof(IndexHeader, version) == 8);
static_assert(offsetof(IndexHeader, entry_size) == 12);
static_assert(offsetof(IndexHeader, base_offset) == 16);
static_assert(offsetof(IndexHeader, reserved) == 24);

// Offset index: the batch that starts at file `position` has base offset
// base_offset + relative_offset. Sparse: one entry per index interval bytes.
struct IndexEntry {
  std::uint32_t relative_offset;
  std::uint32_t position;
};
static_assert(sizeof(IndexEntry) == 8);
static_assert(offsetof(IndexEntry, relative_offset) == 0);
static_assert(offsetof(IndexEntry, position) == 4);

// Time index: the first batch whose max timestamp is >= timestamp_ns starts
// at or after relative_offset. Entries increase in both fields.
struct TimeIndexEntry {
  std::int64_t timestamp_ns;
  std::uint32_t relative_offset;
  std::uint32_t reserved;
};
static_assert(sizeof(TimeIndexEntry) == 16);
static_assert(offsetof(TimeIndexEntry, timestamp_ns) == 0);
static_assert(offsetof(TimeIndexEntry, relative_offset) == 8);
static_assert(offsetof(TimeIndexEntry, reserved) == 12);

// A segment holds at most 4 GiB (index positions are 32-bit).
inline constexpr std::uint64_t kMaxSegmentBytes = 0xFFFF'FFFFULL;

// The CRC covers the batch from this byte on (so it protects the length too).
inline constexpr std::size_t kBatchCrcStart = offsetof(BatchHeader, batch_length);
// A batch holds at most this many bytes (a quarter of the largest ring, the
// largest claim a producer can make, rounded): a length above it is corrupt.
inline constexpr std::uint32_t kMaxBatchLength = 1U << 30;

}  // namespace ringbus::log
