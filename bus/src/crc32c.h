// CRC32C (Castagnoli), with the SSE4.2 crc32 instruction. Every batch on
// disk carries one (ARCHITECTURE.md, "Conventions").
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringbus::log {

// Extends `crc` (0 to start) over n bytes. crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0) noexcept;

}  // namespace ringbus::log
