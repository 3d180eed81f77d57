// Encoding of a record's headers (spec: bus/README.md, "Record frames"):
// Kafka's, the same bytes a record of a record batch v2 carries, so the log
// writes them as they are in the ring and a reader views them in place. A
// varint count, then per header a varint name length, the name, a varint
// value length (-1: null, read as empty) and the value. Varints are zigzag
// (Kafka's). No headers is an empty encoding in a ring frame (nothing
// stored) and a count of 0 in a batch; HeaderView reads both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ringbus/record.h"

namespace ringbus::detail {

// Bytes the headers take encoded (count included); SIZE_MAX if a name or
// value is longer than Kafka's int32 lengths allow.
std::size_t encoded_headers_size(std::span<const Header> headers) noexcept;
// Writes them at dst (encoded_headers_size bytes).
void encode_headers(std::span<const Header> headers, std::byte* dst) noexcept;

// Kafka's zigzag varints. read_varint reads at most max_bytes (5 for an
// int32, 10 for an int64) and fails if it runs past `end` or is longer.
std::size_t varint_size(std::int64_t v) noexcept;
std::byte* put_varint(std::byte* dst, std::int64_t v) noexcept;
// Inline: a catch-up read parses several per record.
inline bool read_varint(const std::byte*& p, const std::byte* end, std::int64_t& out, int max_bytes) noexcept {
  std::uint64_t z = 0;
  for (int i = 0; i < max_bytes; ++i) {
    if (p == end) return false;
    const auto b = static_cast<std::uint8_t>(*p++);
    z |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      out = static_cast<std::int64_t>(z >> 1) ^ -static_cast<std::int64_t>(z & 1);
      return true;
    }
  }
  return false;
}

}  // namespace ringbus::detail
