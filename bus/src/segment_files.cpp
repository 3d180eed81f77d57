#include "segment_files.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "file_io.h"

namespace ringbus::log {

std::string segment_path(const std::string& dir, std::uint64_t base, std::string_view ext) {
  char name[24];
  std::snprintf(name, sizeof name, "%020llu", static_cast<unsigned long long>(base));
  return dir + "/" + name + std::string(ext);
}

std::string partition_log_directory(const std::string& topic_dir, std::uint32_t partition) {
  return topic_dir + "/" + std::to_string(partition);
}

bool parse_segment_name(std::string_view name, std::string_view ext, std::uint64_t& base) {
  if (name.size() != 20 + ext.size() || name.substr(20) != ext) return false;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 20; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return false;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;  // 20 digits can exceed 2^64
    v = v * 10 + digit;
  }
  base = v;
  return true;
}

SegmentNames sort_segment_names(const std::vector<std::string>& names) {
  SegmentNames out;
  for (const std::string& n : names) {
    std::uint64_t base = 0;
    if (parse_segment_name(n, kLogExt, base)) {
      out.logs.push_back(base);
    } else if (parse_segment_name(n, kIndexExt, base)) {
      out.indexes.push_back(base);
    } else if (parse_segment_name(n, kTimeIndexExt, base)) {
      out.time_indexes.push_back(base);
    }
  }
  for (auto* v : {&out.logs, &out.indexes, &out.time_indexes}) std::sort(v->begin(), v->end());
  return out;
}

Result<std::vector<std::uint64_t>> list_segments(FileIo& io, const std::string& dir) {
  auto names = io.list(dir);
  if (!names) {
    if (names.error().code == Errc::not_found) return std::vector<std::uint64_t>{};
    return names.error();
  }
  return sort_segment_names(names.value()).logs;
}

SegmentHeader make_segment_header(std::uint64_t base, std::int64_t created_ns, std::uint32_t version) {
  SegmentHeader h{};
  h.magic = kSegmentMagic;
  h.version = version;
  h.header_size = sizeof(SegmentHeader);
  h.base_offset = base;
  h.created_ns = created_ns;
  return h;
}

IndexHeader make_index_header(bool time_index, std::uint64_t base) {
  IndexHeader h{};
  h.magic = time_index ? kTimeIndexMagic : kIndexMagic;
  h.version = kSegmentVersion;
  h.entry_size = time_index ? sizeof(TimeIndexEntry) : sizeof(IndexEntry);
  h.base_offset = base;
  return h;
}

namespace {

Error corrupt(const std::string& path, const std::string& what) { return Error{Errc::corrupt, path + ": " + what}; }

}  // namespace

Status check_segment_header(std::span<const std::byte> bytes, const std::string& path, std::uint64_t base) {
  if (bytes.size() < sizeof(SegmentHeader)) {
    return corrupt(path, "truncated: " + std::to_string(bytes.size()) + " bytes, a segment header is 64");
  }
  SegmentHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.magic != kSegmentMagic) return corrupt(path, "not a ringbus segment file (bad magic)");
  if (h.version < kSegmentVersionRbb1 || h.version > kSegmentVersionKafka) {
    return Error{Errc::version_mismatch, path + ": segment format version " + std::to_string(h.version) +
                                             ", this ringbus reads versions " + std::to_string(kSegmentVersionRbb1) +
                                             " to " + std::to_string(kSegmentVersionKafka)};
  }
  if (h.header_size != sizeof(SegmentHeader)) return corrupt(path, "header_size " + std::to_string(h.header_size));
  if (h.base_offset != base) {
    return corrupt(path, "base offset " + std::to_string(h.base_offset) + " differs from the file name");
  }
  return {};
}

Status check_index_header(std::span<const std::byte> bytes, const std::string& path, bool time_index,
                          std::uint64_t base) {
  if (bytes.size() < sizeof(IndexHeader)) {
    return corrupt(path, "truncated: " + std::to_string(bytes.size()) + " bytes, an index header is 32");
  }
  IndexHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  const IndexHeader want = make_index_header(time_index, base);
  if (h.magic != want.magic) return corrupt(path, "not a ringbus index file (bad magic)");
  if (h.version < kSegmentVersionRbb1 || h.version > kSegmentVersionKafka) {
    return Error{Errc::version_mismatch, path + ": index format version " + std::to_string(h.version) +
                                             ", this ringbus reads versions " + std::to_string(kSegmentVersionRbb1) +
                                             " to " + std::to_string(kSegmentVersionKafka)};
  }
  if (h.entry_size != want.entry_size) return corrupt(path, "entry_size " + std::to_string(h.entry_size));
  if (h.base_offset != base) {
    return corrupt(path, "base offset " + std::to_string(h.base_offset) + " differs from the file name");
  }
  return {};
}

}  // namespace ringbus::log
