// Which topics `ringbus cluster move-replicas` moves, keeps, or refuses,
// from a cluster as etcd would hold it.
#include <gtest/gtest.h>

#include "replica_move.h"

namespace ringbus::cluster {
namespace {

// Nodes alive `live`; topics named by their replicas and in-sync set.
ClusterView cluster(const std::vector<std::string>& live,
                    const std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>>& topics) {
  ClusterView v;
  for (const auto& n : live) v.nodes[n] = NodeRecord{n + ":7100"};
  for (const auto& [name, t] : topics) {
    v.topics[name].record.replicas = t.first;
    if (!t.second.empty()) v.leaders[name] = VersionedLeadership{Leadership{t.second.front(), 1, t.second}, 1};
  }
  return v;
}

std::string refusal(const Result<ReplicaMovePlan>& r) { return r ? std::string("(accepted)") : r.error().message; }

TEST(ReplicaMove, MovesEveryTopicOnTheDeadNodeAndKeepsWhatItCannotMove) {
  const ClusterView v = cluster({"a", "b", "d"}, {{"led-elsewhere", {{"a", "c"}, {"a", "c"}}},
                                                  {"led-by-c", {{"c", "a", "b"}, {"c", "a"}}},
                                                  {"c-lagged", {{"a", "c"}, {"a"}}},
                                                  {"not-on-c", {{"a", "b"}, {"a", "b"}}},
                                                  {"d-has-it", {{"c", "d"}, {"c", "d"}}},
                                                  {"only-c-in-sync", {{"c", "b"}, {"c"}}},
                                                  {"never-led", {{"c", "b"}, {}}}});
  auto plan = plan_replica_move(v, "c", "d", "");
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->moving, (std::vector<std::string>{"c-lagged", "led-by-c", "led-elsewhere", "never-led"}));
  ASSERT_EQ(plan->keeping.size(), 2u);
  EXPECT_EQ(plan->keeping[0].first, "d-has-it");
  EXPECT_NE(plan->keeping[0].second.find("node 'd' already holds a replica"), std::string::npos);
  EXPECT_EQ(plan->keeping[1].first, "only-c-in-sync");
  EXPECT_NE(plan->keeping[1].second.find("may be there alone"), std::string::npos);
}

TEST(ReplicaMove, ATopicAloneWhenAsked) {
  const ClusterView v = cluster({"a", "d"}, {{"x", {{"a", "c"}, {"a", "c"}}}, {"y", {{"a", "c"}, {"a", "c"}}}});
  auto plan = plan_replica_move(v, "c", "d", "y");
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->moving, std::vector<std::string>{"y"});
}

TEST(ReplicaMove, RefusalsNameWhatIsWrong) {
  const ClusterView v = cluster({"a", "b", "d"}, {{"x", {{"a", "c"}, {"a", "c"}}}});
  EXPECT_NE(refusal(plan_replica_move(v, "b", "d", "")).find("node 'b' is alive"), std::string::npos);
  EXPECT_NE(refusal(plan_replica_move(v, "c", "e", "")).find("node 'e' is not a live node"), std::string::npos);
  EXPECT_NE(refusal(plan_replica_move(v, "c", "c", "")).find("cannot replace itself"), std::string::npos);
  EXPECT_NE(refusal(plan_replica_move(v, "c", "d", "nope")).find("topic 'nope' does not exist"), std::string::npos);
  EXPECT_NE(refusal(plan_replica_move(cluster({"a", "d"}, {{"x", {{"a", "b"}, {"a"}}}}), "c", "d", "x"))
                .find("topic 'x' has no replica on node 'c'"),
            std::string::npos);
}

TEST(ReplicaMove, TheNewNodeTakesTheDeadOnesPlace) {
  EXPECT_EQ(replace_replica({"c", "a", "b"}, "c", "d"), (std::vector<std::string>{"d", "a", "b"}));
  EXPECT_EQ(replace_replica({"a", "c"}, "c", "d"), (std::vector<std::string>{"a", "d"}));
}

}  // namespace
}  // namespace ringbus::cluster
