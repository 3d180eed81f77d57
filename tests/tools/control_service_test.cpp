// The control channel's operations by table (control_service.h) against an
// embedded broker: each operation answers, each change is reported once,
// and a bad request is refused naming what is wrong.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../bus/test_support.h"
#include "control_service.h"

namespace ringbus::control {
namespace {

struct ServiceTest : ::testing::Test {
  std::string instance = test::unique_instance("svc");
  Broker broker = Broker::start({.instance = instance}).value();
  std::vector<std::string> changes;
  ControlService service{broker, [this](const std::string& what) { changes.push_back(what); }};

  Json ask(Json req) { return service.handle(req); }
};

TEST_F(ServiceTest, TopicOperationsGoToTheBroker) {
  TopicConfig c;
  c.name = "orders";
  c.partitions = 2;
  Json r = ask({{"op", "create_topic"}, {"topic", topic_config_to_json(c)}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["topic"]["partitions"], 2);
  EXPECT_EQ(ask({{"op", "list_topics"}})["topics"], Json::array({"orders"}));
  EXPECT_EQ(ask({{"op", "describe_topic"}, {"name", "orders"}})["topic"]["name"], "orders");
  // No data directory: nothing to alter, and the answer says why.
  r = ask({{"op", "alter_topic"}, {"name", "orders"}, {"log", Json::object()}});
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(r["error"].get<std::string>().find("has no commit log"), std::string::npos) << r.dump();
  EXPECT_EQ(ask({{"op", "delete_topic"}, {"name", "orders"}})["ok"], true);
  EXPECT_EQ(ask({{"op", "list_topics"}})["topics"], Json::array());
  EXPECT_EQ(changes, (std::vector<std::string>{"created topic 'orders' (2 partitions)", "deleted topic 'orders'"}));
}

TEST_F(ServiceTest, GroupOperationsGoToTheBroker) {
  ASSERT_TRUE(broker.create_topic({.name = "t"}));
  Json r = ask({{"op", "reset_group"}, {"topic", "t"}, {"group", "g"}, {"to", "earliest"}, {"mode", "queue"}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["group"]["mode"], "queue");
  EXPECT_EQ(ask({{"op", "list_groups"}, {"topic", "t"}})["groups"], Json::array({"g"}));
  EXPECT_EQ(ask({{"op", "describe_group"}, {"topic", "t"}, {"group", "g"}})["group"]["name"], "g");
  EXPECT_EQ(ask({{"op", "delete_group"}, {"topic", "t"}, {"group", "g"}})["ok"], true);
  EXPECT_EQ(ask({{"op", "list_groups"}, {"topic", "t"}})["groups"], Json::array());
  EXPECT_EQ(changes, (std::vector<std::string>{"reset group 'g' of topic 't'", "deleted group 'g' of topic 't'"}));
}

TEST_F(ServiceTest, UnknownOperationIsNamed) {
  const Json r = ask({{"op", "drop_everything"}});
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"], "unknown operation 'drop_everything'");
}

TEST_F(ServiceTest, MissingFieldIsNamed) {
  EXPECT_EQ(ask({{"op", "describe_topic"}})["error"], "the request has no topic \"name\"");
  EXPECT_EQ(ask({{"op", "describe_group"}, {"topic", "t"}})["error"], "the request has no \"group\" string");
  EXPECT_EQ(ask({{"op", "reset_group"}, {"topic", "t"}, {"group", "g"}})["error"], "the request has no \"to\"");
  EXPECT_TRUE(changes.empty());
}

TEST_F(ServiceTest, AddedOperationsJoinTheTable) {
  service.add("ping", [](const Json&) { return ok_response({{"pong", 1}}); });
  EXPECT_EQ(ask({{"op", "ping"}})["pong"], 1);
  const std::vector<std::string> ops = service.operations();
  for (const char* op : {"create_topic", "delete_topic", "list_topics", "describe_topic", "alter_topic", "list_groups",
                         "describe_group", "reset_group", "delete_group", "ping"}) {
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op;
  }
}

}  // namespace
}  // namespace ringbus::control
