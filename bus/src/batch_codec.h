// Building and checking batches. A segment's version names its batches'
// format (log_format.h): 1, RBB1 (the ring's frames behind a 64-byte header);
// 2, Kafka's record batch v2 (record_batch.h). Readers decode either through
// decode_batch(bytes, version, scratch) and for_each_record, and see the same
// BatchInfo and Records. The decoders trust nothing: they are what recovery
// runs over a torn or corrupted file (fuzz targets: batch_decoder_fuzz,
// record_batch_fuzz).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "log_format.h"
#include "record_batch.h"
#include "record_frame.h"
#include "ringbus/record.h"

namespace ringbus::log {

enum class BatchError : std::uint8_t {
  none = 0,
  truncated,    // fewer bytes than a header, or than batch_length says
  bad_magic,    // not a batch start
  bad_version,  // a batch of another format version
  bad_length,   // batch_length out of range or not aligned
  bad_crc,      // contents do not match the CRC32C
  bad_record,   // CRC matched but a record frame inside is inconsistent
  bad_compression,  // v2: an unknown codec, or data the codec refuses
};
const char* to_string(BatchError e) noexcept;

// What readers need of a batch, whatever its format.
struct BatchInfo {
  std::uint64_t base_offset = 0;
  std::uint32_t offset_span = 0;     // offsets covered: [base_offset, base_offset + offset_span)
  std::uint32_t record_count = 0;    // fewer than offset_span when offsets were retired
  std::uint32_t batch_length = 0;    // bytes it takes in the file
  std::int64_t first_timestamp_ns = 0;
  std::int64_t max_timestamp_ns = 0;  // v2: its milliseconds, in nanoseconds
  std::int32_t leader_epoch = 0;      // v2 only (RBB1 has none: 0)
  Compression compression = Compression::none;  // v2 only
};

struct DecodedBatch {
  BatchError error = BatchError::none;
  std::string detail;                  // what exactly, for logs ("" when ok)
  BatchInfo header{};
  std::uint32_t format = kSegmentVersionRbb1;
  std::span<const std::byte> frames;   // RBB1: the record frames, checked
  v2::DecodedBatch v2;                 // v2: the batch, checked
  bool ok() const noexcept { return error == BatchError::none; }
};

// The header size and the alignment of batch starts in a segment of `format`.
std::size_t batch_header_size(std::uint32_t format) noexcept;
std::uint32_t batch_alignment(std::uint32_t format) noexcept;
// What the batch header at the start of `data` says, checking nothing else:
// none (too short, or another magic: no batch starts here), magic_only (the
// magic and base offset, but a length or span out of range: damage, or a
// header still being written) or plausible (every field of `out`).
enum class Peek : std::uint8_t { none, magic_only, plausible };
Peek peek_batch(std::span<const std::byte> data, std::uint32_t format, BatchInfo& out) noexcept;

// Checks the RBB1 batch at the start of `data` (which may hold more after it).
DecodedBatch decode_batch(std::span<const std::byte> data);
// Checks the batch of a segment of version `format` at the start of `data`;
// v2 records that were compressed are inflated into `scratch`.
DecodedBatch decode_batch(std::span<const std::byte> data, std::uint32_t format, std::vector<std::byte>& scratch);

// Calls fn(const Record&) for each record of a decoded batch. A v2 record
// has Kafka's millisecond timestamp only (publish_ns 0).
template <class F>
void for_each_record(const DecodedBatch& batch, std::uint32_t partition, F&& fn) {
  if (batch.format == kSegmentVersionKafka) {
    v2::for_each_record(batch.v2, [&](const v2::BatchRecord& r) {
      fn(static_cast<const Record&>(
          Record{static_cast<std::uint64_t>(r.offset), r.timestamp_ms, 0, partition, r.key, r.value, r.headers}));
    });
    return;
  }
  std::size_t delivered = 0;
  detail::deliver_frames(batch.frames.data(), batch.header.record_count, partition, 0, delivered, fn);
}

// Accumulates record frames (copied verbatim from the ring) into one batch.
class BatchBuilder {
 public:
  void reset(std::uint64_t base_offset);
  // Appends whole, valid record frames (no padding frames) covering
  // `offsets` offsets, of which `records` are present.
  void append(std::span<const std::byte> frames, std::uint32_t records, std::uint32_t offsets);
  // Appends a record built from its parts (for tests and tools).
  void append_record(std::uint64_t offset, std::int64_t timestamp_ns, std::string_view key, std::string_view value);
  // Retires offsets with no record (aborted or abandoned claims).
  void skip_offsets(std::uint32_t offsets) { span_ += offsets; }
  bool empty() const noexcept { return span_ == 0; }
  std::size_t size() const noexcept { return buf_.size(); }
  // Fills in the header and CRC; the bytes stay valid until the next reset.
  std::span<const std::byte> finish();

 private:
  std::vector<std::byte> buf_;
  std::uint64_t base_ = 0;
  std::uint32_t span_ = 0;
  std::uint32_t records_ = 0;
};

}  // namespace ringbus::log
