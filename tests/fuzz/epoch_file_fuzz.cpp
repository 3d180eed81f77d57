// Fuzz target: the leader-epoch checkpoint decoder (what a broker reads from
// <partition dir>/leader-epoch-checkpoint at open). Never reads outside the
// input; what it accepts increases and re-encodes to the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "epoch_file.h"

using namespace ringbus::io;

std::vector<std::string> fuzz_seeds() {
  const std::vector<LeaderEpoch> epochs{{0, 0}, {3, 1200}, {4, 1200}, {9, 88'000}};
  std::vector<std::string> seeds;
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, epochs.size()}) {
    const auto bytes = encode_epoch_file(std::span(epochs.data(), n));
    seeds.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  return seeds;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> buf(size);
  if (size != 0) std::memcpy(buf.data(), data, size);
  auto epochs = decode_epoch_file(buf, "fuzz/leader-epoch-checkpoint");
  if (!epochs) {
    if (epochs.error().message.empty()) std::abort();
    return 0;
  }
  for (std::size_t i = 1; i < epochs->size(); ++i) {
    if ((*epochs)[i].epoch <= (*epochs)[i - 1].epoch || (*epochs)[i].start_offset < (*epochs)[i - 1].start_offset) {
      std::abort();
    }
  }
  if (encode_epoch_file(epochs.value()) != buf) std::abort();
  return 0;
}
