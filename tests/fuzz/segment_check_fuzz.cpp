// Fuzz target: the segment check (`ringbus log dump|verify`, the broker's
// scrubber) on a segment file of arbitrary bytes
// (and no indexes, or index files of arbitrary bytes too). It must report,
// never crash, hang or read outside what it read from the file; a report
// without problems means every batch decoded.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "log_format.h"
#include "record_batch.h"
#include "segment_check.h"
#include "segment_files.h"

std::vector<std::string> fuzz_seeds() {
  ringbus::log::SegmentHeader h{};
  h.magic = ringbus::log::kSegmentMagic;
  h.version = ringbus::log::kSegmentVersion;
  h.header_size = sizeof h;
  std::string s(reinterpret_cast<const char*>(&h), sizeof h);
  // A version 2 segment: Kafka batches, one compressed.
  const ringbus::log::SegmentHeader h2 = ringbus::log::make_segment_header(0, 1, ringbus::log::kSegmentVersionKafka);
  std::string kafka(reinterpret_cast<const char*>(&h2), sizeof h2);
  for (std::uint64_t o = 0; o < 8; o += 4) {
    ringbus::log::v2::BatchBuilder b;
    b.reset(o, 0, o == 4 ? ringbus::log::v2::Compression::gzip : ringbus::log::v2::Compression::none);
    for (std::uint64_t i = o; i < o + 4; ++i) b.append(i, 1, "k", std::string(30, 'v'));
    const auto bytes = b.finish();
    kafka.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  return {s, s + std::string(64, '\0'), kafka};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string dir = [] {
    const std::string d = "/tmp/ringbus-segment-check-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::string path = dir + "/00000000000000000000.log";
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::uint64_t records = 0;
  ringbus::log::CheckOptions o;
  o.on_record = [&](const ringbus::Record& r) {
    if (r.value.size() > size) std::abort();  // a view larger than the input
    ++records;
  };
  const auto r = ringbus::log::check_segment(path, o);
  if (r.records > records || r.data_end > size) std::abort();
  return 0;
}
