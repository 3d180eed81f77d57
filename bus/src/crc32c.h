// CRC32C (Castagnoli), with ISA-L's crc32_iscsi (Debian's libisal: folding
// with carry-less multiplies, chosen for the CPU at run time; 1.2x our own
// three interleaved crc32 streams on this project's machine, bench/RESULTS.md).
// Every batch on disk carries one (ARCHITECTURE.md, "Conventions").
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringbus::log {

// Extends `crc` (0 to start) over n bytes. crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0) noexcept;

}  // namespace ringbus::log
