// Leadership in a real etcd (cluster/src/topic_leadership.*): the first
// election, a live leader kept, a dead leader's in-sync mirror taking over
// with the next epoch (the dead dropped from the set), an out-of-sync
// replica refused unless the topic allows unclean elections, two candidates
// that read the same state with one winner, and a swap on a stale revision refused.
#include <gtest/gtest.h>

#include <set>

#include "etcd_process.h"
#include "topic_leadership.h"

namespace ringbus::cluster {
namespace {

using namespace std::chrono_literals;

class ElectionTest : public test::EtcdSuite {
 protected:
  void SetUp() override {
    EtcdSuite::SetUp();
    if (HasFatalFailure()) return;
    client_ = std::move(EtcdClient::create({{etcd_->endpoint()}, 2000ms}).value());
    std::string under = prefix();
    under.pop_back();  // no trailing '/': keys are <prefix>/leaders/...
    states_ = std::make_unique<Leaderships>(*client_, "/ringbus" + under);
  }
  // Makes `s` the topic's leadership, whatever was there.
  VersionedLeadership seed(const Leadership& s) {
    auto cur = states_->read("t").value();
    EXPECT_TRUE(states_->swap("t", cur, s).value());
    return cur;
  }
  std::unique_ptr<EtcdClient> client_;
  std::unique_ptr<Leaderships> states_;
  std::set<std::string> alive_{"a", "b", "c"};
  bool alive(const std::string& n) const { return alive_.count(n) > 0; }
};

TEST_F(ElectionTest, TheFirstElectionStartsAtEpochZero) {
  auto cur = states_->read("t").value();
  EXPECT_EQ(cur.revision, 0);
  auto won = states_->elect("t", cur, "a", {"a", "b", "c"}, false, [&](const std::string& n) { return alive(n); });
  ASSERT_TRUE(won) << won.error().message;
  EXPECT_TRUE(won.value());
  EXPECT_EQ(cur.state.leader, "a");
  EXPECT_EQ(cur.state.epoch, 0);
  EXPECT_EQ(cur.state.isr, (std::vector<std::string>{"a", "b", "c"})) << "a new topic's replicas are all in sync";
  EXPECT_EQ(states_->read("t").value().revision, cur.revision);
}

TEST_F(ElectionTest, ALiveLeaderIsNotReplaced) {
  auto cur = seed({"a", 3, {"a", "b"}});
  EXPECT_FALSE(states_->elect("t", cur, "b", {"a", "b"}, false, [&](const std::string& n) { return alive(n); }).value());
  EXPECT_EQ(states_->read("t").value().state.leader, "a");
}

TEST_F(ElectionTest, ADeadLeadersInSyncMirrorTakesOverWithTheNextEpoch) {
  auto cur = seed({"a", 3, {"a", "b", "c"}});
  alive_ = {"b"};  // a and c are gone
  ASSERT_TRUE(states_->elect("t", cur, "b", {"a", "b", "c"}, false, [&](const std::string& n) { return alive(n); }).value());
  const Leadership now = states_->read("t").value().state;
  EXPECT_EQ(now, (Leadership{"b", 4, {"b"}}));
}

TEST_F(ElectionTest, AnOutOfSyncReplicaTakesOverOnlyWhenUncleanIsAllowed) {
  auto cur = seed({"a", 3, {"a", "b"}});
  alive_ = {"b", "c"};
  auto is_alive = [&](const std::string& n) { return alive(n); };
  EXPECT_FALSE(states_->elect("t", cur, "c", {"a", "b", "c"}, false, is_alive).value());
  ASSERT_TRUE(states_->elect("t", cur, "c", {"a", "b", "c"}, true, is_alive).value());
  EXPECT_EQ(states_->read("t").value().state, (Leadership{"c", 4, {"c", "b"}}));
}

TEST_F(ElectionTest, OfTwoCandidatesThatReadTheSameStateOneWins) {
  const auto seeded = seed({"a", 3, {"a", "b", "c"}});
  alive_ = {"b", "c"};
  auto is_alive = [&](const std::string& n) { return alive(n); };
  VersionedLeadership seen_by_b = seeded, seen_by_c = seeded;
  ASSERT_TRUE(states_->elect("t", seen_by_b, "b", {"a", "b", "c"}, false, is_alive).value());
  ASSERT_FALSE(states_->elect("t", seen_by_c, "c", {"a", "b", "c"}, false, is_alive).value());
  // c lost the swap and now sees b's win.
  EXPECT_EQ(seen_by_c.state.leader, "b");
  EXPECT_EQ(seen_by_c.state.epoch, 4);
  EXPECT_EQ(seen_by_c.revision, seen_by_b.revision);
}

TEST_F(ElectionTest, ASwapOnAStaleRevisionIsRefused) {
  auto cur = seed({"a", 1, {"a", "b"}});
  VersionedLeadership stale = cur;
  ASSERT_TRUE(states_->swap("t", cur, {"a", 1, {"a"}}).value());
  EXPECT_FALSE(states_->swap("t", stale, {"a", 1, {"a", "b", "c"}}).value());
  EXPECT_EQ(stale.state.isr, std::vector<std::string>{"a"});
}

TEST_F(ElectionTest, AStateThatIsNotJsonIsNamed) {
  ASSERT_TRUE(client_->put(states_->key("t"), "garbage"));
  auto r = states_->read("t");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(states_->key("t") + ": not JSON"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace ringbus::cluster
