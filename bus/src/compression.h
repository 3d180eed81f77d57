// The record batch codecs Kafka uses (attributes bits 0-2), with Debian's
// libraries: gzip (zlib), snappy (libsnappy, in the xerial framing Kafka's
// clients write; raw snappy is read too), lz4 (liblz4, the LZ4 frame format)
// and zstd (libzstd). A batch's records are compressed as one block.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "record_batch_format.h"

namespace ringbus::log {

// Appends `in` compressed with `codec` (not none) to `out`.
void compress(v2::Compression codec, std::span<const std::byte> in, std::vector<std::byte>& out);
// Replaces `out` with `in` decompressed. False (with the reason in `error`)
// if the data is not valid for the codec or would decompress to more than
// `max_size` bytes (a bomb is refused, not inflated).
bool decompress(v2::Compression codec, std::span<const std::byte> in, std::size_t max_size, std::vector<std::byte>& out,
                std::string& error);

}  // namespace ringbus::log
