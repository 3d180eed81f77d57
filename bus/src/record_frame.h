// Reading record frames (RecordHeader + key + headers + value, 32-aligned):
// the same framing in the ring and, verbatim, in the commit log's batches.
// These trust the frames: callers pass frames a producer committed, or that
// were checked (the non-gating copy, the batch decoder).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "partition_format.h"
#include "record_batch.h"
#include "ringbus/record.h"

namespace ringbus::detail {

// True if a frame header is what a producer writes: a record whose key and
// headers fit in it, no longer than the topic allows. Readers check this
// before trusting a length from the ring, for every record they deliver, so
// it is written without short-circuit branches (those cost ~15% of batched
// 64 B throughput; the wrap-around of the last term when the length is short
// is harmless, the second term is false then).
inline bool frame_ok(const RecordHeader& h, std::uint64_t max_frame) noexcept {
  return (h.type == FrameType::record) & (h.frame_length >= sizeof(RecordHeader)) & (h.frame_length <= max_frame) &
         (std::uint64_t{h.key_length} + h.headers_length <= h.frame_length - sizeof(RecordHeader));
}

// The same for a batch frame (FrameType::batch): a header a producer writes
// around a batch at least as long as a batch header.
inline bool batch_frame_ok(const RecordHeader& h, std::uint64_t max_frame) noexcept {
  return h.type == FrameType::batch && h.frame_length >= sizeof(RecordHeader) + log::v2::kHeaderSize &&
         h.frame_length <= max_frame && h.key_length == 0 && h.headers_length == 0 && h.claim_records != 0;
}

// Kafka's milliseconds of a nanosecond CLOCK_REALTIME (rounded down, also
// before 1970).
inline std::int64_t ms_of(std::int64_t ns) noexcept {
  return ns >= 0 ? ns / 1'000'000 : -((-ns + 999'999) / 1'000'000);
}

inline Record record_at(const std::byte* frame, std::uint32_t partition) noexcept {
  const auto* h = reinterpret_cast<const RecordHeader*>(frame);
  const auto* body = reinterpret_cast<const char*>(frame + sizeof(RecordHeader));
  const std::size_t value_len = h->frame_length - sizeof(RecordHeader) - h->key_length - h->headers_length;
  return Record{h->offset,
                ms_of(h->timestamp_ns),
                h->timestamp_ns,
                partition,
                std::string_view(body, h->key_length),
                std::string_view(body + h->key_length + h->headers_length, value_len),
                HeaderView(std::string_view(body + h->key_length, h->headers_length))};
}

// Hands the records of `count` contiguous frames at `frames` to fn, passing
// over those below `deliver_from`. Returns the bytes the frames take;
// `delivered` counts the records handed over.
template <class F>
std::uint64_t deliver_frames(const std::byte* frames, std::uint32_t count, std::uint32_t partition,
                             std::uint64_t deliver_from, std::size_t& delivered, F&& fn) {
  std::uint64_t at = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::byte* frame = frames + at;
    const auto* h = reinterpret_cast<const RecordHeader*>(frame);
    if (h->offset >= deliver_from) {
      fn(record_at(frame, partition));
      ++delivered;
    }
    at += align_frame(h->frame_length);
  }
  return at;
}

// Hands the records of a batch frame (header `h`, checked by
// batch_frame_ok; bytes at `frame`) whose offsets pass want(offset) to fn.
// The batch is checked whole first, CRC and every record (compressed
// records are inflated into `scratch`), and must hold exactly one record
// per offset of its claim: false if not, and nothing is handed over. Each
// record's offset is the claim's: h.offset plus its offset delta.
template <class Want, class F>
bool deliver_batch_frame(const RecordHeader& h, const std::byte* frame, std::uint32_t partition,
                         std::vector<std::byte>& scratch, std::size_t& delivered, Want&& want, F&& fn) {
  const std::span<const std::byte> bytes(frame + sizeof(RecordHeader), h.frame_length - sizeof(RecordHeader));
  const log::v2::DecodedBatch b = log::v2::decode_batch(bytes, scratch);
  if (!b.ok() || b.bytes.size() != bytes.size() || b.header.record_count != h.claim_records ||
      b.header.last_offset_delta + 1 != b.header.record_count) {
    return false;
  }
  log::v2::for_each_record(b, [&](const log::v2::BatchRecord& r) {
    const std::uint64_t offset = h.offset + static_cast<std::uint64_t>(r.offset - b.header.base_offset);
    if (!want(offset)) return;
    fn(Record{offset, r.timestamp_ms, h.timestamp_ns, partition, r.key, r.value, r.headers});
    ++delivered;
  });
  return true;
}

}  // namespace ringbus::detail
