// Faults of a cluster of ringbusd processes on loopback, against a real
// etcd: kill -9 of the leader under load, SIGSTOP of the leader past its
// lease then SIGCONT, two failovers in quick succession. A producer on the
// leader's host publishes with acks=all and a consumer there reads; after
// the failover the checker (cluster_harness.h) reads the new leader's log.
// The old leader comes back as a mirror and catches up.
#include "cluster_harness.h"

namespace ringbus::test {
namespace {

class ClusterFailover : public ClusterHarness {};

TEST_F(ClusterFailover, KillNineOfTheLeaderUnderLoadLosesNoAcknowledgedRecord) {
  Producing p;
  Watching w;
  start_under_load(p, &w, 500);
  if (HasFatalFailure()) return;
  node("a").kill9();
  p.stop_and_join();
  w.stop_and_join();
  // A mirror in sync takes over.
  const std::string leader = new_leader("b", {"b", "c"});
  ASSERT_NE(leader, "");
  check(leader, p, 500, &w);
  // It goes on taking acks=all writes, and the old leader comes back as a
  // mirror and rejoins the in-sync set.
  Producing more;
  produce(more, leader, p.published.load() + 1000);
  ASSERT_TRUE(acknowledged(more, 100)) << more.ended;
  start("a");
  ASSERT_TRUE(eventually([&] { return node(leader).isr_of("t").size() == 3; }));
  more.stop_and_join();
  for (auto& [seq, offset] : more.acked) p.acked[seq] = offset;
  check(leader, p, 600);
}

TEST_F(ClusterFailover, ALeaderStoppedPastItsLeaseAcknowledgesNothingAfterItWasFenced) {
  Producing p;
  Watching w;
  start_under_load(p, &w, 300);
  if (HasFatalFailure()) return;
  // Stopped past its lease's TTL: another node is elected meanwhile.
  ::kill(node("a").pid, SIGSTOP);
  const std::string leader = new_leader("b", {"b", "c"});
  std::this_thread::sleep_for(1s);
  ::kill(node("a").pid, SIGCONT);
  ASSERT_NE(leader, "");
  // The old leader, running again, finds itself fenced and steps down; the
  // producer on its host is refused (not_leader), and whatever it was told
  // before holds on the new leader.
  ASSERT_TRUE(eventually([&] {
    auto t = node("a").call("describe_topic", {{"name", "t"}});
    return !t.ok() || (*t)["topic"].value("mirror", false);  // released, then (perhaps) served as a mirror's copy
  }));
  p.stop_and_join();
  w.stop_and_join();
  EXPECT_TRUE(read_file(node("a").log).find("stops leading topic 't'") != std::string::npos);
  EXPECT_NE(p.ended.find(to_string(PublishStatus::not_leader)), std::string::npos)
      << "the producer on the deposed leader's host: " << p.ended;
  {
    // Once the old leader mirrors the new one, its host names the leader.
    ASSERT_TRUE(eventually([&] {
      auto t = node("a").call("describe_topic", {{"name", "t"}});
      return t.ok() && (*t)["topic"].value("mirror", false);
    }));
    auto producer = Producer::open(node("a").instance, "t");
    ASSERT_TRUE(producer) << producer.error().message;
    EXPECT_EQ(producer->publish("", "x").status, PublishStatus::not_leader);
    EXPECT_TRUE(eventually([&] { return producer->leader() == leader; })) << producer->leader();
  }
  check(leader, p, 300, &w);
  // And it follows the new leader as a mirror, back in the in-sync set.
  ASSERT_TRUE(eventually([&] { return node(leader).isr_of("t").size() == 3; }));
}

// Two failovers in quick succession: the leader is killed, and the one that
// takes over is killed as soon as it leads; the third node, in sync, leads
// with everything that was acknowledged.
TEST_F(ClusterFailover, TwoFailoversInQuickSuccessionLoseNoAcknowledgedRecord) {
  Producing p;
  start_under_load(p, nullptr, 300);
  if (HasFatalFailure()) return;
  node("a").kill9();
  p.stop_and_join();
  const std::string second = new_leader("b", {"b", "c"});
  ASSERT_NE(second, "");
  const std::string third = second == "b" ? "c" : "b";
  node(second).kill9();
  ASSERT_EQ(new_leader(third, {third}), third);
  check(third, p, 300);
}

// A dead mirror replaced by hand, as an operator would: `ringbus cluster
// move-replicas` gives its replica to a new node, which copies the log from
// the leader while the producer goes on, joins the in-sync set, and holds
// every acknowledged record.
TEST_F(ClusterFailover, ADeadMirrorIsReplacedByANewNodeThatCopiesTheLog) {
  Producing p;
  start_under_load(p, nullptr, 300);
  if (HasFatalFailure()) return;
  node("c").kill9();
  add_node("d");
  start("d");
  const std::string cli = std::string(RINGBUS_CLI_PATH) + " --instance " + node("a").instance + " cluster move-replicas c d";
  // The dead node's key goes when its lease runs out; until then it is alive.
  std::string out;
  ASSERT_TRUE(eventually([&] {
    out = run_command(cli + " 2>&1");
    return out.find("topic t: replica moved from node c to node d") != std::string::npos;
  })) << out;
  ASSERT_TRUE(eventually([&] { return in_sync("a") == std::set<std::string>{"a", "b", "d"}; }))
      << ::testing::PrintToString(in_sync("a"));
  const std::size_t before = [&] {
    std::lock_guard lock(p.mu);
    return p.acked.size();
  }();
  ASSERT_TRUE(acknowledged(p, before + 100)) << p.ended;
  p.stop_and_join();
  check("d", p, before + 100);
}

}  // namespace
}  // namespace ringbus::test
