// Consumer groups in one process: publish-subscribe assignment and commits,
// queue claims, acknowledgements, leases, dead letters, reset, bad input.
#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <set>
#include <thread>

#include "group_file.h"
#include "ringbus/group.h"
#include "test_support.h"

namespace ringbus::test {
namespace {

using namespace std::chrono_literals;

struct GroupTest : BrokerFixture {
  void publish(const std::string& t, int n, int first = 0) {
    Producer p = producer(t);
    for (int i = first; i < first + n; ++i) {
      const std::string v = std::to_string(i);
      ASSERT_TRUE(p.publish(v, v).ok());
    }
  }
  GroupConsumer join(const std::string& t, const std::string& g, GroupOptions o = {}) {
    auto m = GroupConsumer::join(instance, t, g, o);
    if (!m) {
      ADD_FAILURE() << m.error().message;
      std::abort();
    }
    return std::move(m.value());
  }
  // Polls until `want` records came or `limit` passed; returns the values.
  static std::vector<std::string> drain(GroupConsumer& m, std::size_t want, std::chrono::milliseconds limit = 5s) {
    std::vector<std::string> got;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
      (void)m.poll([&](const Record& r) { got.emplace_back(r.value); });
      if (got.size() < want) (void)m.wait(10ms);
    }
    return got;
  }
};

GroupOptions pubsub_from_earliest() {
  GroupOptions o;
  o.settings.start = StartPosition::Kind::earliest;
  return o;
}

GroupOptions queue_from_earliest() {
  GroupOptions o;
  o.settings.mode = GroupMode::queue;
  o.settings.start = StartPosition::Kind::earliest;
  return o;
}

TEST_F(GroupTest, PubsubSingleMemberReadsEverything) {
  create(topic("t", 3));
  publish("t", 300);
  GroupConsumer m = join("t", "g", pubsub_from_earliest());
  EXPECT_EQ(drain(m, 300).size(), 300u);
  EXPECT_EQ(m.assignment().size(), 3u);
}

TEST_F(GroupTest, PubsubEveryGroupSeesEveryRecord) {
  create(topic("t", 2));
  GroupConsumer a = join("t", "a", pubsub_from_earliest());
  GroupConsumer b = join("t", "b", pubsub_from_earliest());
  publish("t", 100);
  EXPECT_EQ(drain(a, 100).size(), 100u);
  EXPECT_EQ(drain(b, 100).size(), 100u);
}

TEST_F(GroupTest, PubsubMembersSplitThePartitions) {
  create(topic("t", 4));
  GroupConsumer a = join("t", "g", pubsub_from_earliest());
  GroupConsumer b = join("t", "g", pubsub_from_earliest());
  // Rebalance: a gives up what b is to own, b takes it.
  for (int i = 0; i < 10; ++i) {
    (void)a.poll([](const Record&) {});
    (void)b.poll([](const Record&) {});
  }
  EXPECT_EQ(a.assignment().size(), 2u);
  EXPECT_EQ(b.assignment().size(), 2u);
  publish("t", 400);
  std::multiset<std::string> all;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (all.size() < 400 && std::chrono::steady_clock::now() < deadline) {
    (void)a.poll([&](const Record& r) { all.emplace(r.value); });
    (void)b.poll([&](const Record& r) { all.emplace(r.value); });
  }
  EXPECT_EQ(all.size(), 400u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 400u) << "a record went to both members";
}

TEST_F(GroupTest, PubsubPartitionMovesOnFromTheCommittedPosition) {
  create(topic("t", 1));
  publish("t", 50);
  {
    GroupConsumer a = join("t", "g", pubsub_from_earliest());
    EXPECT_EQ(drain(a, 50).size(), 50u);
    ASSERT_TRUE(a.commit().ok());
  }  // leaves
  publish("t", 20, 50);
  GroupConsumer b = join("t", "g", pubsub_from_earliest());
  const auto got = drain(b, 20);
  ASSERT_EQ(got.size(), 20u);
  EXPECT_EQ(got.front(), "50");
  auto info = describe_group(instance, "t", "g");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->members.size(), 1u);
}

TEST_F(GroupTest, QueueSingleMemberGetsEveryRecordOnce) {
  create(topic("t", 2));
  publish("t", 1000);
  GroupConsumer m = join("t", "q", queue_from_earliest());
  const auto got = drain(m, 1000);
  EXPECT_EQ(got.size(), 1000u);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 1000u);
  (void)m.poll([](const Record&) {});
  auto info = describe_group(instance, "t", "q");
  ASSERT_TRUE(info.ok());
  for (const auto& p : info->partitions) {
    EXPECT_EQ(p.committed, p.end_offset) << "partition " << p.partition;
    EXPECT_EQ(p.lag, 0u);
  }
}

TEST_F(GroupTest, QueueMembersShareTheRecords) {
  create(topic("t", 1, 1 << 20));
  GroupConsumer a = join("t", "q", queue_from_earliest());
  GroupConsumer b = join("t", "q", queue_from_earliest());
  publish("t", 2000);
  std::multiset<std::string> all;
  std::size_t from_a = 0;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (all.size() < 2000 && std::chrono::steady_clock::now() < deadline) {
    (void)a.poll([&](const Record& r) { all.emplace(r.value); ++from_a; }, 100);
    (void)b.poll([&](const Record& r) { all.emplace(r.value); }, 100);
  }
  EXPECT_EQ(all.size(), 2000u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 2000u) << "a record was delivered twice";
  EXPECT_GT(from_a, 0u);
  EXPECT_LT(from_a, 2000u);
}

TEST_F(GroupTest, QueueUnacknowledgedRecordsComeBackAfterTheLease) {
  create(topic("t", 1));
  publish("t", 10);
  GroupOptions o = queue_from_earliest();
  o.auto_ack = false;
  o.settings.lease = 100ms;
  GroupConsumer a = join("t", "q", o);
  std::vector<Record> seen;
  std::vector<std::uint64_t> offsets;
  (void)a.poll([&](const Record& r) { offsets.push_back(r.offset); });
  ASSERT_EQ(offsets.size(), 10u);
  // Acknowledge the even ones only.
  for (std::uint64_t off : offsets) {
    if (off % 2 == 0) {
      EXPECT_TRUE(a.ack(0, off).ok());
    }
  }
  EXPECT_EQ(a.ack(0, 0).error().code, Errc::not_found) << "acknowledged twice";
  std::this_thread::sleep_for(200ms);
  GroupConsumer b = join("t", "q", o);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> again;
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (again.size() < 5 && std::chrono::steady_clock::now() < deadline) {
    (void)b.poll([&](const Record& r) { again.emplace_back(r.offset, r.deliveries); });
    (void)b.wait(20ms);
  }
  ASSERT_EQ(again.size(), 5u);
  for (const auto& [off, d] : again) {
    EXPECT_EQ(off % 2, 1u);
    EXPECT_EQ(d, 2u);
    EXPECT_TRUE(b.ack(0, off).ok());
  }
  (void)b.poll([](const Record&) {});
  auto info = describe_group(instance, "t", "q");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->partitions[0].committed, 10u);
  EXPECT_EQ(info->partitions[0].redelivered, 1u);
}

TEST_F(GroupTest, QueueLeavingHandsBackAtOnce) {
  create(topic("t", 1));
  publish("t", 5);
  GroupOptions o = queue_from_earliest();
  o.auto_ack = false;
  std::size_t first = 0;
  {
    GroupConsumer a = join("t", "q", o);
    (void)a.poll([&](const Record&) { ++first; });
  }
  EXPECT_EQ(first, 5u);
  GroupConsumer b = join("t", "q", o);
  const auto got = drain(b, 5, 2s);  // the lease is 30 s: only the hand-back makes this quick
  EXPECT_EQ(got.size(), 5u);
}

TEST_F(GroupTest, QueueDeadLettersAfterMaxDeliveries) {
  create(topic("t", 1));
  create(topic("dlq", 1));
  publish("t", 3);
  GroupOptions o = queue_from_earliest();
  o.auto_ack = false;
  o.settings.lease = 50ms;
  o.settings.max_deliveries = 2;
  o.settings.dead_letter_topic = "dlq";
  GroupConsumer a = join("t", "q", o);
  int deliveries = 0;
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < deadline) {
    (void)a.poll([&](const Record&) { ++deliveries; });  // never acknowledges
    auto info = describe_group(instance, "t", "q");
    if (info && info->partitions[0].committed == 3) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(deliveries, 6) << "each record twice, then the dead-letter topic";
  Consumer d = consumer("dlq", from_earliest());
  std::vector<std::string> dead;
  for (int i = 0; i < 100 && dead.size() < 3; ++i) {
    (void)d.poll([&](const Record& r) {
      std::string_view origin;
      EXPECT_TRUE(r.headers.find("ringbus.dead-letter.origin", origin));
      dead.emplace_back(r.value);
    });
    (void)d.wait(10ms);
  }
  EXPECT_EQ(dead, (std::vector<std::string>{"0", "1", "2"}));
}

TEST_F(GroupTest, JoiningInTheOtherModeIsRefused) {
  create(topic("t", 1));
  GroupConsumer a = join("t", "g", pubsub_from_earliest());
  auto b = GroupConsumer::join(instance, "t", "g", queue_from_earliest());
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("pubsub group"), std::string::npos) << b.error().message;
}

TEST_F(GroupTest, BadNamesAndUnknownTopicsAreRefused) {
  create(topic("t", 1));
  auto bad = GroupConsumer::join(instance, "t", "no/slash");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::invalid_argument);
  auto missing = GroupConsumer::join(instance, "nope", "g");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  auto info = describe_group(instance, "t", "never");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, Errc::not_found);
  GroupOptions o = queue_from_earliest();
  o.settings.dead_letter_topic = "t";
  auto self = GroupConsumer::join(instance, "t", "q", o);
  ASSERT_FALSE(self.ok());
  EXPECT_NE(self.error().message.find("dead-letter"), std::string::npos);
}

TEST_F(GroupTest, ResetIsRefusedWhileMembersLive) {
  create(topic("t", 1));
  GroupConsumer a = join("t", "g", pubsub_from_earliest());
  const Status s = reset_group(instance, "t", "g", {GroupPosition::Kind::earliest});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::busy);
}

TEST_F(GroupTest, ResetMovesAGroup) {
  create(topic("t", 1));
  publish("t", 100);
  {
    GroupConsumer a = join("t", "q", queue_from_earliest());
    EXPECT_EQ(drain(a, 100).size(), 100u);
  }
  ASSERT_TRUE(reset_group(instance, "t", "q", {GroupPosition::Kind::offset, 90}, queue_from_earliest().settings).ok());
  GroupConsumer b = join("t", "q", queue_from_earliest());
  const auto got = drain(b, 10);
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got.front(), "90");
  b.leave();
  ASSERT_TRUE(reset_group(instance, "t", "q", {GroupPosition::Kind::latest}).ok());
  auto info = describe_group(instance, "t", "q");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->partitions[0].lag, 0u);
}

TEST_F(GroupTest, ResetToATime) {
  create(topic("t", 1));
  publish("t", 10);
  std::this_thread::sleep_for(5ms);
  const std::int64_t t = detail::realtime_ns();
  publish("t", 10, 10);
  ASSERT_TRUE(reset_group(instance, "t", "g", {GroupPosition::Kind::time, 0, t}, pubsub_from_earliest().settings).ok());
  GroupConsumer m = join("t", "g", pubsub_from_earliest());
  const auto got = drain(m, 10);
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got.front(), "10");
}

TEST_F(GroupTest, AGroupFileOfAnotherVersionIsRefused) {
  create(topic("t", 1));
  { GroupConsumer a = join("t", "g"); }
  const std::string path = detail::group_path(instance, "t", "g");
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const std::uint32_t v = 99;
  ASSERT_EQ(::pwrite(fd, &v, sizeof v, offsetof(detail::GroupIdentity, layout_version)), 4);
  ::close(fd);
  auto m = GroupConsumer::join(instance, "t", "g");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::version_mismatch);
  EXPECT_NE(m.error().message.find("layout version 99"), std::string::npos) << m.error().message;
}

TEST_F(GroupTest, DeletingTheTopicRemovesItsGroups) {
  create(topic("t", 1));
  { GroupConsumer a = join("t", "g"); }
  ASSERT_TRUE(broker.delete_topic("t").ok());
  create(topic("t", 1));
  auto groups = list_groups(instance, "t");
  ASSERT_TRUE(groups.ok());
  EXPECT_TRUE(groups->empty());
}

// Regression: a queue member with nothing left to claim never asked its
// reader, so it never said topic_deleted, and a worker waiting for that to
// join again (after a broker restart) polled an orphan forever.
TEST_F(GroupTest, MembersOfBothModesSeeTheTopicDeletedOnceTheyHaveReadEverything) {
  create(topic("t", 2));
  GroupOptions q = pubsub_from_earliest();
  q.settings.mode = GroupMode::queue;
  GroupConsumer a = join("t", "q", q);
  GroupConsumer b = join("t", "p", pubsub_from_earliest());
  Producer p = producer("t");
  ASSERT_TRUE(p.publish("k", "v").ok());
  std::size_t got_a = 0;
  std::size_t got_b = 0;
  for (int i = 0; i < 100 && (got_a == 0 || got_b == 0); ++i) {
    got_a += a.poll([](const Record&) {}).records;
    got_b += b.poll([](const Record&) {}).records;
  }
  ASSERT_EQ(got_a, 1u);
  ASSERT_EQ(got_b, 1u);
  EXPECT_EQ(a.poll([](const Record&) {}).status, PollStatus::ok);
  ASSERT_TRUE(broker.delete_topic("t").ok());
  EXPECT_EQ(a.poll([](const Record&) {}).status, PollStatus::topic_deleted);
  EXPECT_EQ(b.poll([](const Record&) {}).status, PollStatus::topic_deleted);
}

TEST_F(GroupTest, ADeadMemberIsEvicted) {
  create(topic("t", 2));
  GroupOptions o = pubsub_from_earliest();
  o.settings.session_timeout = 50ms;
  GroupConsumer a = join("t", "g", o);
  GroupConsumer b = join("t", "g", o);
  for (int i = 0; i < 5; ++i) {
    (void)a.poll([](const Record&) {});
    (void)b.poll([](const Record&) {});
  }
  EXPECT_EQ(a.assignment().size(), 1u);
  // b stops polling (as if hung): a evicts it and takes everything.
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (a.assignment().size() < 2 && std::chrono::steady_clock::now() < deadline) {
    (void)a.poll([](const Record&) {});
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(a.assignment().size(), 2u);
}

}  // namespace
}  // namespace ringbus::test
