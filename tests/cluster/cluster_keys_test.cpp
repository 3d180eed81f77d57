// The node and topic records a cluster keeps in etcd: round trips, and each
// refusal named.
#include <gtest/gtest.h>

#include "cluster_keys.h"

namespace ringbus::cluster {
namespace {

TopicRecord orders() {
  TopicRecord t;
  t.config.name = "orders";
  t.config.partitions = 4;
  t.config.log.durability = Durability::every_ack;
  t.replicas = {"a", "b", "c"};
  t.min_insync = 2;
  t.unclean_election = true;
  return t;
}

TEST(ClusterKeys, KeysLiveUnderTheClustersPrefix) {
  const std::string p = cluster_prefix("prod");
  EXPECT_EQ(p, "/ringbus/prod");
  EXPECT_EQ(node_key(p, "a"), "/ringbus/prod/nodes/a");
  EXPECT_EQ(topic_key(p, "orders"), "/ringbus/prod/topics/orders");
  EXPECT_EQ(key_name(topic_key(p, "orders")), "orders");
}

TEST(ClusterKeys, RecordsRoundTrip) {
  const TopicRecord t = orders();
  auto back = decode_topic_record(encode_topic_record(t), "k");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(encode_topic_record(back.value()), encode_topic_record(t));
  EXPECT_EQ(back->config.partitions, 4u);
  EXPECT_EQ(back->config.log.durability, Durability::every_ack);
  EXPECT_EQ(back->replicas, t.replicas);
  EXPECT_EQ(back->min_insync, 2u);
  EXPECT_TRUE(back->unclean_election);
  auto n = decode_node_record(encode_node_record({"10.0.0.7:7100"}), "k");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->listen, "10.0.0.7:7100");
}

TEST(ClusterKeys, RefusesWhatIsNotATopicRecordSayingWhy) {
  struct Case {
    std::string json;
    const char* says;
  };
  const Case cases[] = {
      {"{", "not JSON"},
      {"[]", "not a JSON object"},
      {R"({"replicas":["a"],"min_insync":1})", "'config' is missing"},
      {R"({"config":{"name":"t","partitions":0},"replicas":["a"],"min_insync":1})", "partitions"},
      {R"({"config":{"name":"t"},"min_insync":1})", "'replicas' is missing"},
      {R"({"config":{"name":"t"},"replicas":[],"min_insync":1})", "has 0 replicas"},
      {R"({"config":{"name":"t"},"replicas":["a","b","c","d","e","f"],"min_insync":1})", "has 6 replicas"},
      {R"({"config":{"name":"t"},"replicas":["a","a"],"min_insync":1})", "names replica 'a' twice"},
      {R"({"config":{"name":"t"},"replicas":[""],"min_insync":1})", "names a node of 0 bytes"},
      {R"({"config":{"name":"t"},"replicas":[7],"min_insync":1})", "something other than a node name"},
      {R"({"config":{"name":"t"},"replicas":["a"],"min_insync":2})", "min_insync is 2"},
      {R"({"config":{"name":"t"},"replicas":["a"],"min_insync":0})", "min_insync is 0"},
      {R"({"config":{"name":"t"},"replicas":["a"]})", "'min_insync' is missing"},
      {R"({"config":{"name":"t"},"replicas":["a"],"min_insync":1,"unclean_election":1})", "'unclean_election' is not"},
      {R"({"config":{"name":"t"},"replicas":["a"],"min_insync":1,"extra":1})", "unknown field 'extra'"},
  };
  for (const Case& c : cases) {
    auto r = decode_topic_record(c.json, "/ringbus/x/topics/t");
    ASSERT_FALSE(r) << c.json;
    EXPECT_EQ(r.error().code, Errc::corrupt) << c.json;
    EXPECT_NE(r.error().message.find("topic record at /ringbus/x/topics/t"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << c.json << " -> " << r.error().message;
  }
  for (const char* bad : {"{", R"({"listen":""})", R"({"listen":7})", "{}"}) {
    auto n = decode_node_record(bad, "/ringbus/x/nodes/a");
    ASSERT_FALSE(n) << bad;
    EXPECT_NE(n.error().message.find("node record at /ringbus/x/nodes/a"), std::string::npos) << n.error().message;
  }
}

}  // namespace
}  // namespace ringbus::cluster
