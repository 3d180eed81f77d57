// Kafka's record batch, format v2 (magic 2): the commit log's batch format,
// so that a mirror ships batches as they lie on disk and a Kafka fetch
// returns file bytes. Prose spec: bus/README.md, "Record batches (Kafka v2)".
//
// Every integer of the batch header is big-endian (network order), at these
// byte offsets; the records after it use zigzag varints (Kafka's
// ByteUtils). batch_length counts the bytes after its own field, so a batch
// takes kLogOverhead + batch_length bytes. The CRC-32C covers the bytes from
// attributes to the end; baseOffset, batchLength and partitionLeaderEpoch
// are outside it (a broker may rewrite them) and are checked by other means.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ringbus/topic.h"

namespace ringbus::log::v2 {

inline constexpr std::size_t kBaseOffsetAt = 0;         // i64: the first offset
inline constexpr std::size_t kBatchLengthAt = 8;        // i32: bytes after this field
inline constexpr std::size_t kLeaderEpochAt = 12;       // i32: partitionLeaderEpoch
inline constexpr std::size_t kMagicAt = 16;             // i8: 2
inline constexpr std::size_t kCrcAt = 17;               // u32: CRC-32C of [kAttributesAt, end)
inline constexpr std::size_t kAttributesAt = 21;        // i16: see the bits below
inline constexpr std::size_t kLastOffsetDeltaAt = 23;   // i32: last offset - base offset
inline constexpr std::size_t kBaseTimestampAt = 27;     // i64: ms, the first record's
inline constexpr std::size_t kMaxTimestampAt = 35;      // i64: ms, the largest
inline constexpr std::size_t kProducerIdAt = 43;        // i64: -1 (no idempotent producer)
inline constexpr std::size_t kProducerEpochAt = 51;     // i16: -1
inline constexpr std::size_t kBaseSequenceAt = 53;      // i32: -1
inline constexpr std::size_t kRecordCountAt = 57;       // i32: records in the batch
inline constexpr std::size_t kRecordsAt = 61;           // the records (compressed as one block if
                                                        // the attributes say so)
inline constexpr std::size_t kHeaderSize = kRecordsAt;
// baseOffset and batchLength: not counted in batchLength.
inline constexpr std::size_t kLogOverhead = kLeaderEpochAt;
inline constexpr std::int8_t kMagic = 2;

// attributes
inline constexpr std::uint16_t kCompressionMask = 0x07;  // Compression
inline constexpr std::uint16_t kLogAppendTime = 0x08;    // timestamps set by the broker, not the producer
inline constexpr std::uint16_t kTransactional = 0x10;
inline constexpr std::uint16_t kControl = 0x20;

// The public ringbus::Compression (topic.h) has the same values.
using ringbus::Compression;

}  // namespace ringbus::log::v2
