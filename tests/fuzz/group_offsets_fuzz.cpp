// Fuzz target: the consumer-group offsets decoder (what a restarted broker
// reads from <data-dir>/<topic>/groups/<group>.offsets). Never reads outside
// the input; what it accepts survives an encode/decode round trip.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "group_offsets.h"

using namespace ringbus::io;

std::vector<std::string> fuzz_seeds() {
  GroupOffsets g;
  g.name = "workers";
  g.settings.mode = ringbus::GroupMode::queue;
  g.settings.dead_letter_topic = "dead";
  g.committed = {0, 10, 20};
  const auto bytes = encode_group_offsets(g);
  return {std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> buf(size);
  if (size != 0) std::memcpy(buf.data(), data, size);
  auto g = decode_group_offsets(buf, "fuzz.offsets");
  if (!g) {
    if (g.error().message.empty()) std::abort();
    return 0;
  }
  auto again = decode_group_offsets(encode_group_offsets(g.value()), "again");
  if (!again || again->name != g->name || again->committed != g->committed ||
      again->settings.mode != g->settings.mode || again->settings.lease != g->settings.lease) {
    std::abort();
  }
  return 0;
}
