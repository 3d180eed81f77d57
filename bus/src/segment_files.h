// Names and headers of a partition log's files (log_format.h; spec in
// io/README.md). Shared by the writer, recovery and the readers.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>
#include <string>
#include <string_view>
#include <vector>

#include "file_io.h"
#include "log_format.h"
#include "ringbus/result.h"

namespace ringbus::log {

inline constexpr std::string_view kLogExt = ".log";
inline constexpr std::string_view kIndexExt = ".index";
inline constexpr std::string_view kTimeIndexExt = ".timeindex";

// <dir>/<base offset in 20 digits><ext>
std::string segment_path(const std::string& dir, std::uint64_t base, std::string_view ext);
// A partition's log directory inside its topic's log directory.
std::string partition_log_directory(const std::string& topic_dir, std::uint32_t partition);
// Parses "<20 digits><ext>"; false for any other name.
bool parse_segment_name(std::string_view name, std::string_view ext, std::uint64_t& base);
// A directory's segment files by kind, as base offsets, ascending (other
// names are left out). One pass: a log of 10,000 segments has 30,000 names.
struct SegmentNames {
  std::vector<std::uint64_t> logs;
  std::vector<std::uint64_t> indexes;
  std::vector<std::uint64_t> time_indexes;
};
SegmentNames sort_segment_names(const std::vector<std::string>& names);
// The base offsets of the segments in `dir`, ascending. A missing directory
// is an empty log.
Result<std::vector<std::uint64_t>> list_segments(FileIo& io, const std::string& dir);

SegmentHeader make_segment_header(std::uint64_t base, std::int64_t created_ns, std::uint32_t version = kSegmentVersion);
IndexHeader make_index_header(bool time_index, std::uint64_t base);
// Check a header read from `path` (the bytes may be short or garbage); the
// message names the file and the field.
Status check_segment_header(std::span<const std::byte> bytes, const std::string& path, std::uint64_t base);
Status check_index_header(std::span<const std::byte> bytes, const std::string& path, bool time_index,
                          std::uint64_t base);

// The entries of an index file (IndexEntry or TimeIndexEntry), after
// checking its header. A missing, unreadable or bad file gives no entries,
// and *problem (if given) says why, naming the file.
template <class Entry>
std::vector<Entry> read_index_entries(FileIo& io, const std::string& path, std::uint64_t base, std::string* problem) {
  constexpr bool time_index = std::is_same_v<Entry, TimeIndexEntry>;
  std::vector<Entry> entries;
  std::string why;
  auto fd = io.open_read(path);
  if (!fd) {
    why = path + ": missing";
  } else {
    auto size = io.size(fd.value());
    std::vector<std::byte> bytes(size ? size.value() : 0);
    auto got = io.read(fd.value(), 0, bytes);
    io.close(fd.value());
    Status header = got ? check_index_header(std::span(bytes.data(), got.value()), path, time_index, base)
                        : Status(got.error());
    if (!header) {
      why = header.error().message;
    } else {
      entries.resize((got.value() - sizeof(IndexHeader)) / sizeof(Entry));
      if (!entries.empty()) {
        std::memcpy(entries.data(), bytes.data() + sizeof(IndexHeader), entries.size() * sizeof(Entry));
      }
    }
  }
  if (problem != nullptr) *problem = std::move(why);
  return entries;
}

// The last entry of an index file for which before(entry) holds, found by
// binary search with one small read per step: a seek reads O(log n) entries,
// never the whole index (a 1 GiB segment's holds 256k entries). `before`
// must hold for a prefix of the entries (both indexes grow monotonically).
// nullopt if it holds for none, or the file is missing or has a bad header.
template <class Entry, class Before>
std::optional<Entry> find_index_entry(FileIo& io, const std::string& path, std::uint64_t base, Before before) {
  constexpr bool time_index = std::is_same_v<Entry, TimeIndexEntry>;
  auto fd = io.open_read(path);
  if (!fd) return std::nullopt;
  std::optional<Entry> found;
  std::byte head[sizeof(IndexHeader)];
  auto size = io.size(fd.value());
  auto got = io.read(fd.value(), 0, head);
  if (size && got && check_index_header(std::span(head, got.value()), path, time_index, base)) {
    std::uint64_t lo = 0;  // entries [0, lo) satisfy before(); [hi, n) do not
    std::uint64_t hi = (size.value() - sizeof(IndexHeader)) / sizeof(Entry);
    while (lo < hi) {
      const std::uint64_t mid = lo + (hi - lo) / 2;
      Entry e{};
      auto r = io.read(fd.value(), sizeof(IndexHeader) + mid * sizeof(Entry),
                       std::span(reinterpret_cast<std::byte*>(&e), sizeof e));
      if (!r || r.value() != sizeof e) break;
      if (before(e)) {
        found = e;
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
  }
  io.close(fd.value());
  return found;
}

}  // namespace ringbus::log
