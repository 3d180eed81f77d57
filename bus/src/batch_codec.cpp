#include "batch_codec.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "crc32c.h"

namespace ringbus::log {

using detail::align_frame;
using detail::FrameType;
using detail::RecordHeader;

const char* to_string(BatchError e) noexcept {
  switch (e) {
    case BatchError::none: return "ok";
    case BatchError::truncated: return "truncated batch";
    case BatchError::bad_magic: return "no batch here (bad magic)";
    case BatchError::bad_version: return "batch of an unknown format version";
    case BatchError::bad_length: return "batch length out of range";
    case BatchError::bad_crc: return "CRC32C mismatch";
    case BatchError::bad_record: return "inconsistent record in a batch";
    case BatchError::bad_compression: return "compressed records that cannot be read";
  }
  return "unknown";
}

namespace {

DecodedBatch fail(BatchError e, std::string detail) {
  DecodedBatch d;
  d.error = e;
  d.detail = std::move(detail);
  return d;
}

// What readers need of an RBB1 header.
BatchInfo info_of(const BatchHeader& h) noexcept {
  return BatchInfo{h.base_offset, h.offset_span, h.record_count, h.batch_length, h.first_timestamp_ns,
                   h.max_timestamp_ns, 0, Compression::none};
}

}  // namespace

DecodedBatch decode_batch(std::span<const std::byte> data) {
  if (data.size() < sizeof(BatchHeader)) {
    return fail(BatchError::truncated, std::to_string(data.size()) + " bytes, a batch header is 64");
  }
  BatchHeader h;
  std::memcpy(&h, data.data(), sizeof h);
  if (h.magic != kBatchMagic) return fail(BatchError::bad_magic, "magic " + std::to_string(h.magic));
  if (h.version != kBatchVersion) {
    return fail(BatchError::bad_version, "version " + std::to_string(h.version) + ", this ringbus reads " +
                                             std::to_string(kBatchVersion));
  }
  if (h.batch_length < sizeof(BatchHeader) || h.batch_length > kMaxBatchLength || h.batch_length % kBatchAlign != 0) {
    return fail(BatchError::bad_length, "batch_length " + std::to_string(h.batch_length));
  }
  if (data.size() < h.batch_length) {
    return fail(BatchError::truncated,
                std::to_string(data.size()) + " bytes, batch_length says " + std::to_string(h.batch_length));
  }
  const std::uint32_t crc = crc32c(data.data() + kBatchCrcStart, h.batch_length - kBatchCrcStart);
  if (crc != h.crc32c) return fail(BatchError::bad_crc, "at base offset " + std::to_string(h.base_offset));
  if (h.flags != 0 || h.record_count > h.offset_span) {
    return fail(BatchError::bad_record, "flags or record_count out of range");
  }
  // The CRC matched, so these bytes are what a writer wrote; still, a writer
  // of another build could be wrong, and a reader must never overrun.
  const std::span<const std::byte> frames = data.subspan(sizeof(BatchHeader), h.batch_length - sizeof(BatchHeader));
  std::uint64_t next_min = h.base_offset;
  const std::uint64_t end_offset = h.base_offset + h.offset_span;
  std::uint32_t count = 0;
  for (std::size_t at = 0; at < frames.size();) {
    if (frames.size() - at < sizeof(RecordHeader)) return fail(BatchError::bad_record, "frame header cut off");
    RecordHeader r;
    std::memcpy(&r, frames.data() + at, sizeof r);
    if (r.type != FrameType::record || r.frame_length < sizeof(RecordHeader) ||
        align_frame(r.frame_length) > frames.size() - at ||
        std::uint64_t{r.key_length} + r.headers_length > r.frame_length - sizeof(RecordHeader)) {
      return fail(BatchError::bad_record, "frame at byte " + std::to_string(sizeof(BatchHeader) + at));
    }
    if (r.offset < next_min || r.offset >= end_offset) {
      return fail(BatchError::bad_record, "record offset " + std::to_string(r.offset) + " outside the batch or out of order");
    }
    next_min = r.offset + 1;
    ++count;
    at += align_frame(r.frame_length);
  }
  if (count != h.record_count) {
    return fail(BatchError::bad_record, std::to_string(count) + " records, header says " + std::to_string(h.record_count));
  }
  DecodedBatch d;
  d.header = info_of(h);
  d.frames = frames;
  return d;
}

namespace {

// Kafka's milliseconds as nanoseconds, saturating (a damaged or foreign
// batch may hold any value).
std::int64_t ns_of_ms(std::int64_t ms) noexcept {
  constexpr std::int64_t kLimit = INT64_MAX / 1'000'000;
  return std::clamp(ms, -kLimit, kLimit) * 1'000'000;
}

// What readers need of a v2 header (a plausible one: lengths checked).
BatchInfo info_of(const v2::BatchHeader& h) noexcept {
  const bool records = h.record_count > 0;
  return BatchInfo{static_cast<std::uint64_t>(h.base_offset),
                   static_cast<std::uint32_t>(h.last_offset_delta) + 1,
                   records ? static_cast<std::uint32_t>(h.record_count) : 0,
                   static_cast<std::uint32_t>(h.size()),
                   records ? ns_of_ms(h.base_timestamp) : 0,
                   records ? ns_of_ms(h.max_timestamp) : 0,
                   h.leader_epoch,
                   h.compression()};
}

BatchError error_of(v2::BatchError e) noexcept {
  switch (e) {
    case v2::BatchError::none: return BatchError::none;
    case v2::BatchError::truncated: return BatchError::truncated;
    case v2::BatchError::bad_length: return BatchError::bad_length;
    case v2::BatchError::bad_magic: return BatchError::bad_version;
    case v2::BatchError::bad_crc: return BatchError::bad_crc;
    case v2::BatchError::bad_compression: return BatchError::bad_compression;
    case v2::BatchError::bad_record: return BatchError::bad_record;
  }
  return BatchError::bad_record;
}

}  // namespace

std::size_t batch_header_size(std::uint32_t format) noexcept {
  return format == kSegmentVersionKafka ? v2::kHeaderSize : sizeof(BatchHeader);
}

std::uint32_t batch_alignment(std::uint32_t format) noexcept { return format == kSegmentVersionKafka ? 1 : kBatchAlign; }

Peek peek_batch(std::span<const std::byte> data, std::uint32_t format, BatchInfo& out) noexcept {
  if (format == kSegmentVersionKafka) {
    v2::BatchHeader h;
    if (!v2::peek_header(data, h) || h.magic != v2::kMagic) return Peek::none;
    out.base_offset = static_cast<std::uint64_t>(h.base_offset);
    if (h.base_offset < 0 || h.last_offset_delta < 0 ||
        h.batch_length < static_cast<std::int32_t>(v2::kHeaderSize - v2::kLogOverhead) ||
        static_cast<std::uint64_t>(h.batch_length) > kMaxBatchLength) {
      return Peek::magic_only;
    }
    out = info_of(h);
    return Peek::plausible;
  }
  if (data.size() < sizeof(BatchHeader)) return Peek::none;
  BatchHeader h;
  std::memcpy(&h, data.data(), sizeof h);
  if (h.magic != kBatchMagic) return Peek::none;
  out.base_offset = h.base_offset;
  if (h.batch_length < sizeof(BatchHeader) || h.batch_length > kMaxBatchLength || h.batch_length % kBatchAlign != 0) {
    return Peek::magic_only;
  }
  out = info_of(h);
  return Peek::plausible;
}

DecodedBatch decode_batch(std::span<const std::byte> data, std::uint32_t format, std::vector<std::byte>& scratch) {
  if (format != kSegmentVersionKafka) return decode_batch(data);
  DecodedBatch d;
  d.format = kSegmentVersionKafka;
  d.v2 = v2::decode_batch(data, scratch);
  d.error = error_of(d.v2.error);
  d.detail = d.v2.detail;
  if (d.ok()) d.header = info_of(d.v2.header);
  return d;
}

void BatchBuilder::reset(std::uint64_t base_offset) {
  buf_.assign(sizeof(BatchHeader), std::byte{0});
  base_ = base_offset;
  span_ = 0;
  records_ = 0;
}

void BatchBuilder::append(std::span<const std::byte> frames, std::uint32_t records, std::uint32_t offsets) {
  buf_.insert(buf_.end(), frames.begin(), frames.end());
  records_ += records;
  span_ += offsets;
}

void BatchBuilder::append_record(std::uint64_t offset, std::int64_t timestamp_ns, std::string_view key,
                                 std::string_view value) {
  const std::size_t frame = sizeof(RecordHeader) + key.size() + value.size();
  const std::size_t at = buf_.size();
  buf_.resize(at + align_frame(frame), std::byte{0});
  RecordHeader r{static_cast<std::uint32_t>(frame), FrameType::record, 1, static_cast<std::uint32_t>(key.size()),
                 0, offset, timestamp_ns};
  std::memcpy(buf_.data() + at, &r, sizeof r);
  std::memcpy(buf_.data() + at + sizeof r, key.data(), key.size());
  std::memcpy(buf_.data() + at + sizeof r + key.size(), value.data(), value.size());
  ++records_;
  span_ = static_cast<std::uint32_t>(std::max<std::uint64_t>(span_, offset + 1 - base_));
}

std::span<const std::byte> BatchBuilder::finish() {
  BatchHeader h{};
  h.magic = kBatchMagic;
  h.batch_length = static_cast<std::uint32_t>(buf_.size());
  h.version = kBatchVersion;
  h.base_offset = base_;
  h.offset_span = span_;
  h.record_count = records_;
  h.first_timestamp_ns = std::numeric_limits<std::int64_t>::max();
  h.max_timestamp_ns = std::numeric_limits<std::int64_t>::min();
  for (std::size_t at = sizeof(BatchHeader); at < buf_.size();) {
    RecordHeader r;
    std::memcpy(&r, buf_.data() + at, sizeof r);
    h.first_timestamp_ns = std::min(h.first_timestamp_ns, r.timestamp_ns);
    h.max_timestamp_ns = std::max(h.max_timestamp_ns, r.timestamp_ns);
    at += align_frame(r.frame_length);
  }
  if (records_ == 0) h.first_timestamp_ns = h.max_timestamp_ns = 0;
  std::memcpy(buf_.data(), &h, sizeof h);
  h.crc32c = crc32c(buf_.data() + kBatchCrcStart, buf_.size() - kBatchCrcStart);
  std::memcpy(buf_.data() + offsetof(BatchHeader, crc32c), &h.crc32c, sizeof h.crc32c);
  return buf_;
}

}  // namespace ringbus::log
