// The control channel's decoding: one test per refusal, and the round trip.
#include <gtest/gtest.h>

#include "control_protocol.h"

namespace ringbus::control {
namespace {

TEST(ControlProtocol, RequestNeedsJsonObjectVersionAndOp) {
  EXPECT_EQ(parse_request("hello").error().message, "the request is not valid JSON");
  EXPECT_EQ(parse_request("[1]").error().message, "the request is not a JSON object");
  EXPECT_NE(parse_request(R"({"op":"ping"})").error().message.find("no protocol version"), std::string::npos);
  EXPECT_NE(parse_request(R"({"v":1})").error().message.find("no operation"), std::string::npos);
  EXPECT_TRUE(parse_request(R"({"v":1,"op":"ping"})"));
}

TEST(ControlProtocol, OtherVersionIsAVersionMismatch) {
  auto r = parse_request(R"({"v":7,"op":"ping"})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::version_mismatch);
  EXPECT_NE(r.error().message.find("version 7"), std::string::npos);
}

TEST(ControlProtocol, TopicConfigRoundTrips) {
  TopicConfig c;
  c.name = "orders";
  c.partitions = 12;
  c.ring_bytes = 1 << 22;
  c.log.durability = Durability::every_ack;
  c.log.retention_age = std::chrono::hours(1);
  c.log.retention_policy = RetentionPolicy::consumed;
  c.log.compression = Compression::snappy;
  auto back = topic_config_from_json(topic_config_to_json(c));
  ASSERT_TRUE(back);
  EXPECT_EQ(topic_config_to_json(back.value()), topic_config_to_json(c));
}

TEST(ControlProtocol, AbsentFieldsKeepDefaults) {
  auto c = topic_config_from_json(Json{{"name", "t"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(topic_config_to_json(c.value()), topic_config_to_json(TopicConfig{.name = "t"}));
}

TEST(ControlProtocol, UnknownFieldIsRefused) {
  auto c = topic_config_from_json(Json{{"name", "t"}, {"partition", 3}});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("unknown field 'partition'"), std::string::npos);
}

TEST(ControlProtocol, WrongTypesAreRefusedNamingTheField) {
  EXPECT_NE(topic_config_from_json(Json{{"name", "t"}, {"partitions", -1}}).error().message.find("'partitions'"),
            std::string::npos);
  EXPECT_NE(topic_config_from_json(Json{{"name", "t"}, {"ring_bytes", 1.5}}).error().message.find("'ring_bytes'"),
            std::string::npos);
  EXPECT_NE(topic_config_from_json(Json{{"name", 3}}).error().message.find("'name'"), std::string::npos);
  EXPECT_NE(topic_config_from_json(Json{{"name", "t"}, {"durability", "always"}}).error().message.find("'durability'"),
            std::string::npos);
  EXPECT_NE(topic_config_from_json(Json{{"name", "t"}, {"partitions", 1ULL << 40}}).error().message.find("at most"),
            std::string::npos);
  EXPECT_FALSE(topic_config_from_json(Json{{"partitions", 1}}));  // no name
  EXPECT_FALSE(topic_config_from_json(Json::array()));
}

TEST(ControlProtocol, AlterChangesOnlyTheLogSettingsGiven) {
  LogConfig current;
  current.retention_bytes = 5;
  auto l = log_changes_from_json(current, Json{{"retention_policy", "consumed"}, {"durability", "page_cache"}});
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->retention_policy, RetentionPolicy::consumed);
  EXPECT_EQ(l->durability, Durability::page_cache);
  EXPECT_EQ(l->retention_bytes, 5u);
  EXPECT_EQ(log_config_to_json(l.value())["retention_policy"], "consumed");
  EXPECT_FALSE(log_config_to_json(l.value()).contains("partitions"));
  for (const char* fixed : {"partitions", "ring_bytes", "max_record_size", "name"}) {
    auto r = log_changes_from_json(current, Json{{fixed, 1}});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("cannot be altered"), std::string::npos) << r.error().message;
  }
  EXPECT_NE(log_changes_from_json(current, Json{{"retention_policy", "never"}}).error().message.find("'retention_policy'"),
            std::string::npos);
  auto z = log_changes_from_json(current, Json{{"compression", "zstd"}});
  ASSERT_TRUE(z) << z.error().message;
  EXPECT_EQ(z->compression, Compression::zstd);
  EXPECT_EQ(log_config_to_json(z.value())["compression"], "zstd");
  EXPECT_NE(log_changes_from_json(current, Json{{"compression", "brotli"}}).error().message.find("'compression' must be one of"),
            std::string::npos);
  EXPECT_FALSE(log_changes_from_json(current, Json::object()));
  EXPECT_FALSE(log_changes_from_json(current, Json{{"retention", 1}}));
}

TEST(ControlProtocol, ErrorResponsesCarryTheirCode) {
  const Json r = error_response(Error{Errc::not_found, "unknown topic 'x'"});
  auto s = response_status(r);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::not_found);
  EXPECT_EQ(s.error().message, "unknown topic 'x'");
  EXPECT_TRUE(response_status(Json{{"ok", true}}));
  EXPECT_EQ(response_status(Json{{"nope", 1}}).error().code, Errc::corrupt);
}

}  // namespace
}  // namespace ringbus::control
