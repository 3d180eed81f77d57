// `ringbus log dump|verify`: reads a partition's segment files directly
// (io/README.md has the format) and reports their batches and problems. It
// trusts nothing in the files: every batch goes through the same decoder as
// recovery (decode_batch, which has a fuzz target), every index entry is
// checked against the batches found.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ringbus/record.h"
#include "ringbus/result.h"

namespace ringbus::cli {

struct BatchSummary {
  std::uint64_t position = 0;  // byte in the segment file
  std::uint64_t base_offset = 0;
  std::uint32_t offset_span = 0;
  std::uint32_t record_count = 0;
  std::uint32_t length = 0;
  std::int64_t first_timestamp_ns = 0;
  std::int64_t max_timestamp_ns = 0;
};

struct SegmentReport {
  std::string path;
  std::uint64_t base_offset = 0;  // from the file's name
  std::uint64_t end_offset = 0;   // after the last good batch
  std::uint64_t batches = 0;
  std::uint64_t records = 0;
  std::uint64_t data_end = 0;     // byte after the last good batch
  std::uint64_t zero_tail = 0;    // zero bytes after it (the preallocated rest of an active segment)
  std::vector<std::string> problems;  // each names the file and the byte or entry
};

struct InspectOptions {
  bool check_indexes = true;
  // Called for each good batch, then for each of its records (when set).
  std::function<void(const BatchSummary&)> on_batch;
  std::function<void(const Record&)> on_record;
};

// One segment file (<base>.log); its indexes sit beside it.
SegmentReport inspect_segment(const std::string& path, const InspectOptions& options);

// A segment file, or a partition directory (every segment, in order, with
// the offsets checked for continuity across segments). Error: the path is
// neither, or names no segment.
Result<std::vector<SegmentReport>> inspect_path(const std::string& path, const InspectOptions& options);

}  // namespace ringbus::cli
