// A cluster's topic as one broker serves it, with the test in the leading
// node's place (it moves the ring header's high watermark and in-sync count
// as cluster/src/cluster_node.cpp's LedPart does): min_insync kept in
// topic.meta and in the rings from the first record, across a restart and
// a release and adoption; consumers that read only replicated records, from
// the ring and from the log, and that wake when the mark moves; producers
// waiting for acks=all before any leader published a count.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../bus/test_support.h"
#include "log_fixture.h"
#include "partition_ring.h"
#include "topic_files.h"
#include "ringbus/broker.h"

namespace ringbus::test {
namespace {

struct ReplicatedTopic : LogFixture {
  ReplicatedTopic() : LogFixture("replicated") {}
  static TopicConfig config() {
    TopicConfig c = topic("t", 1, 64 * 1024, 1024);
    c.log.durability = Durability::page_cache;
    c.log.segment_bytes = 1 << 20;
    return c;
  }
  detail::PartitionHeader& header() {
    if (!map) map = detail::TopicMap::open(instance, "t", /*populate=*/false).value();
    return map->ring(0).header();
  }
  // What a leading node does when its replicas acknowledged: the marks,
  // then a wake-up for whoever waits on them.
  void replicated_up_to(std::uint64_t hw, std::uint32_t insync) {
    detail::PartitionHeader& h = header();
    h.log_replicated.store(hw, std::memory_order_seq_cst);
    h.insync_replicas.store(insync, std::memory_order_seq_cst);
    detail::wake_mark_waiters(h);
  }
  void publish(std::uint64_t n) {
    Producer p = std::move(Producer::open(instance, "t").value());
    PublishResult r;
    for (std::uint64_t i = 0; i < n; ++i) {
      r = p.publish("", "v" + std::to_string(i));
      ASSERT_TRUE(r.ok());
    }
    ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
  }
  // The offsets one poll loop of `c` sees before it finds nothing for a moment.
  static std::vector<std::uint64_t> drain(Consumer& c) {
    std::vector<std::uint64_t> seen;
    for (int idle = 0; idle < 5;) {
      const PollResult r = c.poll([&](const Record& rec) { seen.push_back(rec.offset); });
      EXPECT_EQ(r.status, PollStatus::ok) << to_string(r.status);
      if (r.records == 0) {
        ++idle;
        (void)c.wait(std::chrono::milliseconds(5));
      }
    }
    return seen;
  }
  static std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> v;
    for (std::uint64_t o = from; o < to; ++o) v.push_back(o);
    return v;
  }
  std::shared_ptr<detail::TopicMap> map;
};

TEST_F(ReplicatedTopic, MinInsyncIsInTheRingsFromTheStartAndAfterARestartOrAnAdoption) {
  {
    Broker b = start();
    ASSERT_TRUE(b.create_topic(config(), 9, 2));
    EXPECT_EQ(header().min_insync.load(), 2u);
    map.reset();
  }
  // A broker without a data directory has no replicas to speak of.
  auto memory_only = Broker::start({unique_instance("replicated-none")});
  ASSERT_TRUE(memory_only);
  EXPECT_EQ(memory_only->create_topic(config(), 0, 2).error().code, Errc::invalid_argument);

  Broker b = start();  // recreates the rings from topic.meta
  EXPECT_EQ(header().min_insync.load(), 2u);
  map.reset();
  ASSERT_TRUE(b.release_topic("t"));
  ASSERT_TRUE(b.adopt_topic("t"));
  EXPECT_EQ(header().min_insync.load(), 2u);
}

TEST_F(ReplicatedTopic, AConsumerReadsOnlyBelowTheHighWatermarkUnlessItAsksForEverything) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config(), 9, 2));
  publish(10);
  auto replicated = Consumer::open(instance, "t", from_earliest());
  ASSERT_TRUE(replicated) << replicated.error().message;
  ConsumerOptions all = from_earliest();
  all.read_up_to = ReadUpTo::published;
  auto published = Consumer::open(instance, "t", all);
  ASSERT_TRUE(published) << published.error().message;

  EXPECT_TRUE(drain(replicated.value()).empty()) << "no leader has published a high watermark";
  EXPECT_EQ(drain(published.value()), range(0, 10));
  replicated_up_to(4, 2);
  EXPECT_EQ(drain(replicated.value()), range(0, 4));
  replicated_up_to(10, 2);
  EXPECT_EQ(drain(replicated.value()), range(4, 10));
  EXPECT_EQ(replicated->position(0), 10u);
}

// The leader steps down (its topic released): a consumer at the high
// watermark is told topic_deleted, and never gets what lies above it.
TEST_F(ReplicatedTopic, AConsumerAtTheHighWatermarkOfAReleasedTopicIsToldItIsDeleted) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config(), 9, 2));
  publish(10);
  replicated_up_to(4, 2);
  auto c = Consumer::open(instance, "t", from_earliest());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(drain(c.value()), range(0, 4));
  ASSERT_TRUE(b.release_topic("t"));
  EXPECT_EQ(c->wait(std::chrono::seconds(10)), WaitStatus::ready) << "the deletion is news";
  std::vector<std::uint64_t> seen;
  const PollResult r = c->poll([&](const Record& rec) { seen.push_back(rec.offset); });
  EXPECT_EQ(r.status, PollStatus::topic_deleted) << to_string(r.status);
  EXPECT_TRUE(seen.empty());
}

// A consumer started at the earliest offset reads the log files, not the
// ring: the same limit holds there.
TEST_F(ReplicatedTopic, AConsumerOfTheLogStopsAtTheHighWatermarkToo) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config(), 9, 2));
  // One batch per record: the high watermark may lie between any two.
  Producer p = std::move(Producer::open(instance, "t").value());
  for (std::uint64_t i = 0; i < 6; ++i) {
    const PublishResult r = p.publish("", "v" + std::to_string(i));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
  }
  replicated_up_to(3, 2);
  auto c = Consumer::open(instance, "t", from_earliest());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(drain(c.value()), range(0, 3));
  replicated_up_to(6, 2);
  EXPECT_EQ(drain(c.value()), range(3, 6));
}

// Retention on a leader keeps every segment an in-sync mirror may not have
// copied yet: none goes until it is wholly below the high watermark,
// whatever the topic's limits say.
TEST_F(ReplicatedTopic, RetentionWaitsForTheHighWatermark) {
  Broker b = start();
  TopicConfig c = config();
  c.ring_bytes = 1 << 20;
  c.log.retention_bytes = 1;  // only the active segment may stay
  ASSERT_TRUE(b.create_topic(c, 9, 2));
  Producer p = std::move(Producer::open(instance, "t").value());
  const std::string value(1000, 'v');
  PublishResult r;
  for (int i = 0; i < 4000; ++i) {
    r = p.publish("", value);
    ASSERT_TRUE(r.ok()) << to_string(r.status);
  }
  ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
  // Retention runs once a second.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(header().log_start_offset.load(), 0u) << "deleted before any mirror copied it";
  replicated_up_to(2000, 2);
  ASSERT_TRUE(eventually([&] { return header().log_start_offset.load() > 0; }, std::chrono::seconds(10)));
  EXPECT_LE(header().log_start_offset.load(), 2000u);
  replicated_up_to(4000, 2);
  ASSERT_TRUE(eventually([&] { return header().log_start_offset.load() > 2000; }, std::chrono::seconds(10)));
}

TEST_F(ReplicatedTopic, AWaitingConsumerWakesWhenTheHighWatermarkMoves) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config(), 9, 2));
  publish(3);
  auto c = Consumer::open(instance, "t", from_earliest());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->wait(std::chrono::milliseconds(50)), WaitStatus::timed_out) << "published, not replicated";
  // The consumer announces itself where the leader looks before it wakes
  // anyone (a consumer that did not would be found by its 100 ms slices).
  std::atomic<bool> announced{false};
  std::thread leader([&] {
    announced = eventually([&] { return header().durable_waiters.load() != 0; }, std::chrono::seconds(10));
    replicated_up_to(3, 2);
  });
  EXPECT_EQ(c->wait(std::chrono::seconds(20)), WaitStatus::ready);
  leader.join();
  EXPECT_TRUE(announced);
  EXPECT_EQ(header().durable_waiters.load(), 0u) << "withdrawn after the wait";
  EXPECT_EQ(drain(c.value()), range(0, 3));
}

TEST_F(ReplicatedTopic, AcksAllWaitsForALeadersCountAndNeverFallsBackToLocal) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config(), 9, 2));
  Producer p = std::move(Producer::open(instance, "t").value());
  const PublishResult r = p.publish("", "v");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
  EXPECT_EQ(p.wait_replicated(r, std::chrono::milliseconds(50)), PublishStatus::timed_out)
      << "durable here, but no leader has counted the replicas";
  replicated_up_to(0, 1);
  EXPECT_EQ(p.wait_replicated(r, std::chrono::milliseconds(50)), PublishStatus::not_enough_replicas);
  replicated_up_to(1, 1);
  EXPECT_EQ(p.wait_replicated(r, std::chrono::milliseconds(50)), PublishStatus::ok) << "the mark counts first";
}

}  // namespace
}  // namespace ringbus::test
