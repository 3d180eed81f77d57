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

namespace ringbus::io {

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

// The CRC covers the batch from this byte on (so it protects the length too).
inline constexpr std::size_t kBatchCrcStart = offsetof(BatchHeader, batch_length);
// A batch holds at most this many bytes (a quarter of the largest ring, the
// largest claim a producer can make, rounded): a length above it is corrupt.
inline constexpr std::uint32_t kMaxBatchLength = 1U << 30;

}  // namespace ringbus::io
