#include "record_batch.h"

#include <cstring>

#include "byte_order.h"
#include "compression.h"
#include "crc32c.h"
#include "log_format.h"
#include "record_headers.h"

namespace ringbus::log::v2 {

namespace {

using ringbus::detail::load_be;
using ringbus::detail::store_be;

// Two's complement arithmetic without overflow (timestamps in a batch are
// whatever a client sent).
std::int64_t wrapping_add(std::int64_t a, std::int64_t b) noexcept {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

using ringbus::detail::read_varint;
using ringbus::detail::varint_size;

// The bytes a varint-length-prefixed field takes; an absent key is -1 (null).
std::size_t field_size(std::int64_t length) noexcept { return varint_size(length) + (length > 0 ? length : 0); }

DecodedBatch fail(DecodedBatch d, BatchError e, std::string detail) {
  d.error = e;
  d.detail = std::move(detail);
  return d;
}

}  // namespace

const char* to_string(BatchError e) noexcept {
  switch (e) {
    case BatchError::none: return "ok";
    case BatchError::truncated: return "truncated";
    case BatchError::bad_length: return "bad batch length";
    case BatchError::bad_magic: return "not a v2 record batch";
    case BatchError::bad_crc: return "CRC-32C mismatch";
    case BatchError::bad_compression: return "bad compression";
    case BatchError::bad_record: return "bad record";
  }
  return "unknown";
}

namespace detail {

bool parse_record(const std::byte*& p, const std::byte* end, const BatchHeader& h, BatchRecord& out, bool checked) noexcept {
  std::int64_t length = 0;
  if (!read_varint(p, end, length, 5) || length < 1 || length > end - p) return false;
  const std::byte* rec_end = p + length;
  ++p;  // attributes: none are defined for records
  std::int64_t ts_delta = 0;
  std::int64_t offset_delta = 0;
  std::int64_t key_length = 0;
  std::int64_t value_length = 0;
  if (!read_varint(p, rec_end, ts_delta, 10) || !read_varint(p, rec_end, offset_delta, 5)) return false;
  if (offset_delta < 0 || offset_delta > h.last_offset_delta) return false;
  if (!read_varint(p, rec_end, key_length, 5) || key_length < -1 || key_length > rec_end - p) return false;
  out.has_key = key_length >= 0;
  out.key = std::string_view(reinterpret_cast<const char*>(p), out.has_key ? static_cast<std::size_t>(key_length) : 0);
  if (key_length > 0) p += key_length;
  if (!read_varint(p, rec_end, value_length, 5) || value_length < -1 || value_length > rec_end - p) return false;
  out.has_value = value_length >= 0;
  out.value = std::string_view(reinterpret_cast<const char*>(p), out.has_value ? static_cast<std::size_t>(value_length) : 0);
  if (value_length > 0) p += value_length;
  // The rest is the header block: a count, then the headers, exactly to the
  // record's end (HeaderView::valid checks both; a record has a count even
  // when it has no header, unlike a ring frame).
  if (p == rec_end) return false;
  out.headers = HeaderView(std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(rec_end - p)));
  if (!checked && !out.headers.valid()) return false;
  p = rec_end;
  out.offset = h.base_offset + offset_delta;
  // Log-append time: the broker's time for every record, Kafka's rule.
  out.timestamp_ms = (h.attributes & kLogAppendTime) != 0 ? h.max_timestamp : wrapping_add(h.base_timestamp, ts_delta);
  return true;
}

}  // namespace detail

void stamp_batch(std::span<std::byte> batch, std::uint64_t base_offset, std::int32_t leader_epoch) noexcept {
  store_be(batch.data() + kBaseOffsetAt, static_cast<std::int64_t>(base_offset));
  store_be(batch.data() + kLeaderEpochAt, leader_epoch);
}

bool peek_header(std::span<const std::byte> data, BatchHeader& h) {
  if (data.size() < kHeaderSize) return false;
  const std::byte* p = data.data();
  h.base_offset = load_be<std::int64_t>(p + kBaseOffsetAt);
  h.batch_length = load_be<std::int32_t>(p + kBatchLengthAt);
  h.leader_epoch = load_be<std::int32_t>(p + kLeaderEpochAt);
  h.magic = static_cast<std::int8_t>(p[kMagicAt]);
  h.crc = load_be<std::uint32_t>(p + kCrcAt);
  h.attributes = load_be<std::uint16_t>(p + kAttributesAt);
  h.last_offset_delta = load_be<std::int32_t>(p + kLastOffsetDeltaAt);
  h.base_timestamp = load_be<std::int64_t>(p + kBaseTimestampAt);
  h.max_timestamp = load_be<std::int64_t>(p + kMaxTimestampAt);
  h.producer_id = load_be<std::int64_t>(p + kProducerIdAt);
  h.producer_epoch = load_be<std::int16_t>(p + kProducerEpochAt);
  h.base_sequence = load_be<std::int32_t>(p + kBaseSequenceAt);
  h.record_count = load_be<std::int32_t>(p + kRecordCountAt);
  return true;
}

DecodedBatch decode_batch(std::span<const std::byte> data, std::vector<std::byte>& scratch, std::size_t max_records_bytes) {
  DecodedBatch d;
  BatchHeader& h = d.header;
  if (!peek_header(data, h)) {
    return fail(std::move(d), BatchError::truncated, std::to_string(data.size()) + " bytes, fewer than a batch header (61)");
  }
  constexpr std::int64_t kMinLength = kHeaderSize - kLogOverhead;
  if (h.batch_length < kMinLength || static_cast<std::uint64_t>(h.batch_length) > kMaxBatchLength) {
    return fail(std::move(d), BatchError::bad_length,
                "batchLength " + std::to_string(h.batch_length) + " is outside " + std::to_string(kMinLength) + ".." +
                    std::to_string(kMaxBatchLength));
  }
  if (data.size() < h.size()) {
    return fail(std::move(d), BatchError::truncated,
                "batchLength says " + std::to_string(h.size()) + " bytes, " + std::to_string(data.size()) + " are there");
  }
  if (h.magic != kMagic) {
    return fail(std::move(d), BatchError::bad_magic,
                "magic " + std::to_string(h.magic) + " (a batch of another format version; ringbus reads magic 2)");
  }
  d.bytes = data.first(h.size());
  const std::uint32_t crc = crc32c(d.bytes.data() + kAttributesAt, d.bytes.size() - kAttributesAt);
  if (crc != h.crc) {
    return fail(std::move(d), BatchError::bad_crc, "CRC-32C of attributes..end is " + std::to_string(crc) + ", the header says " +
                                                        std::to_string(h.crc));
  }
  if (h.base_offset < 0 || h.last_offset_delta < 0 || h.base_offset > INT64_MAX - h.last_offset_delta - 1) {
    return fail(std::move(d), BatchError::bad_record, "baseOffset " + std::to_string(h.base_offset) + " with lastOffsetDelta " +
                                                           std::to_string(h.last_offset_delta) + " is out of range");
  }
  if (h.record_count < 0 || h.record_count > std::int64_t{h.last_offset_delta} + 1) {
    return fail(std::move(d), BatchError::bad_record,
                std::to_string(h.record_count) + " records in lastOffsetDelta " + std::to_string(h.last_offset_delta));
  }
  const auto codec = static_cast<std::uint8_t>(h.attributes & kCompressionMask);
  if (codec > static_cast<std::uint8_t>(Compression::zstd)) {
    return fail(std::move(d), BatchError::bad_compression, "unknown compression codec " + std::to_string(codec));
  }
  d.records = d.bytes.subspan(kRecordsAt);
  if (h.compression() != Compression::none) {
    std::string error;
    if (!decompress(h.compression(), d.records, max_records_bytes, scratch, error)) {
      return fail(std::move(d), BatchError::bad_compression, std::string(to_string(h.compression())) + ": " + error);
    }
    d.records = scratch;
  }
  const std::byte* p = d.records.data();
  const std::byte* end = p + d.records.size();
  BatchRecord r;
  std::int64_t last = -1;
  for (std::int32_t i = 0; i < h.record_count; ++i) {
    if (!detail::parse_record(p, end, h, r)) {
      return fail(std::move(d), BatchError::bad_record, "record " + std::to_string(i) + " of " +
                                                             std::to_string(h.record_count) + " is malformed");
    }
    const std::int64_t delta = r.offset - h.base_offset;
    if (delta <= last) {
      return fail(std::move(d), BatchError::bad_record, "record " + std::to_string(i) + " has offset delta " +
                                                             std::to_string(delta) + ", not above " + std::to_string(last));
    }
    last = delta;
  }
  if (p != end) {
    return fail(std::move(d), BatchError::bad_record,
                std::to_string(end - p) + " bytes after the last of " + std::to_string(h.record_count) + " records");
  }
  return d;
}

void BatchBuilder::reset(std::uint64_t base_offset, std::int32_t leader_epoch, Compression codec) {
  if (buf_.size() < kHeaderSize) buf_.resize(kHeaderSize);
  std::memset(buf_.data(), 0, kHeaderSize);
  used_ = kHeaderSize;
  base_ = next_ = base_offset;
  epoch_ = leader_epoch;
  codec_ = codec;
  count_ = 0;
  first_ts_ = max_ts_ = -1;  // Kafka's "no timestamp" for a batch without records
}

std::byte* BatchBuilder::grow(std::size_t n) {
  // The buffer keeps its size across batches: no zero-filling once warm.
  if (buf_.size() < used_ + n) buf_.resize(std::max(used_ + n, 2 * buf_.size()));
  std::byte* p = buf_.data() + used_;
  used_ += n;
  return p;
}

template <class PutHeaders>
void BatchBuilder::append_record(std::uint64_t offset, std::int64_t timestamp_ms, std::string_view key,
                                 std::string_view value, std::size_t header_bytes, PutHeaders&& put_headers) {
  if (count_ == 0) first_ts_ = max_ts_ = timestamp_ms;
  max_ts_ = std::max(max_ts_, timestamp_ms);
  const std::int64_t ts_delta =
      static_cast<std::int64_t>(static_cast<std::uint64_t>(timestamp_ms) - static_cast<std::uint64_t>(first_ts_));
  const auto offset_delta = static_cast<std::int64_t>(offset - base_);
  const std::int64_t key_length = key.empty() ? -1 : static_cast<std::int64_t>(key.size());
  const auto value_length = static_cast<std::int64_t>(value.size());
  const std::size_t body = 1 + varint_size(ts_delta) + varint_size(offset_delta) + field_size(key_length) +
                           field_size(value_length) + header_bytes;
  const auto body_length = static_cast<std::int64_t>(body);
  std::byte* p = grow(varint_size(body_length) + body);
  p = ringbus::detail::put_varint(p, body_length);
  *p++ = std::byte{0};  // attributes
  p = ringbus::detail::put_varint(p, ts_delta);
  p = ringbus::detail::put_varint(p, offset_delta);
  p = ringbus::detail::put_varint(p, key_length);
  if (!key.empty()) std::memcpy(p, key.data(), key.size());
  p += key.size();
  p = ringbus::detail::put_varint(p, value_length);
  if (!value.empty()) std::memcpy(p, value.data(), value.size());
  p += value.size();
  put_headers(p);
  ++count_;
  next_ = offset + 1;
}

void BatchBuilder::append(std::uint64_t offset, std::int64_t timestamp_ms, std::string_view key, std::string_view value,
                          std::span<const Header> headers) {
  append_record(offset, timestamp_ms, key, value, ringbus::detail::encoded_headers_size(headers),
                [&](std::byte* p) { ringbus::detail::encode_headers(headers, p); });
}

void BatchBuilder::append(std::uint64_t offset, std::int64_t timestamp_ms, std::string_view key, std::string_view value,
                          const HeaderView& headers) {
  // A ring frame without headers stores nothing; a record says "0 headers".
  const std::string_view block = headers.encoded();
  append_record(offset, timestamp_ms, key, value, block.empty() ? 1 : block.size(), [&](std::byte* p) {
    if (block.empty()) {
      *p = std::byte{0};
    } else {
      std::memcpy(p, block.data(), block.size());
    }
  });
}

void BatchBuilder::cover_until(std::uint64_t end) { next_ = std::max(next_, end); }

std::span<const std::byte> BatchBuilder::finish() {
  if (empty()) return {};
  std::span<std::byte> out(buf_.data(), used_);
  if (codec_ != Compression::none) {
    packed_.assign(buf_.begin(), buf_.begin() + kHeaderSize);
    compress(codec_, out.subspan(kHeaderSize), packed_);
    out = packed_;
  }
  std::byte* p = out.data();
  store_be<std::int64_t>(p + kBaseOffsetAt, static_cast<std::int64_t>(base_));
  store_be<std::int32_t>(p + kBatchLengthAt, static_cast<std::int32_t>(out.size() - kLogOverhead));
  store_be<std::int32_t>(p + kLeaderEpochAt, epoch_);
  p[kMagicAt] = static_cast<std::byte>(kMagic);
  store_be<std::uint16_t>(p + kAttributesAt, static_cast<std::uint16_t>(codec_));
  store_be<std::int32_t>(p + kLastOffsetDeltaAt, static_cast<std::int32_t>(next_ - base_ - 1));
  store_be<std::int64_t>(p + kBaseTimestampAt, first_ts_);
  store_be<std::int64_t>(p + kMaxTimestampAt, max_ts_);
  store_be<std::int64_t>(p + kProducerIdAt, -1);
  store_be<std::int16_t>(p + kProducerEpochAt, -1);
  store_be<std::int32_t>(p + kBaseSequenceAt, -1);
  store_be<std::int32_t>(p + kRecordCountAt, static_cast<std::int32_t>(count_));
  store_be<std::uint32_t>(p + kCrcAt, crc32c(p + kAttributesAt, out.size() - kAttributesAt));
  return out;
}

}  // namespace ringbus::log::v2
