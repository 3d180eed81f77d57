// Fuzz target: the replication protocol's decoder (what a leader or a mirror
// reads from a peer, or from anything that connects to the replication
// port). Never reads outside the input; a refusal says why; a frame it
// accepts re-encodes to the same bytes, and its batches are whole and
// contiguous.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "group_offsets.h"
#include "record_batch.h"
#include "replication_protocol.h"

using namespace ringbus::cluster::wire;

namespace {

std::string as_string(const std::vector<std::byte>& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

}  // namespace

std::vector<std::string> fuzz_seeds() {
  ringbus::log::v2::BatchBuilder b;
  std::vector<std::byte> batches;
  for (std::uint64_t base : {100, 102}) {
    b.reset(base, 3);
    b.append(base, 1'700'000'000'000, "k", "v");
    b.append(base + 1, 1'700'000'000'001, "", "value");
    const auto bytes = b.finish();
    batches.insert(batches.end(), bytes.begin(), bytes.end());
  }
  Nonce n{};
  n[3] = std::byte{7};
  ringbus::io::GroupOffsets g;
  g.name = "billing";
  g.committed = {5, 9};
  const std::vector<std::byte> group_file = ringbus::io::encode_group_offsets(g);
  const std::vector<Message> messages{
      Hello{kVersion, "prod", "node-a", n},
      Welcome{kVersion, "node-b", n, Proof{}},
      ProofMsg{},
      Follow{1, "trucks", 0x1234, 2},
      Following{1, 4, 0, 104, 100},
      EpochQuery{1, 3},
      EpochEnd{1, 3, 90},
      Fetch{1, 90},
      Batches{1, 100, 0, batches},
      Ack{1, 104, 102},
      ErrorMsg{0, ErrorCode::auth, "wrong cluster secret"},
      Groups{1, {group_file, group_file}},
  };
  std::vector<std::string> seeds;
  std::vector<std::byte> all;
  for (const auto& m : messages) {
    std::vector<std::byte> one;
    encode(m, one);
    seeds.push_back(as_string(one));
    encode(m, all);
  }
  seeds.push_back(as_string(all));
  return seeds;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> buf(size);
  if (size != 0) std::memcpy(buf.data(), data, size);
  std::span<const std::byte> in(buf);
  // A stream of frames, as a link reads them.
  while (!in.empty()) {
    const Decoded d = decode(in);
    if (d.state == Decoded::State::need_more) {
      if (d.size <= in.size()) std::abort();
      return 0;
    }
    if (d.state == Decoded::State::bad) {
      if (d.error.empty()) std::abort();
      return 0;
    }
    if (d.size > in.size() || d.size < kFrameHeaderSize) std::abort();
    std::vector<std::byte> again;
    encode(d.message, again);
    if (again.size() != d.size || std::memcmp(again.data(), in.data(), d.size) != 0) std::abort();
    if (const auto* b = std::get_if<Batches>(&d.message)) {
      std::uint64_t expect = 0;
      for (std::size_t at = 0; at < b->batches.size();) {
        ringbus::log::v2::BatchHeader h;
        if (!ringbus::log::v2::peek_header(b->batches.subspan(at), h)) std::abort();
        if (at > 0 && static_cast<std::uint64_t>(h.base_offset) != expect) std::abort();
        expect = h.next_offset();
        at += h.size();
        if (at > b->batches.size()) std::abort();
      }
    }
    in = in.subspan(d.size);
  }
  return 0;
}
