// Fuzz target: ringbusd's TOML configuration (apply_toml). Never crashes;
// every refusal has a message naming the source; what it accepts passes
// finish_config or is refused with a message.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "daemon_config.h"

using namespace ringbus::daemon;

std::vector<std::string> fuzz_seeds() {
  return {
      "instance = \"prod\"\ndata_dir = \"/var/lib/ringbus\"\nflusher_threads = 4\nio_backend = \"pwrite\"\n"
      "log_level = \"debug\"\n[metrics]\nenabled = true\nport = 9644\n",
      "memory_only = true\n[metrics]\nenabled = false\n",
      "flusher_threads = 0\n",
      "[metrics]\nport = \"x\"\nbogus = 1\n",
  };
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  DaemonConfig c = default_config();
  auto s = apply_toml(c, std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
  if (!s) {
    if (s.error().message.rfind("fuzz.toml", 0) != 0) std::abort();
    return 0;
  }
  auto f = finish_config(c);
  if (!f && f.error().message.empty()) std::abort();
  return 0;
}
