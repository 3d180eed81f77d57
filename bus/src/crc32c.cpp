#include "crc32c.h"

#include <isa-l/crc.h>

#include <algorithm>

namespace ringbus::log {

std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc) noexcept {
  // ISA-L's crc32_iscsi works on the register without the standard pre- and
  // post-inversion, and takes an int length.
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));  // only read
  std::uint32_t reg = ~crc;
  while (n > 0) {
    const std::size_t k = std::min<std::size_t>(n, std::size_t{1} << 30);
    reg = crc32_iscsi(p, static_cast<int>(k), reg);
    p += k;
    n -= k;
  }
  return ~reg;
}

}  // namespace ringbus::log
