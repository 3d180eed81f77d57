// Fuzz target: the control channel's request decoding (what ringbusd reads
// from any local client): parse_request, then the topic configuration inside.
// Never crashes; every refusal has a message; what it accepts survives an
// encode/decode round trip.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "control_protocol.h"

using namespace ringbus;
using namespace ringbus::control;

std::vector<std::string> fuzz_seeds() {
  TopicConfig c;
  c.name = "orders";
  c.partitions = 3;
  c.log.durability = Durability::every_ack;
  return {
      Json{{"v", 1}, {"op", "create_topic"}, {"topic", topic_config_to_json(c)}}.dump(),
      R"({"v":1,"op":"describe_topic","name":"orders"})",
      R"({"v":2,"op":"ping"})",
      R"({"v":1,"op":"create_topic","topic":{"name":"t","partitions":-1,"ring_bytes":1.5,"x":null}})",
  };
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto req = parse_request(line);
  if (!req) {
    if (req.error().message.empty()) std::abort();
    return 0;
  }
  const Json& j = req.value();
  if (!j.contains("topic")) return 0;
  auto c = topic_config_from_json(j["topic"]);
  if (!c) {
    if (c.error().message.empty()) std::abort();
    return 0;
  }
  auto again = topic_config_from_json(topic_config_to_json(c.value()));
  if (!again || topic_config_to_json(again.value()) != topic_config_to_json(c.value())) std::abort();
  return 0;
}
