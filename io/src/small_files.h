// The broker's small metadata files (topic.meta, group positions): read
// whole, and replaced so that a crash leaves the old file or the new one,
// never a torn mix.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "ringbus/result.h"

namespace ringbus::io {

// At most 64 KiB: these files are a few hundred bytes. Errc::not_found if
// the file does not exist.
Result<std::vector<std::byte>> read_small_file(const std::string& path);

// Writes <dir>/<name>.tmp, fdatasyncs it, renames it over <dir>/<name> and
// fsyncs the directory.
Status replace_file_durably(const std::string& dir, const std::string& name, std::span<const std::byte> bytes);

}  // namespace ringbus::io
