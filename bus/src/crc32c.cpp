#include "crc32c.h"

#include <nmmintrin.h>
#include <wmmintrin.h>

#include <cstring>

namespace ringbus::log {

namespace {

// One crc32 instruction has a 3-cycle latency and a throughput of one per
// cycle: a single chain of them runs at a third of what the unit can do.
// Large buffers are cut into three blocks whose CRCs run interleaved, then
// joined: crc(A B C) = crc(A)·x^(8|B|+8|C|) + crc(B)·x^(8|C|) + crc(C) (mod
// P, the register of B and C started at 0). The shift by x^(8n) is one
// carry-less multiply by a constant and one crc32 to reduce it.
constexpr std::uint32_t kPoly = 0x82f63b78;  // CRC-32C, bit-reflected

// a·b mod P, both bit-reflected (bit 31 is x^0).
constexpr std::uint32_t multiply_mod_p(std::uint32_t a, std::uint32_t b) {
  std::uint32_t product = 0;
  for (std::uint32_t m = 1U << 31; m != 0; m >>= 1) {
    if ((a & m) != 0) product ^= b;
    b = (b & 1) != 0 ? (b >> 1) ^ kPoly : b >> 1;
  }
  return product;
}

// x^n mod P, bit-reflected.
constexpr std::uint32_t x_pow_mod_p(std::uint64_t n) {
  std::uint32_t result = 1U << 31;  // x^0
  std::uint32_t square = 1U << 30;  // x^1
  for (; n != 0; n >>= 1) {
    if ((n & 1) != 0) result = multiply_mod_p(square, result);
    square = multiply_mod_p(square, square);
  }
  return result;
}

// The constant that shifts a CRC register over n bytes of zeros: a
// reflected carry-less product carries one extra factor x, and the crc32 of
// the 64-bit product multiplies by x^32 more, hence 8n - 33.
constexpr std::uint32_t shift_constant(std::size_t n) { return x_pow_mod_p(8 * n - 33); }

__attribute__((target("pclmul,sse4.2"))) inline std::uint64_t shift(std::uint64_t crc, std::uint32_t constant) {
  const __m128i product = _mm_clmulepi64_si128(_mm_cvtsi64_si128(static_cast<long long>(crc)),
                                               _mm_cvtsi32_si128(static_cast<int>(constant)), 0);
  return _mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(product)));
}

inline std::uint64_t load8(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Runs the register over as many rounds of three `Block`-byte blocks as fit.
template <std::size_t Block>
__attribute__((target("pclmul,sse4.2"))) inline std::uint64_t three_streams(std::uint64_t c, const unsigned char*& p,
                                                                            std::size_t& n) {
  constexpr std::uint32_t kOne = shift_constant(Block);
  constexpr std::uint32_t kTwo = shift_constant(2 * Block);
  while (n >= 3 * Block) {
    std::uint64_t c1 = 0;
    std::uint64_t c2 = 0;
    for (std::size_t i = 0; i < Block; i += 8) {
      c = _mm_crc32_u64(c, load8(p + i));
      c1 = _mm_crc32_u64(c1, load8(p + Block + i));
      c2 = _mm_crc32_u64(c2, load8(p + 2 * Block + i));
    }
    c = shift(c, kTwo) ^ shift(c1, kOne) ^ c2;
    p += 3 * Block;
    n -= 3 * Block;
  }
  return c;
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t c = ~crc & 0xFFFFFFFFu;  // standard pre- and post-inversion
  c = three_streams<4096>(c, p, n);
  c = three_streams<256>(c, p, n);
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, load8(p));
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

}  // namespace ringbus::log
