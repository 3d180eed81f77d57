// Cluster nodes in one process, each with a broker, a data directory and a
// shared-memory instance of its own, against a real etcd: a topic is led by
// its first replica and copied by the others; when its leader goes, a mirror
// takes over with the next epoch and goes on from the same offsets; the old
// leader comes back as a mirror and rejoins the in-sync set; a node that
// cannot reach etcd stops leading before its lease can have expired.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <mutex>

#include "../bus/test_support.h"
#include "cluster_node.h"
#include "etcd_process.h"
#include "group_offsets.h"
#include "small_files.h"
#include "topic_meta.h"
#include "ringbus/broker.h"
#include "ringbus/consumer.h"
#include "ringbus/group.h"
#include "ringbus/producer.h"

namespace ringbus::cluster {
namespace {

using namespace std::chrono_literals;
using test::eventually;

std::string value(std::uint64_t i) { return "record-" + std::to_string(i); }

class ClusterNodeTest : public test::EtcdSuite {
 protected:
  struct Node {
    std::string name;
    std::string instance;
    std::filesystem::path data;
    std::optional<Broker> broker;
    std::unique_ptr<ClusterNode> node;
    std::mutex mu;
    std::vector<std::string> messages;
    bool said(const std::string& part) {
      std::lock_guard lock(mu);
      for (const auto& m : messages)
        if (m.find(part) != std::string::npos) return true;
      return false;
    }
  };

  ~ClusterNodeTest() override {
    for (auto& [name, n] : nodes_) {
      if (HasFailure()) {
        std::lock_guard lock(n->mu);
        for (const auto& m : n->messages) std::cerr << "node " << name << ": " << m << "\n";
      }
      n->node.reset();
      n->broker.reset();
      std::error_code ec;
      std::filesystem::remove_all(n->data, ec);
    }
  }

  // Starts (or restarts, on the same data directory) node `name`.
  Node& start(const std::string& name) {
    auto& slot = nodes_[name];
    if (!slot) {
      slot = std::make_unique<Node>();
      slot->name = name;
      slot->instance = test::unique_instance("cn" + name);
      slot->data = std::filesystem::temp_directory_path() / ("ringbus-data-" + slot->instance);
    }
    Node& n = *slot;
    auto logger = [&n](const char* level, const std::string& m) {
      std::lock_guard lock(n.mu);
      n.messages.push_back(std::string(level) + ": " + m);
    };
    BrokerOptions bo{n.instance, n.data.string()};
    bo.logger = logger;
    bo.scrub_bytes_per_second = 0;
    auto b = Broker::start(bo);
    EXPECT_TRUE(b) << b.error().message;
    n.broker.emplace(std::move(b.value()));
    NodeOptions o;
    o.cluster = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    o.node = name;
    o.listen = "127.0.0.1:0";
    o.secret = "s3cret";
    o.etcd = {{etcd_->endpoint()}, 1000ms};
    o.lease.ttl = 2s;
    o.reconcile_every = 50ms;
    o.max_lag = 2000ms;
    o.log = logger;
    auto c = ClusterNode::start(o, *n.broker);
    EXPECT_TRUE(c) << c.error().message;
    if (c) n.node = std::move(c.value());
    return n;
  }
  // A clean stop: the node revokes its lease, then its broker closes.
  void stop(const std::string& name) {
    Node& n = *nodes_.at(name);
    n.node.reset();
    n.broker.reset();
  }
  static TopicRecord topic(std::vector<std::string> replicas) {
    TopicRecord t;
    t.config.name = "t";
    t.config.ring_bytes = 1 << 20;
    t.config.max_record_size = 4096;
    t.config.log.durability = Durability::page_cache;
    t.config.log.segment_bytes = 1 << 20;
    t.replicas = std::move(replicas);
    t.min_insync = 1;
    return t;
  }
  static std::optional<TopicRole> role(Node& n) {
    for (auto& r : n.node->roles())
      if (r.topic == "t") return r;
    return std::nullopt;
  }
  static void publish(Node& n, std::uint64_t from, std::uint64_t to) {
    auto p = Producer::open(n.instance, "t");
    ASSERT_TRUE(p) << p.error().message;
    PublishResult r;
    for (std::uint64_t i = from; i < to; ++i) {
      r = p->publish("", value(i));
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r.offset, i);
    }
    ASSERT_EQ(p->wait_durable(r, 10s), PublishStatus::ok);
  }
  // Reads the topic on `n` from offset 0: exactly `count` records, in order.
  static void expect_records(Node& n, std::uint64_t count) {
    ConsumerOptions o;
    o.start = StartPosition::earliest();
    auto c = Consumer::open(n.instance, "t", o);
    ASSERT_TRUE(c) << c.error().message;
    std::uint64_t next = 0;
    read_until(c.value(), next, count);
  }
  // Polls `c` until it has read up to offset `end` (or 20 s pass): the
  // records from `next` on, in order.
  static void read_until(Consumer& c, std::uint64_t& next, std::uint64_t end) {
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (next < end && std::chrono::steady_clock::now() < until) {
      const PollResult r = c.poll([&](const Record& rec) {
        ASSERT_EQ(rec.offset, next);
        ASSERT_EQ(rec.value, value(next));
        ++next;
      });
      ASSERT_EQ(r.status, PollStatus::ok) << to_string(r.status);
      if (r.records == 0) (void)c.wait(10ms);
    }
    EXPECT_EQ(next, end);
  }

  std::map<std::string, std::unique_ptr<Node>> nodes_;
};

TEST_F(ClusterNodeTest, ALeaderGoesAMirrorTakesOverWhereItWasAndTheOldLeaderComesBackAsAMirror) {
  Node& a = start("a");
  Node& b = start("b");
  ASSERT_TRUE(a.node && b.node);
  auto id = a.node->create_topic(topic({"a", "b"}));
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(b.node->create_topic(topic({"a", "b"})).error().code, Errc::already_exists);

  // The first replica leads, with the cluster's topic id; the other mirrors.
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading && role(b) && !role(b)->leading; }));
  EXPECT_EQ(a.broker->describe_topic("t")->topic_id, id.value());
  EXPECT_TRUE(b.broker->describe_topic("t")->mirror) << "a mirror's broker serves the topic's copy, to be read there";
  EXPECT_EQ(role(a)->epoch, 0);
  publish(a, 0, 1000);
  // b is in sync (as every replica of a new topic is) and the high
  // watermark counts it: b has the records.
  EXPECT_EQ(role(a)->isr, (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(eventually([&] { return role(a)->partitions[0].high_watermark == 1000; }))
      << role(a)->partitions[0].high_watermark;
  EXPECT_EQ(role(a)->isr, (std::vector<std::string>{"a", "b"}));

  // a stops (its lease revoked): b is elected in the next epoch and serves
  // the topic from its copy, offsets going on.
  stop("a");
  ASSERT_TRUE(eventually([&] { return role(b) && role(b)->leading; }));
  EXPECT_EQ(role(b)->epoch, 1);
  EXPECT_EQ(role(b)->isr, std::vector<std::string>{"b"});
  auto served = b.broker->describe_topic("t");
  ASSERT_TRUE(served) << served.error().message;
  EXPECT_EQ(served->topic_id, id.value());
  EXPECT_EQ(served->partition_info[0].end_offset, 1000u);
  expect_records(b, 1000);
  publish(b, 1000, 1500);

  // a comes back: its broker recovered the topic it led, and hands it over
  // to be a mirror of b; it catches up and rejoins the in-sync set.
  Node& again = start("a");
  ASSERT_TRUE(again.node);
  ASSERT_TRUE(eventually([&] { return role(again) && !role(again)->leading && role(again)->leader == "b"; }));
  EXPECT_TRUE(again.broker->describe_topic("t")->mirror);
  {
    auto p = Producer::open(again.instance, "t");
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->publish("", "x").status, PublishStatus::not_leader);
    EXPECT_EQ(p->leader(), "b") << "a producer on a mirror's host learns where to go";
  }
  ASSERT_TRUE(eventually([&] { return role(b)->isr == std::vector<std::string>{"b", "a"}; })) << role(b)->isr.size();
  ASSERT_TRUE(eventually([&] { return role(b)->partitions[0].high_watermark == 1500; }));

  // And b goes: a leads again (epoch 2) with all 1500 records.
  stop("b");
  ASSERT_TRUE(eventually([&] { return role(again)->leading; }));
  EXPECT_EQ(role(again)->epoch, 2);
  expect_records(again, 1500);
}

// acks=all: a record is acknowledged once every in-sync replica holds it;
// with fewer in sync than min_insync the producer is told so, not served
// less; a mirror that comes back rejoins and acks=all works again.
TEST_F(ClusterNodeTest, AcksAllWaitsForTheInSyncReplicasAndSaysWhenTooFewAreInSync) {
  Node& a = start("a");
  start("b");
  TopicRecord t = topic({"a", "b"});
  t.min_insync = 2;
  ASSERT_TRUE(a.node->create_topic(t));
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading; }));
  auto p = Producer::open(a.instance, "t");
  ASSERT_TRUE(p) << p.error().message;
  PublishResult r;
  for (std::uint64_t i = 0; i < 100; ++i) ASSERT_TRUE((r = p->publish("", value(i))).ok());
  ASSERT_EQ(p->wait_replicated(r, 10s), PublishStatus::ok);
  EXPECT_TRUE(eventually([&] { return role(a)->partitions[0].high_watermark >= 100; }));  // as the node reports it

  // b goes: it leaves the in-sync set at once (its lease is revoked), and
  // a record can no longer be acknowledged as all.
  stop("b");
  ASSERT_TRUE(eventually([&] { return role(a)->isr == std::vector<std::string>{"a"}; }));
  ASSERT_TRUE((r = p->publish("", value(100))).ok());
  EXPECT_EQ(p->wait_replicated(r, 10s), PublishStatus::not_enough_replicas);
  EXPECT_EQ(p->wait_durable(r, 10s), PublishStatus::ok) << "it is durable here (acks=local)";

  // b comes back, catches up, rejoins: the record is acknowledged as all.
  start("b");
  ASSERT_TRUE(eventually([&] { return role(a)->isr == std::vector<std::string>{"a", "b"}; }));
  EXPECT_EQ(p->wait_replicated(r, 10s), PublishStatus::ok);
  ASSERT_TRUE((r = p->publish("", value(101))).ok());
  EXPECT_EQ(p->wait_replicated(r, 10s), PublishStatus::ok);
}

// A leader alone in the in-sync set (its mirror gone, min_insync 1) still
// moves the high watermark with its own log, with no mirror acknowledging
// to trigger it: acks=all is served, and consumers (replicated records
// only, the default) see each record once it is durable on the leader.
TEST_F(ClusterNodeTest, ALeaderAloneInSyncAcknowledgesAndItsConsumersSeeTheRecords) {
  Node& a = start("a");
  start("b");
  ASSERT_TRUE(a.node->create_topic(topic({"a", "b"})));
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading; }));
  stop("b");
  ASSERT_TRUE(eventually([&] { return role(a)->isr == std::vector<std::string>{"a"}; }));
  // The dead mirror, caught up as of its last acknowledgement, is not let
  // back in by the reconcile passes since.
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(role(a)->isr, std::vector<std::string>{"a"});
  EXPECT_FALSE(a.said("[a] -> [a,b]")) << "a dead node rejoined the in-sync set";
  auto p = Producer::open(a.instance, "t");
  ASSERT_TRUE(p) << p.error().message;
  PublishResult r;
  for (std::uint64_t i = 0; i < 50; ++i) ASSERT_TRUE((r = p->publish("", value(i))).ok());
  EXPECT_EQ(p->wait_replicated(r, 10s), PublishStatus::ok);
  expect_records(a, 50);
}

// Consumer groups survive a failover: their files travel with the log to
// the mirrors (exactly the leader's set: a deleted group goes there too),
// and a group resumes on the new leader where it committed.
TEST_F(ClusterNodeTest, AGroupResumesOnTheNewLeaderWhereItCommitted) {
  Node& a = start("a");
  Node& b = start("b");
  ASSERT_TRUE(a.node->create_topic(topic({"a", "b"})));
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading && role(b) && !role(b)->leading; }));
  publish(a, 0, 100);
  GroupOptions go;
  go.settings.start = StartPosition::Kind::earliest;
  go.commit_interval = 0ms;
  auto read = [&](Node& n, const std::string& group, std::size_t count) {
    std::vector<std::uint64_t> offsets;
    auto g = GroupConsumer::join(n.instance, "t", group, go);
    EXPECT_TRUE(g) << g.error().message;
    if (!g) return offsets;
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (offsets.size() < count && std::chrono::steady_clock::now() < until) {
      const PollResult r = g->poll([&](const Record& rec) { offsets.push_back(rec.offset); }, count - offsets.size());
      EXPECT_EQ(r.status, PollStatus::ok) << to_string(r.status);
      if (r.records == 0) (void)g->wait(10ms);
    }
    // Polls hand over whole batches: the group goes on after the first `count`.
    if (offsets.size() > count) {
      EXPECT_TRUE(g->rewind(0, offsets[count]));
      offsets.resize(count);
    }
    EXPECT_TRUE(g->commit(/*durable=*/true));
    return offsets;
  };
  ASSERT_EQ(read(a, "billing", 60).size(), 60u);
  ASSERT_EQ(read(a, "doomed", 10).size(), 10u);
  ASSERT_TRUE(a.broker->delete_group("t", "doomed"));
  const auto copy = b.data / ".mirror" / "t" / "groups";
  auto committed_in_copy = [&] {
    auto bytes = io::read_small_file((copy / "billing.offsets").string());
    auto g = bytes ? io::decode_group_offsets(bytes.value(), "copy") : Result<io::GroupOffsets>(bytes.error());
    return g ? g->committed.at(0) : 0;
  };
  ASSERT_TRUE(eventually([&] { return committed_in_copy() == 60 && !std::filesystem::exists(copy / "doomed.offsets"); }))
      << "the mirror's copy has the leader's groups: billing at " << committed_in_copy();

  stop("a");
  ASSERT_TRUE(eventually([&] { return role(b) && role(b)->leading; }));
  auto info = b.broker->describe_group("t", "billing");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->partitions[0].committed, 60u);
  EXPECT_FALSE(b.broker->describe_group("t", "doomed"));
  const auto rest = read(b, "billing", 40);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front(), 60u) << "the group goes on where it committed on the old leader";
  EXPECT_EQ(rest.back(), 99u);
}

// A consumer on a mirror's host reads the topic there, from the mirror's
// copy (replicated records only, as on the leader), without loading the
// leader; producers there are told not_leader and groups are refused; when
// the mirror takes the lead, its readers see topic_deleted, and read on
// from the topic it now serves.
TEST_F(ClusterNodeTest, AConsumerOnAMirrorsHostReadsTheCopy) {
  Node& a = start("a");
  Node& b = start("b");
  ASSERT_TRUE(a.node->create_topic(topic({"a", "b"})));
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading && role(b) && !role(b)->leading; }));
  ConsumerOptions o;
  o.start = StartPosition::earliest();
  Result<Consumer> c = Error{Errc::not_found, ""};
  ASSERT_TRUE(eventually([&] { return (c = Consumer::open(b.instance, "t", o)).ok(); })) << c.error().message;
  publish(a, 0, 500);
  std::uint64_t next = 0;
  read_until(c.value(), next, 500);  // the copy on b holds what a published
  ASSERT_FALSE(HasFailure());
  PollStatus last = PollStatus::ok;

  auto p = Producer::open(b.instance, "t");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->publish("", "x").status, PublishStatus::not_leader);
  auto g = GroupConsumer::join(b.instance, "t", "billing");
  ASSERT_FALSE(g);
  EXPECT_NE(g.error().message.find("mirror's copy"), std::string::npos) << g.error().message;

  stop("a");
  ASSERT_TRUE(eventually([&] { return role(b) && role(b)->leading; }));
  ASSERT_TRUE(eventually([&] {
    last = c->poll([&](const Record&) { ++next; }).status;
    return last != PollStatus::ok;
  }));
  EXPECT_EQ(last, PollStatus::topic_deleted);
  EXPECT_EQ(next, 500u);
  expect_records(b, 500);
}

// A topic deleted in the cluster goes from every replica, log included;
// one created again under the same name is a new topic (a new id, offsets
// from 0), not the old one's copy.
TEST_F(ClusterNodeTest, ADeletedTopicGoesFromEveryReplicaAndItsNameCanBeUsedAgain) {
  Node& a = start("a");
  Node& b = start("b");
  auto first = a.node->create_topic(topic({"a", "b"}));
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading && role(b); }));
  publish(a, 0, 100);
  ASSERT_TRUE(eventually([&] { return role(a)->partitions[0].high_watermark == 100; }));
  ASSERT_TRUE(b.node->delete_topic("t"));
  EXPECT_EQ(b.node->delete_topic("t").error().code, Errc::not_found);
  ASSERT_TRUE(eventually([&] { return !role(a) && !role(b); }));
  EXPECT_FALSE(a.broker->describe_topic("t"));
  EXPECT_FALSE(b.broker->describe_topic("t")) << "the mirror's copy is no longer served to its host";
  EXPECT_FALSE(std::filesystem::exists(a.data / "t"));
  EXPECT_FALSE(std::filesystem::exists(b.data / ".mirror" / "t"));

  auto second = a.node->create_topic(topic({"a", "b"}));
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_NE(second.value(), first.value());
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading && role(b) && role(b)->leader == "a"; }));
  EXPECT_EQ(a.broker->describe_topic("t")->topic_id, second.value());
  publish(a, 0, 10);
  ASSERT_TRUE(eventually([&] { return role(a)->partitions[0].high_watermark == 10; }));
}

// A replicated topic's log settings are altered in etcd and applied by
// every replica: the leader's flushers and topic.meta, the mirror's logs
// and its copy's topic.meta (which a promotion adopts), and a node that was
// down takes them when it leads again. What is fixed at creation is
// refused.
TEST_F(ClusterNodeTest, AlteredLogSettingsReachEveryReplicaAndANodeThatWasDown) {
  Node& a = start("a");
  Node& b = start("b");
  ASSERT_TRUE(a.node->create_topic(topic({"a", "b"})));
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading && role(a)->isr.size() == 2 && role(b); }));
  publish(a, 0, 50);

  auto altered = b.node->alter_topic("t", nlohmann::json{{"retention_bytes", 3 << 20}, {"durability", "every_ack"}});
  ASSERT_TRUE(altered) << altered.error().message;
  EXPECT_EQ(altered->config.log.retention_bytes, 3u << 20);
  EXPECT_EQ(altered->config.log.durability, Durability::every_ack);
  const LogConfig want = altered->config.log;
  ASSERT_TRUE(eventually([&] { return role(a)->log == want && role(b) && role(b)->log == want; }));
  EXPECT_EQ(a.broker->describe_topic("t")->log, want);
  auto copy_meta = io::read_topic_meta((b.data / ".mirror" / "t").string());
  ASSERT_TRUE(copy_meta) << copy_meta.error().message;
  EXPECT_EQ(copy_meta->config.log, want);
  // Mirroring goes on under the new settings.
  publish(a, 50, 80);
  ASSERT_TRUE(eventually([&] { return role(a)->partitions[0].high_watermark == 80; }));

  // The leader down: b leads with the settings its copy holds; altered
  // again meanwhile, a takes the newest when it is back and leads again.
  stop("a");
  ASSERT_TRUE(eventually([&] { return role(b) && role(b)->leading; }));
  EXPECT_EQ(b.broker->describe_topic("t")->log, want);
  auto again = b.node->alter_topic("t", nlohmann::json{{"retention_bytes", 5 << 20}});
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_TRUE(eventually([&] { return b.broker->describe_topic("t")->log == again->config.log; }));
  Node& a2 = start("a");
  ASSERT_TRUE(eventually([&] { return role(a2) && role(a2)->log == again->config.log; }));
  ASSERT_TRUE(eventually([&] { return role(b)->isr.size() == 2; })) << "a back in sync, so that it may lead";
  stop("b");
  ASSERT_TRUE(eventually([&] { return role(a2) && role(a2)->leading; }));
  EXPECT_EQ(a2.broker->describe_topic("t")->log, again->config.log) << "the settings altered while a was down";

  EXPECT_EQ(a2.node->alter_topic("t", nlohmann::json{{"partitions", 4}}).error().code, Errc::invalid_argument);
  EXPECT_EQ(a2.node->alter_topic("nope", nlohmann::json{{"retention_bytes", 1}}).error().code, Errc::not_found);
  EXPECT_EQ(a2.node->alter_topic("t", nlohmann::json{{"durability", "sometimes"}}).error().code, Errc::invalid_argument);
}

// A dead mirror replaced: its replica moves to a live node, which copies
// the log from the leader and joins the in-sync set; the dead node, back,
// deletes its copy.
TEST_F(ClusterNodeTest, ADeadNodesReplicasMoveToALiveNodeThatCopiesTheLog) {
  Node& a = start("a");
  start("b");
  Node& c = start("c");
  ASSERT_TRUE(a.node->create_topic(topic({"a", "b"})));
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading && role(a)->isr.size() == 2; }));
  publish(a, 0, 300);
  ASSERT_TRUE(eventually([&] { return role(a)->partitions[0].high_watermark == 300; }));

  auto alive = a.node->move_replicas("b", "c", "");
  ASSERT_FALSE(alive);
  EXPECT_NE(alive.error().message.find("node 'b' is alive"), std::string::npos) << alive.error().message;
  stop("b");
  auto unknown = a.node->move_replicas("b", "x", "");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("node 'x' is not a live node"), std::string::npos) << unknown.error().message;
  auto moved = a.node->move_replicas("b", "c", "");
  ASSERT_TRUE(moved) << moved.error().message;
  EXPECT_EQ(moved->moving, std::vector<std::string>{"t"});
  EXPECT_TRUE(moved->keeping.empty());
  auto v = a.node->view();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->topics.at("t").record.replicas, (std::vector<std::string>{"a", "c"}));

  // c copies the log from the leader and joins the in-sync set.
  ASSERT_TRUE(eventually([&] { return role(a)->isr == std::vector<std::string>{"a", "c"}; }))
      << ::testing::PrintToString(role(a)->isr);
  publish(a, 300, 310);
  ASSERT_TRUE(eventually([&] { return role(a)->partitions[0].high_watermark == 310; }));
  ConsumerOptions o;
  o.start = StartPosition::earliest();
  auto copy = Consumer::open(c.instance, "t", o);
  ASSERT_TRUE(copy) << copy.error().message;
  std::uint64_t next = 0;
  read_until(copy.value(), next, 310);

  // b, back, is no replica of t any more: its copy goes.
  Node& b2 = start("b");
  ASSERT_TRUE(eventually([&] { return !std::filesystem::exists(b2.data / ".mirror" / "t"); }));
  EXPECT_FALSE(role(b2));
}

// A dead leader replaced: a mirror in sync leads, the dead node's replica
// moves, and the old leader, back, no longer serves the topic to its host.
TEST_F(ClusterNodeTest, ALeaderWhoseReplicaMovedWhileItWasDownDeletesItsLogWhenItIsBack) {
  Node& a = start("a");
  Node& b = start("b");
  start("c");
  ASSERT_TRUE(a.node->create_topic(topic({"a", "b"})));
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading && role(a)->isr.size() == 2; }));
  publish(a, 0, 100);
  ASSERT_TRUE(eventually([&] { return role(a)->partitions[0].high_watermark == 100; }));
  stop("a");
  ASSERT_TRUE(eventually([&] { return role(b) && role(b)->leading; }));
  auto moved = b.node->move_replicas("a", "c", "t");
  ASSERT_TRUE(moved) << moved.error().message;
  EXPECT_EQ(moved->moving, std::vector<std::string>{"t"});
  Node& a2 = start("a");
  // (Stopped cleanly, it handed its log over: a copy in .mirror/ now.)
  ASSERT_TRUE(eventually([&] {
    return a2.said("moved off it, while it was down") && !std::filesystem::exists(a2.data / ".mirror" / "t");
  }));
  EXPECT_FALSE(a2.broker->describe_topic("t"));
  EXPECT_FALSE(std::filesystem::exists(a2.data / "t"));
}

TEST_F(ClusterNodeTest, ANodeThatCannotReachEtcdStopsLeadingBeforeItsLeaseCanExpire) {
  Node& a = start("a");
  ASSERT_TRUE(a.node);
  ASSERT_TRUE(a.node->create_topic(topic({"a"})));
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading; }));
  publish(a, 0, 10);
  auto p = Producer::open(a.instance, "t");
  ASSERT_TRUE(p);
  etcd_->pause();
  // Within the lease's TTL (2 s), less its margin: the topic is released.
  const bool fenced = eventually([&] { return !a.broker->describe_topic("t"); }, 4s);
  etcd_->resume();
  ASSERT_TRUE(fenced);
  EXPECT_TRUE(a.said("fenced")) << "the log says why";
  EXPECT_EQ(p->publish("", value(10)).status, PublishStatus::not_leader);
  EXPECT_EQ(p->leader(), "") << "no other node leads it";
  // etcd answers again: the node leads again, with every record.
  ASSERT_TRUE(eventually([&] { return role(a) && role(a)->leading && a.broker->describe_topic("t").ok(); }));
  expect_records(a, 10);
}

}  // namespace
}  // namespace ringbus::cluster
