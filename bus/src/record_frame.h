// Reading record frames (RecordHeader + key + headers + value, 32-aligned):
// the same framing in the ring and, verbatim, in the commit log's batches.
// These trust the frames: callers pass frames a producer committed, or that
// were checked (the non-gating copy, the batch decoder).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "partition_format.h"
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

}  // namespace ringbus::detail
