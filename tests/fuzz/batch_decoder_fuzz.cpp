// Fuzz target: the batch decoder, which recovery runs over whatever a crash
// left on disk. Must never read outside the input, and whatever it accepts
// must be self-consistent (every record inside the input and the batch).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "batch_codec.h"

using namespace ringbus;

std::vector<std::string> fuzz_seeds() {
  log::BatchBuilder b;
  b.reset(42);
  b.append_record(42, 1, "key", "value");
  b.skip_offsets(2);
  b.append_record(45, 2, "", std::string(70, 'x'));
  const auto bytes = b.finish();
  return {std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> buf(size);  // exact size, so ASan sees any overread
  if (size != 0) std::memcpy(buf.data(), data, size);
  const log::DecodedBatch d = log::decode_batch(buf);
  if (!d.ok()) {
    if (d.detail.empty()) std::abort();  // every refusal says why
    return 0;
  }
  if (d.header.batch_length > size) std::abort();
  std::uint32_t n = 0;
  log::for_each_record(d, 0, [&](const ringbus::Record& r) {
    const auto* lo = reinterpret_cast<const char*>(buf.data());
    if (r.value.data() < lo || r.value.data() + r.value.size() > lo + size) std::abort();
    if (r.offset < d.header.base_offset || r.offset >= d.header.base_offset + d.header.offset_span) std::abort();
    ++n;
  });
  if (n != d.header.record_count) std::abort();
  return 0;
}
