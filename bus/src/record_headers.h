// Encoding of a record's headers inside its frame (spec: bus/README.md):
// each header is [u16 name length][u32 value length][name][value], little
// endian, back to back; headers_length in the frame covers all of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ringbus/record.h"

namespace ringbus::detail {

inline constexpr std::size_t kHeaderPrefix = 6;

// Bytes the headers take encoded; SIZE_MAX if a name is longer than 65535.
std::size_t encoded_headers_size(std::span<const Header> headers) noexcept;
// Writes them at dst (encoded_headers_size bytes).
void encode_headers(std::span<const Header> headers, std::byte* dst) noexcept;

}  // namespace ringbus::detail
