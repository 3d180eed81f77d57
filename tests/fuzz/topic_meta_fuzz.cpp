// Fuzz target: the topic metadata decoder (what a restarted broker reads
// from <data-dir>/<topic>/topic.meta). Never reads outside the input; what
// it accepts is a valid configuration that survives an encode/decode round trip.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "topic_meta.h"

using namespace ringbus::io;

std::vector<std::string> fuzz_seeds() {
  TopicMeta m;
  m.config.name = "orders";
  m.config.partitions = 3;
  m.topic_id = 7;
  m.config.log.retention_policy = ringbus::RetentionPolicy::consumed;
  m.config.log.compression = ringbus::Compression::zstd;
  m.min_insync = 2;
  const auto bytes = encode_topic_meta(m);
  const std::string v4(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  // The same topic as versions 3, 2 and 1 wrote it: version 3 without
  // min_insync, version 2 with 0 where version 3 keeps the compression,
  // version 1 without those 8 bytes either (their CRCs then fail, which
  // the fuzzer is free to fix).
  std::string v3 = v4.substr(0, v4.size() - 8);
  v3[8] = 3;
  std::string v2 = v3;
  v2[8] = 2;
  v2[v2.size() - 4] = 0;
  std::string v1 = v3.substr(0, v3.size() - 8);
  v1[8] = 1;
  return {v4, v3, v2, v1};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> buf(size);
  if (size != 0) std::memcpy(buf.data(), data, size);
  auto m = decode_topic_meta(buf, "fuzz/topic.meta");
  if (!m) {
    if (m.error().message.empty()) std::abort();
    return 0;
  }
  if (!ringbus::validate_topic_config(m->config)) std::abort();
  auto again = decode_topic_meta(encode_topic_meta(m.value()), "again");
  if (!again || again->config.name != m->config.name || again->topic_id != m->topic_id ||
      again->config.log.segment_bytes != m->config.log.segment_bytes ||
      again->config.log.retention_policy != m->config.log.retention_policy ||
      again->config.log.compression != m->config.log.compression || again->min_insync != m->min_insync) {
    std::abort();
  }
  return 0;
}
