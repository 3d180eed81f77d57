// Network faults of a cluster of ringbusd processes, each node on a host of
// its own (a network namespace, test_network.h), against a real etcd: the
// leader cut off from its mirrors, the leader cut off from etcd, and a
// mirror on a slow link. A producer on the leader's host publishes with
// acks=all and a consumer there reads; the checker (cluster_harness.h) then
// reads the leader's log, and a mirror's copy where the test says.
#include "cluster_harness.h"
#include "test_network.h"

namespace ringbus::test {
namespace {

class ClusterPartition : public ClusterHarness {
 protected:
  static void SetUpTestSuite() {
    net_ = TestNetwork::make({"a", "b", "c"}, &net_why_);
    if (net_) etcd_ = EtcdProcess::start(&why_, net_->gateway());
  }
  static void TearDownTestSuite() {
    etcd_.reset();
    net_.reset();
  }
  void SetUp() override {
    if (!net_ && ::geteuid() != 0) GTEST_SKIP() << net_why_;
    ASSERT_NE(net_, nullptr) << net_why_;
    ClusterHarness::SetUp();
    if (HasFatalFailure()) return;
    for (auto& [name, n] : nodes_) {
      n.netns = net_->netns(name);
      n.listen = net_->address(name) + ":0";
    }
  }
  // Healed before the nodes stop, so that their connections close. (One
  // closed during a cut goes on resending its FIN for a minute or two after
  // its process is gone, and keeps its namespace, under the test's own
  // names, until then.)
  void TearDown() override {
    if (net_) {
      std::string ignored;
      for (const auto& [name, n] : nodes_) (void)net_->heal(name, &ignored);
    }
    ClusterHarness::TearDown();
  }
  // Mirrors out of touch leave the in-sync set within a test's patience.
  int max_lag_ms() const override { return 2000; }

  void cut(const std::string& host, const std::string& address) {
    std::string why;
    ASSERT_TRUE(net_->cut(host, address, &why)) << why;
  }
  void heal(const std::string& host) {
    std::string why;
    ASSERT_TRUE(net_->heal(host, &why)) << why;
  }
  static std::size_t acked(Producing& p) {
    std::lock_guard lock(p.mu);
    return p.acked.size();
  }

  static inline std::unique_ptr<TestNetwork> net_;
  static inline std::string net_why_;
};

// Kafka's case of a leader that still holds its lease (so it stays leader)
// but reaches no follower: the mirrors leave the in-sync set, and with fewer
// in sync than min_insync acks=all says so instead of acknowledging. Once
// the link heals the mirrors catch up, rejoin, and acknowledgements go on.
TEST_F(ClusterPartition, ALeaderCutOffFromItsMirrorsAcknowledgesNothingUntilTheyAreBack) {
  Producing p;
  Watching w;
  start_under_load(p, &w, 300);
  if (HasFatalFailure()) return;
  cut("a", net_->address("b"));
  cut("a", net_->address("c"));
  ASSERT_TRUE(eventually([&] { return node("a").isr_of("t") == std::vector<std::string>{"a"}; }))
      << "in sync: " << ::testing::PrintToString(node("a").isr_of("t"));
  // Refused once more after the set shrank: from then on nothing is
  // acknowledged while the leader is alone.
  const std::uint64_t refused = p.too_few.load();
  ASSERT_TRUE(eventually([&] { return p.too_few.load() > refused; })) << p.ended;
  const std::size_t while_cut = acked(p);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(acked(p), while_cut) << "acknowledged with only the leader in sync";
  EXPECT_EQ(node("b").leader_of("t"), "a") << "the leader kept its lease, and its place";
  heal("a");
  ASSERT_TRUE(eventually([&] { return node("a").isr_of("t").size() == 3; }));
  ASSERT_TRUE(acknowledged(p, while_cut + 200)) << p.ended;
  p.stop_and_join();
  w.stop_and_join();
  check("a", p, while_cut + 200, &w);
  check("b", p, while_cut + 200);
}

// A leader that cannot reach etcd cannot renew its lease: it fences itself
// before the lease can expire there, while its mirrors still reach it, and a
// mirror in sync takes over with every acknowledged record. Healed, the old
// leader follows the new one.
TEST_F(ClusterPartition, ALeaderCutOffFromEtcdFencesItselfAndAMirrorTakesOver) {
  Producing p;
  Watching w;
  start_under_load(p, &w, 300);
  if (HasFatalFailure()) return;
  cut("a", net_->gateway());
  const std::string leader = new_leader("b", {"b", "c"});
  ASSERT_NE(leader, "");
  EXPECT_TRUE(eventually([&] { return read_file(node("a").log).find("stops leading topic 't'") != std::string::npos; }));
  p.stop_and_join();
  w.stop_and_join();
  check(leader, p, 300, &w);
  heal("a");
  ASSERT_TRUE(eventually([&] { return node(leader).isr_of("t").size() == 3; }))
      << "in sync: " << ::testing::PrintToString(node(leader).isr_of("t"));
}

// A mirror whose link is too slow for the load leaves the in-sync set, and
// acks=all goes on with the leader and the other mirror. Back to full speed,
// it catches up, rejoins, and its copy holds every acknowledged record.
TEST_F(ClusterPartition, AMirrorOnASlowLinkLeavesTheInSyncSetAndAcknowledgementsGoOn) {
  start_cluster();
  if (HasFatalFailure()) return;
  {
    std::string why;
    ASSERT_TRUE(net_->slow("c", "256kbit", &why)) << why;
  }
  Producing p;
  // Groups of 100 records of 1 KiB: c takes 3 s to receive one.
  produce(p, "a", 0, 100, /*pad=*/1000);
  ASSERT_TRUE(eventually([&] { return in_sync("a") == std::set<std::string>{"a", "b"}; }))
      << "in sync: " << ::testing::PrintToString(node("a").isr_of("t"));
  const std::size_t without_c = acked(p);
  ASSERT_TRUE(acknowledged(p, without_c + 500)) << p.ended;
  heal("c");
  ASSERT_TRUE(eventually([&] { return node("a").isr_of("t").size() == 3; }))
      << "in sync: " << ::testing::PrintToString(node("a").isr_of("t"));
  p.stop_and_join();
  check("a", p, without_c + 500);
  check("c", p, without_c + 500);
}

}  // namespace
}  // namespace ringbus::test
