#include "compression.h"

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <memory>

#include "byte_order.h"

namespace ringbus::log {

namespace {

// Output grows in steps of this, up to the caller's limit.
constexpr std::size_t kStep = 64 * 1024;

const char* cp(const std::byte* p) { return reinterpret_cast<const char*>(p); }

void append_be32(std::vector<std::byte>& out, std::uint32_t v) {
  v = __builtin_bswap32(v);
  const auto* b = reinterpret_cast<const std::byte*>(&v);
  out.insert(out.end(), b, b + 4);
}

// Makes room for `more` bytes past `used`, within the limit; false if over it.
bool grow(std::vector<std::byte>& out, std::size_t used, std::size_t more, std::size_t max_size) {
  if (used + more > max_size) more = max_size - used;
  if (more == 0) return false;
  if (out.size() < used + more) out.resize(used + more);
  return true;
}

std::string too_large(std::size_t max_size) {
  return "decompresses to more than " + std::to_string(max_size) + " bytes";
}

// ---- gzip (zlib) -----------------------------------------------------------

void gzip_compress(std::span<const std::byte> in, std::vector<std::byte>& out) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // 15 + 16: a gzip header
  const std::size_t at = out.size();
  out.resize(at + deflateBound(&z, in.size()));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data() + at);
  z.avail_out = static_cast<uInt>(out.size() - at);
  deflate(&z, Z_FINISH);  // the bound guarantees one call finishes
  out.resize(at + z.total_out);
  deflateEnd(&z);
}

bool gzip_decompress(std::span<const std::byte> in, std::size_t max_size, std::vector<std::byte>& out, std::string& error) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) {  // 15 + 32: gzip or zlib, detected
    error = "zlib could not start";
    return false;
  }
  std::unique_ptr<z_stream, int (*)(z_stream*)> end(&z, inflateEnd);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::size_t used = 0;
  for (;;) {
    if (!grow(out, used, kStep, max_size)) {
      error = too_large(max_size);
      return false;
    }
    z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    z.avail_out = static_cast<uInt>(out.size() - used);
    const int rc = inflate(&z, Z_NO_FLUSH);
    used = z.total_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && !(rc == Z_BUF_ERROR && z.avail_out == 0)) {
      error = std::string("not valid gzip data (") + (z.msg ? z.msg : "truncated") + ")";
      return false;
    }
  }
  if (z.avail_in != 0) {
    error = std::to_string(z.avail_in) + " bytes after the end of the gzip stream";
    return false;
  }
  out.resize(used);
  return true;
}

// ---- snappy ----------------------------------------------------------------
// Kafka's clients write snappy in the xerial framing (snappy-java's stream
// format): a magic, two versions, then blocks of [be32 length][raw snappy].

constexpr unsigned char kXerialMagic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
constexpr std::size_t kXerialHeader = 16;
constexpr std::size_t kXerialBlock = 32 * 1024;

void snappy_compress(std::span<const std::byte> in, std::vector<std::byte>& out) {
  const auto* m = reinterpret_cast<const std::byte*>(kXerialMagic);
  out.insert(out.end(), m, m + sizeof kXerialMagic);
  append_be32(out, 1);  // version
  append_be32(out, 1);  // the oldest version that reads it
  std::string block;
  for (std::size_t at = 0; at < in.size(); at += kXerialBlock) {
    const std::size_t n = std::min(kXerialBlock, in.size() - at);
    snappy::Compress(cp(in.data() + at), n, &block);
    append_be32(out, static_cast<std::uint32_t>(block.size()));
    const auto* b = reinterpret_cast<const std::byte*>(block.data());
    out.insert(out.end(), b, b + block.size());
  }
}

bool snappy_block(const std::byte* p, std::size_t n, std::size_t max_size, std::vector<std::byte>& out, std::size_t& used,
                  std::string& error) {
  std::size_t length = 0;
  if (!snappy::GetUncompressedLength(cp(p), n, &length)) {
    error = "not valid snappy data (bad length)";
    return false;
  }
  if (length > max_size - used) {
    error = too_large(max_size);
    return false;
  }
  out.resize(used + length);
  if (!snappy::RawUncompress(cp(p), n, reinterpret_cast<char*>(out.data() + used))) {
    error = "not valid snappy data";
    return false;
  }
  used += length;
  return true;
}

bool snappy_decompress(std::span<const std::byte> in, std::size_t max_size, std::vector<std::byte>& out, std::string& error) {
  std::size_t used = 0;
  out.clear();
  if (in.size() < kXerialHeader || std::memcmp(in.data(), kXerialMagic, sizeof kXerialMagic) != 0) {
    return snappy_block(in.data(), in.size(), max_size, out, used, error);  // raw snappy
  }
  for (std::size_t at = kXerialHeader; at < in.size();) {
    if (in.size() - at < 4) {
      error = "a snappy block length is cut off at byte " + std::to_string(at);
      return false;
    }
    const std::uint32_t n = detail::load_be<std::uint32_t>(in.data() + at);
    at += 4;
    if (n > in.size() - at) {
      error = "a snappy block of " + std::to_string(n) + " bytes runs past the data";
      return false;
    }
    if (!snappy_block(in.data() + at, n, max_size, out, used, error)) return false;
    at += n;
  }
  return true;
}

// ---- lz4 (frame format) -------------------------------------------------------

void lz4_compress(std::span<const std::byte> in, std::vector<std::byte>& out) {
  LZ4F_preferences_t prefs{};
  const std::size_t at = out.size();
  out.resize(at + LZ4F_compressFrameBound(in.size(), &prefs));
  const std::size_t n = LZ4F_compressFrame(out.data() + at, out.size() - at, in.data(), in.size(), &prefs);
  out.resize(at + (LZ4F_isError(n) ? 0 : n));
}

bool lz4_decompress(std::span<const std::byte> in, std::size_t max_size, std::vector<std::byte>& out, std::string& error) {
  LZ4F_dctx* ctx = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) {
    error = "lz4 could not start";
    return false;
  }
  std::unique_ptr<LZ4F_dctx, LZ4F_errorCode_t (*)(LZ4F_dctx*)> free_ctx(ctx, LZ4F_freeDecompressionContext);
  std::size_t used = 0;
  std::size_t at = 0;
  for (;;) {
    if (!grow(out, used, kStep, max_size)) {
      error = too_large(max_size);
      return false;
    }
    std::size_t dst = out.size() - used;
    std::size_t src = in.size() - at;
    const std::size_t hint = LZ4F_decompress(ctx, out.data() + used, &dst, in.data() + at, &src, nullptr);
    if (LZ4F_isError(hint)) {
      error = std::string("not valid lz4 data (") + LZ4F_getErrorName(hint) + ")";
      return false;
    }
    used += dst;
    at += src;
    if (hint == 0) break;  // the frame is complete
    if (at == in.size() && dst == 0) {
      error = "the lz4 frame is cut off";
      return false;
    }
  }
  if (at != in.size()) {
    error = std::to_string(in.size() - at) + " bytes after the end of the lz4 frame";
    return false;
  }
  out.resize(used);
  return true;
}

// ---- zstd ------------------------------------------------------------------

void zstd_compress(std::span<const std::byte> in, std::vector<std::byte>& out) {
  const std::size_t at = out.size();
  out.resize(at + ZSTD_compressBound(in.size()));
  const std::size_t n = ZSTD_compress(out.data() + at, out.size() - at, in.data(), in.size(), 3);
  out.resize(at + (ZSTD_isError(n) ? 0 : n));
}

bool zstd_decompress(std::span<const std::byte> in, std::size_t max_size, std::vector<std::byte>& out, std::string& error) {
  std::unique_ptr<ZSTD_DCtx, std::size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  std::size_t used = 0;
  std::size_t left = 1;
  while (left != 0 || src.pos < src.size) {
    if (!grow(out, used, kStep, max_size)) {
      error = too_large(max_size);
      return false;
    }
    ZSTD_outBuffer dst{out.data() + used, out.size() - used, 0};
    const std::size_t before = src.pos;
    left = ZSTD_decompressStream(ctx.get(), &dst, &src);
    if (ZSTD_isError(left)) {
      error = std::string("not valid zstd data (") + ZSTD_getErrorName(left) + ")";
      return false;
    }
    used += dst.pos;
    if (left != 0 && src.pos == src.size && src.pos == before && dst.pos == 0) {
      error = "the zstd frame is cut off";
      return false;
    }
  }
  out.resize(used);
  return true;
}

}  // namespace

void compress(v2::Compression codec, std::span<const std::byte> in, std::vector<std::byte>& out) {
  switch (codec) {
    case v2::Compression::gzip: return gzip_compress(in, out);
    case v2::Compression::snappy: return snappy_compress(in, out);
    case v2::Compression::lz4: return lz4_compress(in, out);
    case v2::Compression::zstd: return zstd_compress(in, out);
    case v2::Compression::none: break;
  }
  out.insert(out.end(), in.begin(), in.end());
}

bool decompress(v2::Compression codec, std::span<const std::byte> in, std::size_t max_size, std::vector<std::byte>& out,
                std::string& error) {
  switch (codec) {
    case v2::Compression::gzip: return gzip_decompress(in, max_size, out, error);
    case v2::Compression::snappy: return snappy_decompress(in, max_size, out, error);
    case v2::Compression::lz4: return lz4_decompress(in, max_size, out, error);
    case v2::Compression::zstd: return zstd_decompress(in, max_size, out, error);
    case v2::Compression::none: break;
  }
  if (in.size() > max_size) {
    error = too_large(max_size);
    return false;
  }
  out.assign(in.begin(), in.end());
  return true;
}

}  // namespace ringbus::log
