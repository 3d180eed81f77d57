// Checks a partition's segment files (io/README.md has the format) and
// reports their batches and problems: `ringbus log dump|verify` and the
// broker's scrubber. It trusts nothing in the files: every batch goes
// through the same decoder as recovery (decode_batch, which has a fuzz
// target), every index entry is checked against the batches found.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "batch_codec.h"
#include "ringbus/record.h"
#include "ringbus/result.h"

namespace ringbus::log {

struct BatchSummary {
  std::uint64_t position = 0;  // byte in the segment file
  BatchInfo info;
};

struct SegmentReport {
  std::string path;
  std::uint64_t base_offset = 0;  // from the file's name
  std::uint64_t end_offset = 0;   // after the last good batch
  std::int32_t first_epoch = -1;  // the leader epochs of its first and last good batches (-1: none)
  std::int32_t last_epoch = -1;
  std::uint64_t batches = 0;
  std::uint64_t records = 0;
  std::uint64_t data_end = 0;     // byte after the last good batch
  std::uint64_t zero_tail = 0;    // zero bytes after it (the preallocated rest of an active segment)
  std::vector<std::string> problems;  // each names the file and the byte or entry
  bool stopped = false;               // on_read said stop before the end
};

struct CheckOptions {
  bool check_indexes = true;
  // Called for each good batch, then for each of its records (when set).
  std::function<void(const BatchSummary&)> on_batch;
  std::function<void(const Record&)> on_record;
  // Called after each read of the segment file with the bytes read (the
  // scrubber's rate limit sleeps in it); false stops the check, which then
  // reports what it saw so far (`stopped`).
  std::function<bool(std::uint64_t bytes)> on_read;
};

// One segment file (<base>.log); its indexes sit beside it.
SegmentReport check_segment(const std::string& path, const CheckOptions& options);

// A segment file, or a partition directory (every segment, in order, with
// the offsets checked for continuity across segments). Error: the path is
// neither, or names no segment.
Result<std::vector<SegmentReport>> check_path(const std::string& path, const CheckOptions& options);

}  // namespace ringbus::log
