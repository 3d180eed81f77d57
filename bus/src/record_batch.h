// Building and reading Kafka record batches v2 (record_batch_format.h). The
// decoder trusts nothing: it is what recovery and readers run over torn or
// damaged files and what mirrors and Kafka clients send (fuzz target:
// tests/fuzz/record_batch_fuzz.cpp). Spec: bus/README.md, "Record batches".
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "record_batch_format.h"
#include "ringbus/record.h"

namespace ringbus::log::v2 {

// The batch header, in host order.
struct BatchHeader {
  std::int64_t base_offset = 0;
  std::int32_t batch_length = 0;
  std::int32_t leader_epoch = 0;
  std::int8_t magic = kMagic;
  std::uint32_t crc = 0;
  std::uint16_t attributes = 0;
  std::int32_t last_offset_delta = 0;
  std::int64_t base_timestamp = 0;  // ms
  std::int64_t max_timestamp = 0;   // ms
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = -1;
  std::int32_t base_sequence = -1;
  std::int32_t record_count = 0;

  Compression compression() const noexcept { return static_cast<Compression>(attributes & kCompressionMask); }
  // The batch's size on disk and on the wire.
  std::size_t size() const noexcept { return kLogOverhead + static_cast<std::uint32_t>(batch_length); }
  // The offset after the batch's last (lastOffsetDelta covers offsets whose
  // records are gone: aborted claims, compaction).
  std::uint64_t next_offset() const noexcept {
    return static_cast<std::uint64_t>(base_offset) + static_cast<std::uint32_t>(last_offset_delta) + 1;
  }
};

// One record of a batch, as views into the batch (or its decompressed
// records). Kafka tells a null key or value from an empty one; ringbus's
// records have no null, so a null reads as empty (has_key/has_value say).
struct BatchRecord {
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::string_view key;
  std::string_view value;
  bool has_key = false;
  bool has_value = false;
  HeaderView headers;  // the record's header block (count and headers), in place
};

enum class BatchError : std::uint8_t {
  none = 0,
  truncated,        // fewer bytes than a header, or than batchLength says
  bad_length,       // batchLength out of range
  bad_magic,        // not a v2 batch (magic names the version it is)
  bad_crc,          // the CRC-32C does not match attributes..end
  bad_compression,  // an unknown codec, or data the codec refuses
  bad_record,       // the CRC matched but a record inside is inconsistent
};
const char* to_string(BatchError e) noexcept;

struct DecodedBatch {
  BatchError error = BatchError::none;
  std::string detail;                   // what exactly, for logs ("" when ok)
  BatchHeader header;
  std::span<const std::byte> bytes;     // the whole batch, as it lies: what a mirror or a fetch ships
  std::span<const std::byte> records;   // the records, decompressed (into the caller's scratch) if need be
  bool ok() const noexcept { return error == BatchError::none; }
};

// Reads the header at the start of `data` without checking the CRC or the
// records (a scan that only needs offsets and lengths). False if fewer than
// kHeaderSize bytes.
bool peek_header(std::span<const std::byte> data, BatchHeader& out);

// Checks the batch at the start of `data` (which may hold more after it):
// lengths, magic, CRC, codec, and every record (count, lengths, offset
// deltas increasing within lastOffsetDelta, varints). Compressed records are
// inflated into `scratch`, at most max_records_bytes.
DecodedBatch decode_batch(std::span<const std::byte> data, std::vector<std::byte>& scratch,
                          std::size_t max_records_bytes = 64U << 20);

// Rewrites a batch's baseOffset and partitionLeaderEpoch in place: fields
// outside its CRC, which a broker sets (a batch from a Kafka producer
// carries offsets from 0 and no epoch). `batch` holds at least a header.
void stamp_batch(std::span<std::byte> batch, std::uint64_t base_offset, std::int32_t leader_epoch) noexcept;

// Calls fn(const BatchRecord&) for each record of a decoded (ok) batch.
template <class F>
void for_each_record(const DecodedBatch& batch, F&& fn);

// Builds one batch: records appended in offset order, then finish().
class BatchBuilder {
 public:
  void reset(std::uint64_t base_offset, std::int32_t leader_epoch = 0, Compression codec = Compression::none);
  void append(std::uint64_t offset, std::int64_t timestamp_ms, std::string_view key, std::string_view value,
              std::span<const Header> headers = {});
  // The same with headers already in Kafka's encoding (a ring frame's, as
  // they are: the flusher copies them).
  void append(std::uint64_t offset, std::int64_t timestamp_ms, std::string_view key, std::string_view value,
              const HeaderView& headers);
  // Retires offsets up to `end` with no record (aborted or abandoned claims).
  void cover_until(std::uint64_t end);
  bool empty() const noexcept { return next_ == base_; }
  // The offset after the last one covered so far.
  std::uint64_t next_offset() const noexcept { return next_; }
  std::uint32_t records() const noexcept { return count_; }
  // Bytes so far, uncompressed, header included.
  std::size_t size() const noexcept { return used_; }
  // Header, compression and CRC; the bytes stay valid until the next reset.
  std::span<const std::byte> finish();

 private:
  std::byte* grow(std::size_t n);
  // Writes a record whose header block (count and headers) is `header_bytes`
  // long and written by put_headers(dst).
  template <class PutHeaders>
  void append_record(std::uint64_t offset, std::int64_t timestamp_ms, std::string_view key, std::string_view value,
                     std::size_t header_bytes, PutHeaders&& put_headers);

  std::vector<std::byte> buf_;     // [0, used_): the batch being built
  std::size_t used_ = 0;
  std::vector<std::byte> packed_;  // the compressed batch
  std::uint64_t base_ = 0;
  std::uint64_t next_ = 0;
  std::int32_t epoch_ = 0;
  Compression codec_ = Compression::none;
  std::uint32_t count_ = 0;
  std::int64_t first_ts_ = 0;
  std::int64_t max_ts_ = 0;
};

namespace detail {
// Parses the record at p; false if malformed. A record decode_batch checked
// is parsed again without walking its headers (they lie at the record's
// end: one more cache line per record for a catch-up read).
bool parse_record(const std::byte*& p, const std::byte* end, const BatchHeader& h, BatchRecord& out,
                  bool checked = false) noexcept;
}  // namespace detail

template <class F>
void for_each_record(const DecodedBatch& batch, F&& fn) {
  const std::byte* p = batch.records.data();
  const std::byte* end = p + batch.records.size();
  BatchRecord r;
  for (std::int32_t i = 0; i < batch.header.record_count; ++i) {
    if (!detail::parse_record(p, end, batch.header, r, true)) return;  // decode_batch checked them all
    fn(static_cast<const BatchRecord&>(r));
  }
}

}  // namespace ringbus::log::v2
