// Names and headers of a partition log's files (log_format.h; spec in
// io/README.md). Shared by the writer, recovery and the readers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "log_format.h"
#include "ringbus/result.h"

namespace ringbus::io {

inline constexpr std::string_view kLogExt = ".log";
inline constexpr std::string_view kIndexExt = ".index";
inline constexpr std::string_view kTimeIndexExt = ".timeindex";

// <dir>/<base offset in 20 digits><ext>
std::string segment_path(const std::string& dir, std::uint64_t base, std::string_view ext);
// A partition's log directory inside its topic's log directory.
std::string partition_log_directory(const std::string& topic_dir, std::uint32_t partition);
// Parses "<20 digits>.log"; false for any other name.
bool parse_segment_name(std::string_view name, std::uint64_t& base);
class FileIo;
// The base offsets of the segments in `dir`, ascending. A missing directory
// is an empty log.
Result<std::vector<std::uint64_t>> list_segments(FileIo& io, const std::string& dir);

SegmentHeader make_segment_header(std::uint64_t base, std::int64_t created_ns);
IndexHeader make_index_header(bool time_index, std::uint64_t base);
// Check a header read from `path` (the bytes may be short or garbage); the
// message names the file and the field.
Status check_segment_header(std::span<const std::byte> bytes, const std::string& path, std::uint64_t base);
Status check_index_header(std::span<const std::byte> bytes, const std::string& path, bool time_index,
                          std::uint64_t base);

// CLOCK_REALTIME in nanoseconds (segment creation times, retention by age).
std::int64_t wall_clock_ns() noexcept;

}  // namespace ringbus::io
