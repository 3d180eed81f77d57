// Fuzz target: the etcd client's decoder of range answers (what a node reads
// from etcd, or from whatever answers at the etcd endpoint it was given).
// Never crashes or throws; a refusal says why; keys come out decoded.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "etcd_client.h"

std::vector<std::string> fuzz_seeds() {
  return {
      R"({"header":{"cluster_id":"1","member_id":"2","revision":"7","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"7","version":"3","value":"YmFy","lease":"77"}],"count":"1"})",
      R"({"header":{"revision":"1"}})",
      R"({"kvs":[{"key":"YQ==","value":""},{"key":"Yg==","value":"AAE="}]})",
  };
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto kvs = ringbus::cluster::decode_range_answer(text);
  if (!kvs && kvs.error().message.empty()) std::abort();
  return 0;
}
