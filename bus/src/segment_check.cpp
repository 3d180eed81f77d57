#include "segment_check.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "batch_codec.h"
#include "file_io.h"
#include "log_format.h"
#include "segment_files.h"

namespace ringbus::log {

namespace {

namespace fs = std::filesystem;

bool all_zero(std::span<const std::byte> b) {
  return std::all_of(b.begin(), b.end(), [](std::byte x) { return x == std::byte{0}; });
}

// Checks the offset and time indexes beside a segment against the batches
// found in it (position -> base offset).
void check_indexes(FileIo& io, SegmentReport& r, const std::map<std::uint64_t, std::uint64_t>& batch_at) {
  const std::string dir = fs::path(r.path).parent_path().string();
  std::string problem;
  const auto index = read_index_entries<IndexEntry>(io, segment_path(dir, r.base_offset, kIndexExt), r.base_offset, &problem);
  if (!problem.empty()) r.problems.push_back(problem);
  std::uint64_t previous_position = 0;
  for (std::size_t i = 0; i < index.size(); ++i) {
    const IndexEntry& e = index[i];
    const std::string where = segment_path(dir, r.base_offset, kIndexExt) + ": entry " + std::to_string(i) + " (offset " +
                              std::to_string(r.base_offset + e.relative_offset) + ", byte " + std::to_string(e.position) + ")";
    if (i > 0 && e.position <= previous_position) r.problems.push_back(where + ": positions do not increase");
    previous_position = e.position;
    const auto it = batch_at.find(e.position);
    if (it == batch_at.end()) {
      r.problems.push_back(where + (e.position >= r.data_end ? ": points past the end of the data" : ": no batch starts there"));
    } else if (it->second != r.base_offset + e.relative_offset) {
      r.problems.push_back(where + ": the batch there starts at offset " + std::to_string(it->second));
    }
  }
  problem.clear();
  const auto times =
      read_index_entries<TimeIndexEntry>(io, segment_path(dir, r.base_offset, kTimeIndexExt), r.base_offset, &problem);
  if (!problem.empty()) r.problems.push_back(problem);
  for (std::size_t i = 0; i < times.size(); ++i) {
    const TimeIndexEntry& e = times[i];
    const std::string where = segment_path(dir, r.base_offset, kTimeIndexExt) + ": entry " + std::to_string(i);
    if (i > 0 && (e.timestamp_ns < times[i - 1].timestamp_ns || e.relative_offset < times[i - 1].relative_offset)) {
      r.problems.push_back(where + ": entries do not increase");
    }
    if (r.base_offset + e.relative_offset >= std::max(r.end_offset, r.base_offset + 1)) {
      r.problems.push_back(where + ": offset " + std::to_string(r.base_offset + e.relative_offset) +
                           " is past the segment's last offset");
    }
  }
}

}  // namespace

SegmentReport check_segment(const std::string& path, const CheckOptions& options) {
  SegmentReport r;
  r.path = path;
  const std::string name = fs::path(path).filename().string();
  if (!parse_segment_name(name, kLogExt, r.base_offset)) {
    r.problems.push_back(path + ": not a segment file name (<20-digit base offset>.log)");
    return r;
  }
  r.end_offset = r.base_offset;
  auto io = make_pwrite_io();
  auto fd = io->open_read(path);
  if (!fd) {
    r.problems.push_back(fd.error().message);
    return r;
  }
  auto size = io->size(fd.value());
  const std::uint64_t file_size = size ? size.value() : 0;
  std::vector<std::byte> buf(sizeof(SegmentHeader));
  auto got = io->read(fd.value(), 0, buf);
  if (auto s = got ? check_segment_header(std::span(buf.data(), got.value()), path, r.base_offset) : Status(got.error()); !s) {
    r.problems.push_back(s.error().message);
    io->close(fd.value());
    return r;
  }
  SegmentHeader header;
  std::memcpy(&header, buf.data(), sizeof header);
  const std::uint32_t format = header.version;  // checked: 1 or 2
  const std::size_t header_size = batch_header_size(format);
  std::vector<std::byte> scratch;
  std::map<std::uint64_t, std::uint64_t> batch_at;
  std::uint64_t pos = sizeof(SegmentHeader);
  const auto keep_going = [&](std::uint64_t bytes) {
    if (!options.on_read || options.on_read(bytes)) return true;
    r.stopped = true;
    return false;
  };
  while (pos < file_size) {
    const std::uint64_t want = std::min<std::uint64_t>(header_size, file_size - pos);
    buf.resize(want);
    got = io->read(fd.value(), pos, buf);
    if (!got) {
      r.problems.push_back(got.error().message);
      break;
    }
    buf.resize(got.value());
    if (all_zero(buf)) {
      // Zeroes from here on are the preallocated rest; anything else is damage.
      std::vector<std::byte> chunk(1 << 20);
      std::uint64_t at = pos;
      while (at < file_size) {
        auto n = io->read(fd.value(), at, std::span(chunk.data(), std::min<std::uint64_t>(chunk.size(), file_size - at)));
        if (!n || n.value() == 0 || !all_zero(std::span(chunk.data(), n.value())) || !keep_going(n.value())) break;
        at += n.value();
      }
      if (r.stopped) break;
      if (at >= file_size) {
        r.zero_tail = file_size - pos;
      } else {
        r.problems.push_back(path + ": byte " + std::to_string(pos) + ": a zeroed batch header followed by non-zero bytes");
      }
      break;
    }
    BatchInfo h;
    if (peek_batch(buf, format, h) == Peek::plausible && h.batch_length <= file_size - pos) {
      buf.resize(h.batch_length);
      got = io->read(fd.value(), pos, buf);
      buf.resize(got ? got.value() : 0);
    }
    const DecodedBatch b = decode_batch(buf, format, scratch);
    if (!b.ok()) {
      r.problems.push_back(path + ": byte " + std::to_string(pos) + ": " + to_string(b.error) +
                           (b.detail.empty() ? "" : " (" + b.detail + ")") + "; " + std::to_string(file_size - pos) +
                           " bytes from here on are not readable");
      break;
    }
    if (b.header.base_offset != r.end_offset) {
      r.problems.push_back(path + ": byte " + std::to_string(pos) + ": batch at offset " +
                           std::to_string(b.header.base_offset) + " where " + std::to_string(r.end_offset) + " was expected");
    }
    if (b.header.leader_epoch < r.last_epoch) {
      r.problems.push_back(path + ": byte " + std::to_string(pos) + ": leader epoch " +
                           std::to_string(b.header.leader_epoch) + " below the previous batch's " +
                           std::to_string(r.last_epoch) + " (epochs never go down)");
    }
    if (r.first_epoch < 0) r.first_epoch = b.header.leader_epoch;
    r.last_epoch = std::max(r.last_epoch, b.header.leader_epoch);
    if (options.on_batch) options.on_batch(BatchSummary{pos, b.header});
    if (options.on_record) for_each_record(b, 0, options.on_record);
    batch_at[pos] = b.header.base_offset;
    r.end_offset = b.header.base_offset + b.header.offset_span;
    ++r.batches;
    r.records += b.header.record_count;
    pos += b.header.batch_length;
    if (!keep_going(b.header.batch_length)) break;
  }
  r.data_end = std::min(pos, file_size);
  io->close(fd.value());
  if (options.check_indexes && !r.stopped) check_indexes(*io, r, batch_at);
  return r;
}

Result<std::vector<SegmentReport>> check_path(const std::string& path, const CheckOptions& options) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) return Error{Errc::io_error, path + ": " + ec.message()};
  if (fs::is_regular_file(st)) return std::vector<SegmentReport>{check_segment(path, options)};
  if (!fs::is_directory(st)) return Error{Errc::not_found, path + ": no such segment file or partition directory"};
  auto io = make_pwrite_io();
  auto bases = list_segments(*io, path);
  if (!bases) return bases.error();
  if (bases->empty()) return Error{Errc::not_found, path + ": no segment files (<base offset>.log) here"};
  std::vector<SegmentReport> reports;
  for (const std::uint64_t base : bases.value()) {
    SegmentReport r = check_segment(segment_path(path, base, kLogExt), options);
    if (!reports.empty() && reports.back().problems.empty() && r.base_offset != reports.back().end_offset) {
      r.problems.push_back(r.path + ": starts at offset " + std::to_string(r.base_offset) + ", the segment before ends at " +
                           std::to_string(reports.back().end_offset));
    }
    if (!reports.empty() && r.first_epoch >= 0 && r.first_epoch < reports.back().last_epoch) {
      r.problems.push_back(r.path + ": its first batch has leader epoch " + std::to_string(r.first_epoch) +
                           ", below the segment before's " + std::to_string(reports.back().last_epoch) +
                           " (epochs never go down)");
    }
    reports.push_back(std::move(r));
  }
  return reports;
}

}  // namespace ringbus::log
