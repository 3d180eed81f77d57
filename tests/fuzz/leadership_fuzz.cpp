// Fuzz target: the topic leadership decoder (a JSON value read from etcd,
// which anyone with access to etcd can write). A refusal says why; what it
// accepts has its leader in its set, no repeats, and re-encodes to a value
// that decodes the same.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "topic_leadership.h"

using namespace ringbus::cluster;

std::vector<std::string> fuzz_seeds() {
  return {encode_leadership({"node-a", 3, {"node-a", "node-b"}}), encode_leadership({"", 0, {}}),
          R"({"leader":"x","epoch":2147483647,"isr":["x","y","z"]})"};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto s = decode_leadership(text, "fuzz");
  if (!s) {
    if (s.error().message.empty()) std::abort();
    return 0;
  }
  std::set<std::string> seen(s->isr.begin(), s->isr.end());
  if (seen.size() != s->isr.size()) std::abort();
  if (!s->leader.empty() && !seen.count(s->leader)) std::abort();
  if (s->epoch < 0) std::abort();
  auto again = decode_leadership(encode_leadership(s.value()), "fuzz");
  if (!again || !(again.value() == s.value())) std::abort();
  return 0;
}
