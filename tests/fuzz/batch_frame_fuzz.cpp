// Fuzz target: a batch frame as readers find it in the ring (a RecordHeader
// then a Kafka record batch v2; partition_format.h, FrameType::batch):
// batch_frame_ok, then deliver_batch_frame. Whatever the bytes, nothing is
// read outside the frame, and a batch that is handed out gives exactly one
// record per offset of its claim, in order, from the claim's first offset.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "record_batch.h"
#include "record_frame.h"

using namespace ringbus;
namespace v2 = ringbus::log::v2;

std::vector<std::string> fuzz_seeds() {
  std::vector<std::string> seeds;
  for (const v2::Compression c : {v2::Compression::none, v2::Compression::zstd}) {
    v2::BatchBuilder b;
    b.reset(0, -1, c);
    const Header h[] = {{"trace", "abc"}};
    b.append(0, 1'700'000'000'000, "key", "value", h);
    b.append(1, 1'700'000'000'007, "", std::string(70, 'x'));
    const auto batch = b.finish();
    detail::RecordHeader fh{};
    fh.frame_length = static_cast<std::uint32_t>(sizeof fh + batch.size());
    fh.type = detail::FrameType::batch;
    fh.claim_records = 2;
    fh.offset = 1000;
    fh.timestamp_ns = 1'700'000'000'000'000'000;
    std::string s(reinterpret_cast<const char*>(&fh), sizeof fh);
    s.append(reinterpret_cast<const char*>(batch.data()), batch.size());
    seeds.push_back(std::move(s));
  }
  return seeds;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < sizeof(detail::RecordHeader)) return 0;
  std::vector<std::byte> frame(size);  // exact size, so ASan sees any overread
  std::memcpy(frame.data(), data, size);
  detail::RecordHeader h;
  std::memcpy(&h, frame.data(), sizeof h);
  if (!detail::batch_frame_ok(h, size)) return 0;  // the ring's bound: the frame fits what was read
  std::vector<std::byte> scratch;
  std::size_t delivered = 0;
  std::uint64_t next = h.offset;
  const bool ok = detail::deliver_batch_frame(h, frame.data(), 0, scratch, delivered, [](std::uint64_t) { return true; },
                                              [&](const Record& r) {
                                                if (r.offset != next++) std::abort();
                                                if (!r.headers.valid()) std::abort();
                                              });
  if (ok != (delivered == h.claim_records)) std::abort();
  if (!ok && delivered != 0) std::abort();  // nothing of a bad batch is handed out
  return 0;
}
