// Fuzz target: the decoders of a cluster's node and topic records (JSON
// values read from etcd, which anyone with access to it can write). A
// refusal says why; what the topic decoder accepts is a valid record and
// re-encodes to a value that decodes the same.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cluster_keys.h"

using namespace ringbus::cluster;

std::vector<std::string> fuzz_seeds() {
  TopicRecord t;
  t.config.name = "orders";
  t.config.partitions = 3;
  t.replicas = {"a", "b", "c"};
  t.min_insync = 2;
  return {encode_topic_record(t), encode_node_record({"10.0.0.1:7001"}),
          R"({"config":{"name":"x"},"replicas":["a"],"min_insync":1,"unclean_election":true})"};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto n = decode_node_record(text, "fuzz");
  if (!n && n.error().message.empty()) std::abort();
  auto t = decode_topic_record(text, "fuzz");
  if (!t) {
    if (t.error().message.empty()) std::abort();
    return 0;
  }
  if (!validate_topic_record(t.value())) std::abort();
  const std::string again = encode_topic_record(t.value());
  auto back = decode_topic_record(again, "fuzz");
  if (!back || encode_topic_record(back.value()) != again) std::abort();
  return 0;
}
