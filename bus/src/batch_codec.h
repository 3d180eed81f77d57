// Building and checking batches (log_format.h). The decoder trusts nothing:
// it is what recovery runs over a torn or corrupted file (fuzz target:
// tests/fuzz/batch_decoder_fuzz.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "log_format.h"
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
};
const char* to_string(BatchError e) noexcept;

struct DecodedBatch {
  BatchError error = BatchError::none;
  std::string detail;                  // what exactly, for logs ("" when ok)
  BatchHeader header{};
  std::span<const std::byte> frames;   // the record frames, checked
  bool ok() const noexcept { return error == BatchError::none; }
};

// Checks the batch at the start of `data` (which may hold more after it).
DecodedBatch decode_batch(std::span<const std::byte> data);

// Calls fn(const Record&) for each record of a decoded batch.
template <class F>
void for_each_record(const DecodedBatch& batch, std::uint32_t partition, F&& fn) {
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
