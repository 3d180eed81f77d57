// Fuzz target: recovery of an arbitrary last segment file (with whatever
// index the input's tail says), then a read of everything recovery kept.
// The segment header's version picks the batch format: seeds of both (RBB1,
// Kafka v2).
// Recovery must never crash, must leave a log that reads back without
// errors, and a second open must find nothing more to cut.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "batch_codec.h"
#include "file_io.h"
#include "log_reader.h"
#include "partition_log.h"
#include "record_batch.h"
#include "segment_files.h"

using namespace ringbus;
using namespace ringbus::io;

namespace {
const std::string kDir = "/f/0";
}

std::vector<std::string> fuzz_seeds() {
  // The same records as a segment of each version: RBB1 (1) and Kafka v2 (2,
  // one batch compressed).
  std::vector<std::string> seeds;
  for (const std::uint32_t version : {log::kSegmentVersionRbb1, log::kSegmentVersionKafka}) {
    const log::SegmentHeader h = log::make_segment_header(0, 1, version);
    std::string seg(reinterpret_cast<const char*>(&h), sizeof h);
    for (std::uint64_t o = 0; o < 12; o += 3) {
      std::span<const std::byte> bytes;
      log::BatchBuilder rbb1;
      log::v2::BatchBuilder kafka;
      if (version == log::kSegmentVersionRbb1) {
        rbb1.reset(o);
        for (std::uint64_t i = o; i < o + 3; ++i) rbb1.append_record(i, static_cast<std::int64_t>(i), "k", std::string(40, 'v'));
        bytes = rbb1.finish();
      } else {
        kafka.reset(o, 0, o == 6 ? log::v2::Compression::snappy : log::v2::Compression::none);
        for (std::uint64_t i = o; i < o + 3; ++i) kafka.append(i, static_cast<std::int64_t>(i), "k", std::string(40, 'v'));
        bytes = kafka.finish();
      }
      seg.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    seeds.push_back(std::move(seg));
  }
  return seeds;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  log::MemoryIo io;
  const std::string path = log::segment_path(kDir, 0, log::kLogExt);
  auto fd = io.open(path, true);
  if (size != 0) (void)io.write_now(fd.value(), 0, std::span(reinterpret_cast<const std::byte*>(data), size));
  io.close(fd.value());
  LogSettings s;
  s.segment_bytes = 1 << 20;
  s.index_interval_bytes = 256;
  RecoveryReport report;
  auto log = PartitionLog::open(io, kDir, s, 0, &report);
  if (!log) {
    if (log.error().message.empty()) std::abort();  // every refusal says why
    return 0;
  }
  const std::uint64_t end = log.value()->end_offset();
  log.value().reset();
  // What recovery kept reads back, dense and in order, up to its end.
  log::LogReader r(io, kDir);
  if (r.seek(0) != log::ReadStatus::batch) std::abort();
  log::DecodedBatch b;
  log::ReadStatus st;
  std::uint64_t next = 0;
  while ((st = r.next(UINT64_MAX, b)) == log::ReadStatus::batch) {
    if (b.header.base_offset != next) std::abort();
    next = b.header.base_offset + b.header.offset_span;
  }
  if (st != log::ReadStatus::end || next != end) std::abort();
  // Recovery is idempotent: a second open cuts nothing.
  RecoveryReport again;
  auto log2 = PartitionLog::open(io, kDir, s, 0, &again);
  if (!log2 || again.cut_bytes != 0 || log2.value()->end_offset() != end) std::abort();
  return 0;
}
