// Edge cases of the partition ring through the public API: one test each.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "partition_format.h"
#include "partition_ring.h"
#include "test_support.h"
#include "topic_files.h"

namespace ringbus::test {
namespace {

struct Seen {
  std::uint64_t offset;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
};

std::vector<Seen> drain(Consumer& c, std::size_t max = 1'000'000) {
  std::vector<Seen> out;
  for (;;) {
    const PollResult r = c.poll(
        [&](const Record& rec) {
          Seen s{rec.offset, std::string(rec.key), std::string(rec.value), {}};
          for (const Header& h : rec.headers) s.headers.emplace_back(h.name, h.value);
          out.push_back(std::move(s));
        },
        max);
    EXPECT_NE(r.status, PollStatus::lapped);
    if (r.records == 0) return out;
  }
}

using RingTest = BrokerFixture;

TEST_F(RingTest, PublishThenConsumeKeepsKeyValueHeadersAndDenseOffsets) {
  create(topic("t"));
  Producer p = producer("t");
  Consumer c = consumer("t", from_earliest());
  const Header hs[] = {{"trace", "abc"}, {"n", ""}};
  for (int i = 0; i < 10; ++i) {
    const PublishResult r = p.try_publish("k" + std::to_string(i), "v" + std::to_string(i), hs);
    ASSERT_TRUE(r.ok()) << to_string(r.status);
    EXPECT_EQ(r.offset, static_cast<std::uint64_t>(i));
  }
  const auto seen = drain(c);
  ASSERT_EQ(seen.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(seen[i].offset, static_cast<std::uint64_t>(i));
    EXPECT_EQ(seen[i].key, "k" + std::to_string(i));
    EXPECT_EQ(seen[i].value, "v" + std::to_string(i));
    ASSERT_EQ(seen[i].headers.size(), 2u);
    EXPECT_EQ(seen[i].headers[0], std::make_pair(std::string("trace"), std::string("abc")));
    EXPECT_EQ(seen[i].headers[1], std::make_pair(std::string("n"), std::string("")));
  }
}

// The leader's name in a mirror's rings changes under a seqlock: a reader
// never sees half of one name and half of another. A name longer than the
// field is cut.
TEST_F(RingTest, TheLeadersNameIsReadWholeWhileItChanges) {
  create(topic("t"));
  auto map = detail::TopicMap::open(instance, "t");
  ASSERT_TRUE(map) << map.error().message;
  detail::PartitionRing& ring = map.value()->ring(0);
  EXPECT_EQ(ring.leader_elsewhere(), "");
  const std::string one(40, 'a'), two = "b";
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      ring.set_leader_elsewhere(i % 2 ? one : two);
      std::this_thread::yield();  // (one writer, rarely: a reader must get a word in)
    }
  });
  std::size_t torn = 0;
  for (int i = 0; i < 20'000; ++i) {
    const std::string n = ring.leader_elsewhere();
    if (n != "" && n != one && n != two) ++torn;
  }
  stop = true;
  writer.join();
  EXPECT_EQ(torn, 0u);
  ring.set_leader_elsewhere(std::string(200, 'c'));
  EXPECT_EQ(ring.leader_elsewhere(), std::string(detail::kLeaderNameMax, 'c'));
}

TEST_F(RingTest, EmptyKeyAndEmptyValueAreValidRecords) {
  create(topic("t"));
  Producer p = producer("t");
  Consumer c = consumer("t", from_earliest());
  ASSERT_TRUE(p.try_publish("", "").ok());
  ASSERT_TRUE(p.try_publish("key-only", "").ok());
  ASSERT_TRUE(p.try_publish("", "value-only").ok());
  const auto seen = drain(c);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].key, "");
  EXPECT_EQ(seen[0].value, "");
  EXPECT_EQ(seen[1].key, "key-only");
  EXPECT_EQ(seen[1].value, "");
  EXPECT_EQ(seen[2].key, "");
  EXPECT_EQ(seen[2].value, "value-only");
}

TEST_F(RingTest, ExactlyMaxRecordSizeIsAcceptedAndOneMoreByteIsRefused) {
  create(topic("t", 1, 64 * 1024, 1000));
  Producer p = producer("t");
  Consumer c = consumer("t", from_earliest());
  const std::string key = "kk";
  const Header hs[] = {{"h", "xy"}};  // count, name length, "h", value length, "xy": 6 bytes encoded
  const std::string value(1000 - key.size() - 6, 'x');
  ASSERT_TRUE(p.try_publish(key, value, hs).ok());
  EXPECT_EQ(p.try_publish(key, value + "y", hs).status, PublishStatus::record_too_large);
  Claim too_big = p.try_claim(1001);
  EXPECT_EQ(too_big.status(), PublishStatus::record_too_large);
  const auto seen = drain(c);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].value, value);
}

TEST_F(RingTest, WrapAroundWritesPaddingAndRecordsStayIntact) {
  // 64 KiB ring, records of ~3000 bytes: a claim regularly meets the end.
  create(topic("t", 1, 64 * 1024, 4096));
  Producer p = producer("t");
  Consumer c = consumer("t", from_earliest(/*gating=*/true));
  std::uint64_t next = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 7; ++i) {
      std::string v(2900 + (round * 7 + i) % 190, static_cast<char>('a' + (round + i) % 26));
      const PublishResult r = p.try_publish("", v);
      ASSERT_TRUE(r.ok()) << to_string(r.status) << " at round " << round;
    }
    for (const Seen& s : drain(c)) {
      EXPECT_EQ(s.offset, next++);
      EXPECT_EQ(s.value.size(), 2900 + s.offset % 190);
      EXPECT_EQ(s.value.find_first_not_of(s.value[0]), std::string::npos) << "torn record " << s.offset;
    }
  }
  EXPECT_EQ(next, 200u * 7);
}

TEST_F(RingTest, GatingConsumerBackPressuresProducer) {
  create(topic("t", 1, 64 * 1024, 4096));
  Producer p = producer("t");
  Consumer c = consumer("t", from_earliest(/*gating=*/true));
  const std::string v(1000, 'x');
  int published = 0;
  while (p.try_publish("", v).ok()) ++published;
  EXPECT_GT(published, 50);
  EXPECT_LE(published, 64);  // 64 KiB ring, 1056-byte frames
  EXPECT_EQ(p.try_publish("", v).status, PublishStatus::back_pressured);
  EXPECT_EQ(drain(c).size(), static_cast<std::size_t>(published));
  EXPECT_TRUE(p.try_publish("", v).ok());  // space again
}

TEST_F(RingTest, PublishWaitsForSpaceAndTimesOut) {
  create(topic("t", 1, 64 * 1024, 4096));
  ProducerOptions o;
  o.publish_timeout = std::chrono::milliseconds(50);
  Producer p = producer("t", o);
  Consumer c = consumer("t", from_earliest(true));
  const std::string v(1000, 'x');
  while (p.try_publish("", v).ok()) {
  }
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.publish("", v).status, PublishStatus::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));
  std::thread reader([&] { drain(c); });
  o.publish_timeout = std::chrono::seconds(10);
  Producer p2 = producer("t", o);
  reader.join();
  EXPECT_TRUE(p2.publish("", v).ok());
}

TEST_F(RingTest, NonGatingConsumerThatIsLappedReportsFirstMissedOffset) {
  create(topic("t", 1, 64 * 1024, 4096));
  Producer p = producer("t");
  Consumer c = consumer("t", from_earliest(/*gating=*/false));
  const std::string v(1000, 'x');
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(p.try_publish("", v).ok());  // ~8 laps
  std::size_t got = 0;
  const PollResult r = c.poll([&](const Record&) { ++got; });
  EXPECT_EQ(r.status, PollStatus::lapped);
  EXPECT_EQ(got, 0u);
  EXPECT_EQ(r.missed_from, 0u);
  EXPECT_EQ(r.resumed_at, 500u);
  ASSERT_TRUE(p.try_publish("", "after").ok());
  const auto seen = drain(c);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].offset, 500u);
}

TEST_F(RingTest, StartPositionsEarliestLatestAndOffset) {
  create(topic("t"));
  Producer p = producer("t");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(p.try_publish("", std::to_string(i)).ok());
  Consumer latest = consumer("t");
  ConsumerOptions at3;
  at3.start = StartPosition::at(3);
  Consumer from3 = consumer("t", at3);
  Consumer earliest = consumer("t", from_earliest());
  ASSERT_TRUE(p.try_publish("", "5").ok());
  EXPECT_EQ(drain(earliest).size(), 6u);
  const auto s3 = drain(from3);
  ASSERT_EQ(s3.size(), 3u);
  EXPECT_EQ(s3[0].offset, 3u);
  const auto sl = drain(latest);
  ASSERT_EQ(sl.size(), 1u);
  EXPECT_EQ(sl[0].value, "5");
}

TEST_F(RingTest, StartOffsetPastTheEndIsRefusedWithTheEndOffset) {
  create(topic("t"));
  Producer p = producer("t");
  ASSERT_TRUE(p.try_publish("", "x").ok());
  ConsumerOptions o;
  o.start = StartPosition::at(7);
  auto c = Consumer::open(instance, "t", o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("end offset 1"), std::string::npos) << c.error().message;
}

TEST_F(RingTest, BatchPublishGivesConsecutiveOffsetsInOnePartition) {
  create(topic("t", 4));
  Producer p = producer("t");
  std::vector<std::string> values;
  for (int i = 0; i < 100; ++i) values.push_back("batch-" + std::to_string(i));
  std::vector<Message> msgs;
  for (const auto& v : values) msgs.push_back({"same-key", v});
  const PublishResult r = p.try_publish_batch(msgs);
  ASSERT_TRUE(r.ok()) << to_string(r.status);
  EXPECT_EQ(r.partition, partition_for_key("same-key", 4));
  ConsumerOptions o = from_earliest();
  o.partitions = {r.partition};
  Consumer c = consumer("t", o);
  const auto seen = drain(c);
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(seen[i].offset, r.offset + i);
    EXPECT_EQ(seen[i].value, values[i]);
  }
}

TEST_F(RingTest, EmptyBatchIsAnInvalidArgument) {
  create(topic("t"));
  Producer p = producer("t");
  EXPECT_EQ(p.try_publish_batch({}).status, PublishStatus::invalid_argument);
}

TEST_F(RingTest, ZeroCopyClaimCommitAndAbort) {
  create(topic("t"));
  Producer p = producer("t");
  Consumer c = consumer("t", from_earliest());
  Claim a = p.try_claim(5, "k1");
  ASSERT_TRUE(a.ok());
  std::memcpy(a.value().data(), "hello", 5);
  Claim b = p.try_claim(3, "k2");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.offset(), a.offset() + 1);
  b.abort();  // its offset is retired, never delivered
  ASSERT_TRUE(a.commit().ok());
  {
    Claim dropped = p.try_claim(4);  // destroyed without commit: aborted
    ASSERT_TRUE(dropped.ok());
  }
  ASSERT_TRUE(p.try_publish("", "after").ok());
  const auto seen = drain(c);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].value, "hello");
  EXPECT_EQ(seen[0].key, "k1");
  EXPECT_EQ(seen[1].value, "after");
  EXPECT_EQ(seen[1].offset, 3u);
  EXPECT_EQ(c.skipped(), 2u);
}

TEST_F(RingTest, AbandonedClaimIsRevokedAfterTheTimeoutAndReadersGoOn) {
  TopicConfig cfg = topic("t");
  cfg.abandoned_claim_timeout = std::chrono::milliseconds(30);
  create(cfg);
  Producer dead = producer("t");
  Producer live = producer("t");
  Consumer c = consumer("t", from_earliest(true));
  Claim stuck = dead.try_claim(10);  // never committed: its producer "died"
  ASSERT_TRUE(stuck.ok());
  ASSERT_TRUE(live.try_publish("", "one").ok());
  ASSERT_TRUE(live.try_publish("", "two").ok());
  std::vector<Seen> seen;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (seen.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    (void)c.wait(std::chrono::milliseconds(5));
    for (auto& s : drain(c)) seen.push_back(std::move(s));
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].offset, 1u);
  EXPECT_EQ(seen[1].offset, 2u);
  EXPECT_EQ(c.skipped(), 1u);
  // The late commit is refused: the record was not published.
  EXPECT_EQ(stuck.commit().status, PublishStatus::claim_revoked);
}

// Regression: with no gating reader, producers once lapped a claim that
// another producer was still writing, and its late bytes and commit landed on
// a newer record. The commit frontier now holds them back.
TEST_F(RingTest, ProducersNeverClaimOverAClaimStillBeingWritten) {
  create(topic("t", 1, 64 * 1024, 4096));
  Producer slow = producer("t");
  Producer fast = producer("t");
  Claim held = slow.try_claim(100);
  ASSERT_TRUE(held.ok());
  const std::string v(1000, 'x');
  int published = 0;
  while (published < 1000 && fast.try_publish("", v).ok()) ++published;
  EXPECT_LE(published, 64);  // less than a lap past the held claim
  EXPECT_EQ(fast.try_publish("", v).status, PublishStatus::back_pressured);
  std::memset(held.value().data(), 'h', 100);
  ASSERT_TRUE(held.commit().ok());
  EXPECT_TRUE(fast.try_publish("", v).ok());  // the frontier moved on
  Consumer c = consumer("t", from_earliest());
  (void)c.poll([](const Record&) {});
}

TEST_F(RingTest, ProducersRevokeAnAbandonedClaimWhenNoReaderExists) {
  TopicConfig cfg = topic("t", 1, 64 * 1024, 4096);
  cfg.abandoned_claim_timeout = std::chrono::milliseconds(30);
  create(cfg);
  Producer dead = producer("t");
  Producer live = producer("t");
  Claim stuck = dead.try_claim(100);
  ASSERT_TRUE(stuck.ok());
  const std::string v(1000, 'x');
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(live.publish("", v).ok()) << i;  // three laps
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(30));
  EXPECT_EQ(stuck.commit().status, PublishStatus::claim_revoked);
}

TEST_F(RingTest, KeyedRecordsGoToTheKeysPartitionAndUnkeyedRoundRobin) {
  create(topic("t", 3));
  Producer p = producer("t");
  for (int i = 0; i < 6; ++i) {
    const PublishResult r = p.try_publish("truck-42", "x");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.partition, partition_for_key("truck-42", 3));
  }
  std::vector<std::uint32_t> parts;
  for (int i = 0; i < 6; ++i) parts.push_back(p.try_publish("", "x").partition);
  EXPECT_EQ(parts, (std::vector<std::uint32_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(p.try_publish("", "x", {}, 3).status, PublishStatus::invalid_partition);
}

TEST(PartitionForKey, IsStableAcrossVersions) {
  // xxHash64 with seed 0: these values must never change, or keyed data
  // would move between partitions on upgrade.
  // XXH64("", 0) = 0xef46db3751d8e999, XXH64("a", 0) = 0xd24ec4f1a98c6e5b,
  // XXH64("truck-42", 0) = 0x4ff61d123533631d.
  EXPECT_EQ(partition_for_key("", 7), 6u);
  EXPECT_EQ(partition_for_key("a", 1024), 603u);
  EXPECT_EQ(partition_for_key("truck-42", 1024), 797u);
  EXPECT_EQ(partition_for_key("truck-42", 7), 5u);
}

TEST_F(RingTest, BlockingWaitIsWokenByACommit) {
  create(topic("t"));
  ConsumerOptions o = from_earliest();
  o.idle = IdleStrategy::block;
  Consumer c = consumer("t", o);
  EXPECT_EQ(c.wait(std::chrono::milliseconds(20)), WaitStatus::timed_out);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Producer p = producer("t");
    ASSERT_TRUE(p.try_publish("", "wake").ok());
  });
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.wait(std::chrono::seconds(10)), WaitStatus::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  writer.join();
  EXPECT_EQ(drain(c).size(), 1u);
}

TEST_F(RingTest, BlockingWaitOverSeveralPartitions) {
  create(topic("t", 4));
  ConsumerOptions o = from_earliest();
  o.idle = IdleStrategy::block;
  Consumer c = consumer("t", o);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Producer p = producer("t");
    ASSERT_TRUE(p.try_publish("", "x", {}, 3).ok());
  });
  EXPECT_EQ(c.wait(std::chrono::seconds(10)), WaitStatus::ready);
  writer.join();
  EXPECT_EQ(drain(c).size(), 1u);
}

TEST_F(RingTest, ConsumerOfSelectedPartitionsOnly) {
  create(topic("t", 3));
  Producer p = producer("t");
  for (std::uint32_t part = 0; part < 3; ++part) ASSERT_TRUE(p.try_publish("", "x", {}, part).ok());
  ConsumerOptions o = from_earliest();
  o.partitions = {2};
  Consumer c = consumer("t", o);
  EXPECT_EQ(drain(c).size(), 1u);
  o.partitions = {5};
  EXPECT_FALSE(Consumer::open(instance, "t", o).ok());
  o.partitions = {1, 1};
  EXPECT_FALSE(Consumer::open(instance, "t", o).ok());
}

// Creates topic "t" (abandoned-claim timeout 20 ms) and leaves a gating
// reader on it whose process has exited holding its slot.
void create_topic_with_dead_gating_reader(BrokerFixture& f) {
  TopicConfig cfg = topic("t", 1, 64 * 1024, 4096);
  cfg.abandoned_claim_timeout = std::chrono::milliseconds(20);
  f.create(cfg);
  const pid_t child = ::fork();
  if (child == 0) {
    auto c = Consumer::open(f.instance, "t", from_earliest(true));
    ::_exit(c.ok() ? 0 : 1);  // exits holding its gating slot
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(RingTest, GatingSlotOfADeadProcessIsReaped) {
  create_topic_with_dead_gating_reader(*this);
  ProducerOptions o;
  o.publish_timeout = std::chrono::seconds(10);
  Producer p = producer("t", o);
  const std::string v(1000, 'x');
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(p.publish("", v).ok()) << i;
}

// Regression (review): a ring filled exactly to its capacity and left idle
// refused every start at `earliest` ("no stable start position").
TEST_F(RingTest, EarliestOnAnExactlyFullIdleRingStartsAtTheFirstRecord) {
  create(topic("t", 1, 64 * 1024, 4096));
  Producer p = producer("t");
  const std::string v(32, 'x');  // 64-byte frames: 1024 of them fill the ring
  for (int i = 0; i < 1024; ++i) ASSERT_TRUE(p.try_publish("", v).ok()) << i;
  ASSERT_EQ(describe_topic(instance, "t")->partition_info[0].end_position, 64u * 1024);
  for (const bool gating : {false, true}) {
    auto c = Consumer::open(instance, "t", from_earliest(gating));
    ASSERT_TRUE(c.ok()) << c.error().message;
    const auto seen = drain(c.value());
    ASSERT_EQ(seen.size(), 1024u) << "gating " << gating;
    EXPECT_EQ(seen.front().offset, 0u);
  }
}

// Regression (review): only publish() reaped dead gating readers, and only
// within one long wait; a producer calling try_publish stalled forever.
TEST_F(RingTest, TryPublishAlsoReapsADeadGatingReader) {
  create_topic_with_dead_gating_reader(*this);
  Producer p = producer("t");
  const std::string v(1000, 'x');
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int published = 0;
  while (published < 200 && std::chrono::steady_clock::now() < deadline) {
    if (p.try_publish("", v).ok()) {
      ++published;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  EXPECT_EQ(published, 200);
}

// Review: gating consumers trusted frame lengths, so a frame overwritten by a
// producer stopped past the timeout could become a view past the ring. They
// now check every frame and report the claim as corrupt.
TEST_F(RingTest, GatingConsumerReportsACorruptFrameInsteadOfTrustingIt) {
  create(topic("t", 1, 64 * 1024, 4096));
  Consumer c = consumer("t", from_earliest(/*gating=*/true));
  Producer p = producer("t");
  for (const char* v : {"zero", "one", "two"}) ASSERT_TRUE(p.try_publish("", v).ok());
  {
    // Frames of 32 + 3..4 bytes take 64 each: record 1 starts at position 64.
    const std::string path = detail::topic_directory(instance, "t") + "/partition-0";
    const int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const std::uint32_t huge = 0x7FFFFFFF;
    const auto at = static_cast<off_t>(detail::ring_data_offset(64 * 1024 / detail::kFrameAlign) + 64);
    ASSERT_EQ(::pwrite(fd, &huge, sizeof huge, at), static_cast<ssize_t>(sizeof huge));
    ::close(fd);
  }
  std::vector<std::string> got;
  PollResult r = c.poll([&](const Record& rec) { got.emplace_back(rec.value); });
  EXPECT_EQ(r.status, PollStatus::corrupt);
  EXPECT_EQ(r.missed_from, 1u);
  EXPECT_EQ(r.resumed_at, 3u);
  EXPECT_EQ(got, std::vector<std::string>{"zero"});
  ASSERT_TRUE(p.try_publish("", "three").ok());
  r = c.poll([&](const Record& rec) { got.emplace_back(rec.value); });
  EXPECT_EQ(r.status, PollStatus::ok);
  EXPECT_EQ(got.back(), "three");
}

}  // namespace
}  // namespace ringbus::test
