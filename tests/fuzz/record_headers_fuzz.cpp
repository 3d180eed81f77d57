// Fuzz target: the decoder of a record's encoded headers (HeaderView, Kafka's
// encoding: what producers elsewhere send too). Must never read out of
// bounds; whatever it accepts as valid must re-encode to bytes that read back
// the same headers (not always the same bytes: Kafka's null value and
// over-long varints read fine and re-encode canonically).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "record_headers.h"
#include "ringbus/record.h"

std::vector<std::string> fuzz_seeds() {
  const ringbus::Header hs[] = {{"trace-id", "0af7651916cd43dd"}, {"", ""}, {"n", "1"}};
  std::string encoded(ringbus::detail::encoded_headers_size(hs), '\0');
  ringbus::detail::encode_headers(hs, reinterpret_cast<std::byte*>(encoded.data()));
  return {encoded, std::string()};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const ringbus::HeaderView view(input);
  std::vector<ringbus::Header> parsed;
  for (const ringbus::Header& h : view) parsed.push_back(h);
  if (view.valid()) {
    std::string again(ringbus::detail::encoded_headers_size(parsed), '\0');
    ringbus::detail::encode_headers(parsed, reinterpret_cast<std::byte*>(again.data()));
    const ringbus::HeaderView back(again);
    if (!back.valid()) std::abort();
    std::size_t i = 0;
    for (const ringbus::Header& h : back) {
      if (i >= parsed.size() || h.name != parsed[i].name || h.value != parsed[i].value) std::abort();
      ++i;
    }
    if (i != parsed.size()) std::abort();
  }
  std::string_view v;
  (void)view.find("trace-id", v);
  return 0;
}
