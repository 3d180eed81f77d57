// The broker's small files (topic.meta, group positions, the clean marker;
// layouts in small_file_format.h): their shared envelope (magic, version,
// CRC32C), read whole, and replaced so that a crash leaves the old file or
// the new one, never a torn mix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringbus/result.h"

namespace ringbus::io {

// Fills in the envelope at the start of `bytes` (at least 16): magic,
// version, and the CRC32C of everything after it. Call it last.
void seal_envelope(std::span<std::byte> bytes, std::uint64_t magic, std::uint32_t version);
// Checks the envelope of a file of kind `kind` ("topic file", ...) read from
// `path`: Errc::corrupt when it is shorter than an envelope or has another
// magic, Errc::version_mismatch for a version outside [oldest, newest].
// Returns the version; the caller checks the size that version implies,
// then envelope_crc_ok.
Result<std::uint32_t> open_envelope(std::span<const std::byte> bytes, std::uint64_t magic, std::uint32_t oldest,
                                    std::uint32_t newest, const std::string& path, const char* kind);
bool envelope_crc_ok(std::span<const std::byte> bytes);

// At most 64 KiB: these files are a few hundred bytes. Errc::not_found if
// the file does not exist.
Result<std::vector<std::byte>> read_small_file(const std::string& path);

// Writes <dir>/<name>.tmp, fdatasyncs it, renames it over <dir>/<name> and
// fsyncs the directory.
Status replace_file_durably(const std::string& dir, const std::string& name, std::span<const std::byte> bytes);

}  // namespace ringbus::io
