// The broker with a data directory: durable acknowledgements, a restart that
// goes on from the logs' end offsets, consumers that read from disk and
// cross back to the ring, altered log settings, and a disk that fills up and
// recovers.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../bus/test_support.h"
#include "log_fixture.h"
#include "file_io.h"
#include "flusher.h"
#include "log_reader.h"
#include "record_batch.h"
#include "segment_check.h"
#include "ringbus/broker.h"
#include "segment_files.h"
#include "topic_files.h"

namespace ringbus::test {
namespace {

struct LogBroker : LogFixture {
  LogBroker() : LogFixture("log") {}
  static TopicConfig config(const std::string& name, Durability d = Durability::every_ack) {
    TopicConfig c = topic(name, 1, 64 * 1024, 1024);
    c.log.durability = d;
    c.log.segment_bytes = 1 << 20;
    return c;
  }
  static std::string value(std::uint64_t i) { return "value-" + std::to_string(i); }
  // Polls `c` until it has read up to `end` (or 30 s pass), checking that
  // offsets go on from `next` without a gap or a duplicate, and the values.
  static void read_until(Consumer& c, std::uint64_t& next, std::uint64_t end) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (next < end && std::chrono::steady_clock::now() < deadline) {
      const PollResult r = c.poll([&](const Record& rec) {
        ASSERT_EQ(rec.offset, next);
        ASSERT_EQ(rec.value, value(next));
        ++next;
      });
      ASSERT_EQ(r.status, PollStatus::ok) << to_string(r.status);
      if (r.records == 0) (void)c.wait(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(next, end);
  }
  // Reads `count` records from `start` with a new consumer.
  void expect_records(std::uint64_t from, std::uint64_t count, ConsumerOptions o) {
    auto c = Consumer::open(instance, "t", o);
    ASSERT_TRUE(c.ok()) << c.error().message;
    std::uint64_t next = from;
    read_until(c.value(), next, from + count);
  }
};

TEST_F(LogBroker, DurableAcknowledgementsAndARestartThatGoesOn) {
  {
    Broker b = start();
    ASSERT_TRUE(b.create_topic(config("t")).ok());
    Producer p = std::move(Producer::open(instance, "t").value());
    for (std::uint64_t i = 0; i < 2000; ++i) {
      const PublishResult r = p.publish("", value(i));
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r.offset, i);
      if (i % 100 == 99) {
        ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
      }
    }
    const TopicInfo info = b.describe_topic("t").value();
    EXPECT_TRUE(info.partition_info[0].has_log);
    EXPECT_GE(info.partition_info[0].durable_offset, 2000u);
  }
  Broker b = start();
  const TopicInfo info = b.describe_topic("t").value();
  EXPECT_EQ(info.partition_info[0].end_offset, 2000u);
  bool clean = false;
  for (const std::string& m : messages) clean = clean || m.find("clean shutdown") != std::string::npos;
  EXPECT_TRUE(clean);
  // The ring is new and empty: everything before comes from disk.
  expect_records(0, 2000, from_earliest());
  ConsumerOptions at;
  at.start = StartPosition::at(1500);
  expect_records(1500, 500, at);
  Producer p = std::move(Producer::open(instance, "t").value());
  const PublishResult r = p.publish("", value(2000));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.offset, 2000u);
}

// A topic's compression: the flusher writes compressed batches (checked in
// the files), consumers read the same records from disk, altering the codec
// changes the batches written from then on, and both kinds stay readable.
TEST_F(LogBroker, ACompressedTopicWritesCompressedBatchesThatReadBack) {
  const auto codecs_in_log = [&] {
    std::vector<Compression> codecs;
    const auto fio = log::make_pwrite_io();
    log::LogReader r(*fio, (data / "t" / "0").string());
    EXPECT_EQ(r.seek(0), log::ReadStatus::batch) << r.error();
    log::DecodedBatch batch;
    while (r.next(UINT64_MAX, batch) == log::ReadStatus::batch) {
      if (codecs.empty() || codecs.back() != batch.v2.header.compression()) codecs.push_back(batch.v2.header.compression());
    }
    return codecs;
  };
  {
    Broker b = start();
    TopicConfig c = config("t", Durability::page_cache);
    c.log.compression = Compression::zstd;
    ASSERT_TRUE(b.create_topic(c).ok());
    EXPECT_EQ(b.describe_topic("t")->log->compression, Compression::zstd);
    Producer p = std::move(Producer::open(instance, "t").value());
    PublishResult r;
    for (std::uint64_t i = 0; i < 1000; ++i) ASSERT_TRUE((r = p.publish("", value(i))).ok());
    ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
    LogConfig l = c.log;
    l.compression = Compression::lz4;
    ASSERT_TRUE(b.alter_topic("t", l).ok());
    for (std::uint64_t i = 1000; i < 2000; ++i) ASSERT_TRUE((r = p.publish("", value(i))).ok());
    ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
  }
  const std::vector<Compression> want{Compression::zstd, Compression::lz4};
  EXPECT_EQ(codecs_in_log(), want);
  Broker b = start();
  EXPECT_EQ(b.describe_topic("t")->log->compression, Compression::lz4);  // it lasts a restart (topic.meta)
  expect_records(0, 2000, from_earliest());
}

// Kafka batches from elsewhere go to the log as they came, stamped with
// their offsets: the zstd batch stays zstd, every record reads back from
// disk (offsets, keys, values, the batches' timestamps) after a restart,
// and the files check clean.
TEST_F(LogBroker, RecordBatchesFromElsewhereAreWrittenAsTheyCame) {
  const auto kafka_batch = [](int first, int records, Compression codec) {
    log::v2::BatchBuilder b;
    b.reset(0, -1, codec);
    for (int i = 0; i < records; ++i) b.append(static_cast<std::uint64_t>(i), 1'700'000'000'000 + first + i, "", value(first + i));
    const auto bytes = b.finish();
    return std::vector<std::byte>(bytes.begin(), bytes.end());
  };
  {
    Broker b = start();
    ASSERT_TRUE(b.create_topic(config("t", Durability::page_cache)).ok());
    Producer p = std::move(Producer::open(instance, "t").value());
    PublishResult r;
    std::uint64_t next = 0;
    for (int round = 0; round < 20; ++round) {
      for (int i = 0; i < 5; ++i, ++next) ASSERT_TRUE((r = p.publish("", value(next))).ok());
      const Compression codec = round % 2 == 0 ? Compression::none : Compression::zstd;
      r = p.publish_record_batch(kafka_batch(static_cast<int>(next), 7, codec));
      ASSERT_TRUE(r.ok()) << to_string(r.status);
      ASSERT_EQ(r.offset, next);
      next += 7;
    }
    ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
  }
  // On disk: the batches from elsewhere at their offsets, with their codec.
  const auto fio = log::make_pwrite_io();
  log::LogReader reader(*fio, (data / "t" / "0").string());
  ASSERT_EQ(reader.seek(0), log::ReadStatus::batch) << reader.error();
  log::DecodedBatch batch;
  int zstd = 0;
  while (reader.next(UINT64_MAX, batch) == log::ReadStatus::batch) {
    if (batch.v2.header.compression() == Compression::zstd) {
      ++zstd;
      EXPECT_EQ(batch.header.record_count, 7u);
      EXPECT_EQ(batch.header.base_offset % 12, 5u);  // after each round's 5 single records
    }
  }
  EXPECT_EQ(zstd, 10);
  auto reports = log::check_path((data / "t" / "0").string(), log::CheckOptions{});
  ASSERT_TRUE(reports.ok());
  for (const auto& rep : reports.value()) EXPECT_TRUE(rep.problems.empty()) << rep.problems.front();
  Broker b = start();
  expect_records(0, 240, from_earliest());
}

// A cluster's election hands the broker a new leader epoch: the batches
// written from then on carry it (as the epoch file says), an epoch below the
// log's is refused, and a restart goes on with the log's latest.
TEST_F(LogBroker, TheLeaderEpochItIsGivenIsStampedIntoTheBatchesItWrites) {
  const auto epochs_on_disk = [&] {
    std::vector<std::pair<std::int32_t, std::uint64_t>> seen;  // (epoch, first offset) as they change
    const auto fio = log::make_pwrite_io();
    log::LogReader reader(*fio, (data / "t" / "0").string());
    if (reader.seek(0) != log::ReadStatus::batch) return seen;
    log::DecodedBatch batch;
    while (reader.next(UINT64_MAX, batch) == log::ReadStatus::batch) {
      if (seen.empty() || seen.back().first != batch.header.leader_epoch)
        seen.emplace_back(batch.header.leader_epoch, batch.header.base_offset);
    }
    return seen;
  };
  const auto publish = [&](std::uint64_t from, std::uint64_t to) {
    Producer p = std::move(Producer::open(instance, "t").value());
    PublishResult r;
    for (std::uint64_t i = from; i < to; ++i) ASSERT_TRUE((r = p.publish("", value(i))).ok());
    ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
  };
  {
    Broker b = start();
    ASSERT_TRUE(b.create_topic(config("t")).ok());
    publish(0, 10);
    ASSERT_TRUE(b.set_leader_epoch("t", 0, 5));
    publish(10, 20);
    const Status down = b.set_leader_epoch("t", 0, 4);
    ASSERT_FALSE(down);
    EXPECT_NE(down.error().message.find("leader epoch 4 is below the log's 5"), std::string::npos) << down.error().message;
    EXPECT_EQ(b.set_leader_epoch("t", 1, 6).error().code, Errc::invalid_argument);  // no partition 1
    EXPECT_EQ(b.set_leader_epoch("nope", 0, 6).error().code, Errc::not_found);
  }
  EXPECT_EQ(epochs_on_disk(), (std::vector<std::pair<std::int32_t, std::uint64_t>>{{0, 0}, {5, 10}}));
  {
    Broker b = start();
    publish(20, 30);
  }
  EXPECT_EQ(epochs_on_disk(), (std::vector<std::pair<std::int32_t, std::uint64_t>>{{0, 0}, {5, 10}}));
}

// The flusher's running byte count (a mirror's lag in bytes is read off
// it) is the bytes of the batches it wrote: after a clean close, what the
// log's segments hold after their headers.
TEST_F(LogBroker, TheFlusherCountsTheBytesItWritesInTheRingsHeader) {
  std::uint64_t segments = 0;
  const auto batch_bytes = [&] {
    std::uint64_t total = 0;
    for (const auto& e : std::filesystem::directory_iterator(data / "t" / "0")) {
      if (e.path().extension() != log::kLogExt) continue;
      total += std::filesystem::file_size(e.path()) - sizeof(log::SegmentHeader);
      ++segments;
    }
    return total;
  };
  Broker b = start();
  TopicConfig c = config("t", Durability::page_cache);  // segments of 1 MiB
  ASSERT_TRUE(b.create_topic(c).ok());
  auto map = detail::TopicMap::open(instance, "t").value();
  EXPECT_EQ(map->ring(0).header().log_bytes.load(), 0u);
  Producer p = std::move(Producer::open(instance, "t").value());
  PublishResult r;
  const std::string pad(600, 'x');
  for (std::uint64_t i = 0; i < 3000; ++i) {  // about 2 MiB: two segments
    ASSERT_TRUE((r = p.publish("", value(i) + pad)).ok());
    if (i % 500 == 499) {
      ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
    }
  }
  const std::uint64_t counted = map->ring(0).header().log_bytes.load();
  EXPECT_GT(counted, 3000u * pad.size());
  b.close();
  EXPECT_EQ(counted, batch_bytes());
  EXPECT_EQ(segments, 2u);
}

// A cluster gives each topic its id (unique across its nodes).
TEST_F(LogBroker, ATopicTakesTheIdItIsGivenAndNoOtherTopicMayHaveIt) {
  Broker b = start();
  auto t = b.create_topic(config("t"), 4242);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->topic_id, 4242u);
  auto again = b.create_topic(config("u"), 4242);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::already_exists);
  EXPECT_NE(again.error().message.find("topic id 4242 is topic 't''s"), std::string::npos) << again.error().message;
  auto picked = b.create_topic(config("v"));
  ASSERT_TRUE(picked);
  EXPECT_NE(picked->topic_id, 4242u);
}

// A cluster hands a topic's log over: released, its log stays whole on disk
// (everything committed written, closed cleanly), producers are refused; the
// directory moved away and back, it is adopted and goes on from its end.
TEST_F(LogBroker, AReleasedTopicKeepsItsWholeLogAndAnAdoptedOneGoesOnFromItsEnd) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config("t", Durability::page_cache), 777).ok());
  Producer p = std::move(Producer::open(instance, "t").value());
  for (std::uint64_t i = 0; i < 300; ++i) ASSERT_TRUE(p.publish("", value(i)).ok());  // not waited for
  ASSERT_TRUE(b.release_topic("t"));
  EXPECT_EQ(p.publish("", value(300)).status, PublishStatus::not_leader);
  EXPECT_EQ(p.leader(), "") << "no mirror's rings name a leader here";
  EXPECT_FALSE(b.describe_topic("t"));
  EXPECT_EQ(b.release_topic("t").error().code, Errc::not_found);
  const auto moved = data / ".elsewhere";
  std::filesystem::rename(data / "t", moved);
  EXPECT_EQ(b.adopt_topic("t").error().code, Errc::not_found) << "no log there now";
  std::filesystem::rename(moved, data / "t");

  auto adopted = b.adopt_topic("t");
  ASSERT_TRUE(adopted) << adopted.error().message;
  EXPECT_EQ(adopted->topic_id, 777u);
  EXPECT_EQ(adopted->partition_info[0].end_offset, 300u);
  bool clean = false;
  {
    std::lock_guard lock(messages_mu);  // the broker lives: its threads log
    for (const std::string& m : messages) clean = clean || m.find("offsets 0 to 300 (clean shutdown") != std::string::npos;
  }
  EXPECT_TRUE(clean);
  EXPECT_EQ(b.adopt_topic("t").error().code, Errc::already_exists);
  Producer q = std::move(Producer::open(instance, "t").value());
  const PublishResult r = q.publish("", value(300));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.offset, 300u);
  expect_records(0, 301, from_earliest());
}

// A topic that is not replicated has one replica: acks=all is acks=local.
TEST_F(LogBroker, WaitReplicatedOnATopicThatIsNotReplicatedIsWaitDurable) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config("t")).ok());
  Producer p = std::move(Producer::open(instance, "t").value());
  const PublishResult r = p.publish("", value(0));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(p.wait_replicated(r, std::chrono::seconds(10)), PublishStatus::ok);
  EXPECT_GE(b.describe_topic("t")->partition_info[0].durable_offset, 1u);
}

// The fallback where io_uring is unavailable: the same log, written with pwrite.
TEST_F(LogBroker, ThePwriteBackendWritesTheSameLog) {
  {
    Broker b = start(IoBackend::pwrite);
    ASSERT_TRUE(b.create_topic(config("t")).ok());
    Producer p = std::move(Producer::open(instance, "t").value());
    PublishResult r;
    for (std::uint64_t i = 0; i < 500; ++i) {
      r = p.publish("", value(i));
      ASSERT_TRUE(r.ok());
    }
    ASSERT_EQ(p.wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
  }
  Broker b = start(IoBackend::pwrite);
  expect_records(0, 500, from_earliest());
}

TEST_F(LogBroker, ConsumerFromZeroCrossesFromDiskToTheRingWhileProducersWrite) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config("t", Durability::page_cache)).ok());
  constexpr std::uint64_t kFirst = 20'000;  // 64 KiB ring: most of these are only on disk
  constexpr std::uint64_t kTotal = 60'000;
  Producer p = std::move(Producer::open(instance, "t").value());
  for (std::uint64_t i = 0; i < kFirst; ++i) ASSERT_TRUE(p.publish("", value(i)).ok());
  std::thread writer([&] {
    Producer q = std::move(Producer::open(instance, "t").value());
    for (std::uint64_t i = kFirst; i < kTotal; ++i) ASSERT_TRUE(q.publish("", value(i)).ok());
  });
  expect_records(0, kTotal, from_earliest());
  writer.join();
}

TEST_F(LogBroker, GatingConsumerFromAnOldOffsetReadsDiskThenGatesTheRing) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config("t", Durability::page_cache)).ok());
  Producer p = std::move(Producer::open(instance, "t").value());
  for (std::uint64_t i = 0; i < 10'000; ++i) ASSERT_TRUE(p.publish("", value(i)).ok());
  ConsumerOptions o;
  o.start = StartPosition::at(10);
  o.gating = true;
  expect_records(10, 9'990, o);
}

TEST_F(LogBroker, ASlowNonGatingConsumerIsNeverLappedItReadsTheDisk) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config("t", Durability::page_cache)).ok());
  auto c = Consumer::open(instance, "t", from_earliest());
  ASSERT_TRUE(c.ok());
  Producer p = std::move(Producer::open(instance, "t").value());
  std::uint64_t next = 0;
  for (std::uint64_t round = 0; round < 20; ++round) {
    for (std::uint64_t i = 0; i < 2'000; ++i) ASSERT_TRUE(p.publish("", value(round * 2000 + i)).ok());
    // Reads a little each round: producers lap it many times over.
    const PollResult r = c->poll([&](const Record& rec) {
      ASSERT_EQ(rec.offset, next);
      ++next;
    }, 100);
    ASSERT_EQ(r.status, PollStatus::ok) << to_string(r.status);
  }
  read_until(c.value(), next, 40'000);
}

TEST_F(LogBroker, WaitDurableWithoutACommitLogSaysSo) {
  auto b = Broker::start({instance});
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->create_topic(topic("t")).ok());
  Producer p = std::move(Producer::open(instance, "t").value());
  const PublishResult r = p.publish("", "x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(p.wait_durable(r, std::chrono::seconds(1)), PublishStatus::no_commit_log);
}

TEST_F(LogBroker, ASecondBrokerOnTheSameDataDirectoryIsRefused) {
  Broker b = start();
  BrokerOptions o{unique_instance("other"), data.string()};
  auto second = Broker::start(o);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("in use by another broker"), std::string::npos) << second.error().message;
}

TEST_F(LogBroker, DeletingATopicDeletesItsLog) {
  Broker b = start();
  ASSERT_TRUE(b.create_topic(config("t")).ok());
  EXPECT_TRUE(std::filesystem::exists(data / "t" / "0"));
  ASSERT_TRUE(b.delete_topic("t").ok());
  EXPECT_FALSE(std::filesystem::exists(data / "t"));
  ASSERT_TRUE(b.create_topic(config("t")).ok());
}

TEST_F(LogBroker, AlteringATopicChangesItsLogSettingsAndTheyLastARestart) {
  {
    Broker b = start();
    ASSERT_TRUE(b.create_topic(config("t", Durability::interval)).ok());
    LogConfig l = b.describe_topic("t")->log.value();
    EXPECT_EQ(l.durability, Durability::interval);
    EXPECT_EQ(l.retention_policy, RetentionPolicy::limits);
    l.durability = Durability::page_cache;
    l.retention_policy = RetentionPolicy::consumed;
    l.retention_bytes = 64 << 20;
    auto altered = b.alter_topic("t", l);
    ASSERT_TRUE(altered.ok()) << altered.error().message;
    EXPECT_EQ(altered->log->durability, Durability::page_cache);
    // A bad value is refused and nothing changes.
    LogConfig bad = l;
    bad.segment_bytes = 1000;
    auto refused = b.alter_topic("t", bad);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("segment_bytes"), std::string::npos) << refused.error().message;
    EXPECT_EQ(b.describe_topic("t")->log->segment_bytes, l.segment_bytes);
    auto unknown = b.alter_topic("nope", l);
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().code, Errc::not_found);
  }
  Broker b = start();
  const LogConfig l = b.describe_topic("t")->log.value();
  EXPECT_EQ(l.durability, Durability::page_cache);
  EXPECT_EQ(l.retention_policy, RetentionPolicy::consumed);
  EXPECT_EQ(l.retention_bytes, 64u << 20);
}

TEST_F(LogBroker, AlteringATopicWithoutACommitLogIsRefused) {
  auto b = Broker::start({instance});
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->create_topic(topic("t")).ok());
  EXPECT_FALSE(b->describe_topic("t")->log.has_value());
  auto r = b->alter_topic("t", LogConfig{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no commit log"), std::string::npos) << r.error().message;
}

// A producer waiting for a sync that its policy will not make for an hour is
// woken by an alter to page_cache, and waits no more than that asks.
TEST_F(LogBroker, AlteringTheDurabilityWakesWaitersToTheNewPolicy) {
  Broker b = start();
  TopicConfig c = config("t", Durability::interval);
  c.log.flush_interval = std::chrono::hours(1);
  ASSERT_TRUE(b.create_topic(c).ok());
  Producer p = std::move(Producer::open(instance, "t").value());
  const PublishResult first = p.publish("", value(0));
  ASSERT_TRUE(first.ok());
  (void)p.wait_durable(first, std::chrono::milliseconds(300));  // the flusher's first sync may or may not come
  const PublishResult second = p.publish("", value(1));
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(p.wait_durable(second, std::chrono::milliseconds(300)), PublishStatus::timed_out);
  PublishStatus waited = PublishStatus::invalid_argument;
  auto woken = std::chrono::steady_clock::time_point::max();
  std::thread waiter([&] {
    waited = p.wait_durable(second, std::chrono::seconds(60));
    woken = std::chrono::steady_clock::now();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  LogConfig l = c.log;
  l.durability = Durability::page_cache;
  const auto altered = std::chrono::steady_clock::now();
  ASSERT_TRUE(b.alter_topic("t", l).ok());
  waiter.join();
  EXPECT_EQ(waited, PublishStatus::ok);
  // Woken by the alter, not by its timeout running out (a lost wake-up).
  EXPECT_LT(woken - altered, std::chrono::seconds(30));
  // And back to a policy that syncs before every acknowledgement.
  l.durability = Durability::every_ack;
  ASSERT_TRUE(b.alter_topic("t", l).ok());
  const PublishResult third = p.publish("", value(2));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(p.wait_durable(third, std::chrono::seconds(10)), PublishStatus::ok);
  EXPECT_GE(b.describe_topic("t")->partition_info[0].durable_offset, 3u);
}

// A lone record waits (lingers) for company before the flusher writes it,
// unless a producer is waiting for an acknowledgement: then it is written
// at once. The flusher is driven by hand here, at a fixed clock.
TEST(FlusherLinger, NoLingerWhileAProducerWaitsForAnAcknowledgement) {
  const std::string instance = unique_instance("linger");
  auto b = Broker::start({instance});  // no data directory: the flusher below is the only one
  ASSERT_TRUE(b.ok());
  TopicConfig c = topic("t", 1, 1 << 20, 1024);
  c.log.durability = Durability::page_cache;
  ASSERT_TRUE(b->create_topic(c).ok());
  auto map = detail::TopicMap::open(instance, "t").value();
  map->ring(0).header().log_durability.store(static_cast<std::uint32_t>(detail::LogDurability::page_cache));
  auto io = std::make_unique<log::MemoryIo>();
  auto log = io::PartitionLog::open(*io, "/mem/t/0", io::LogSettings::from(c.log), 0, nullptr);
  ASSERT_TRUE(log.ok());
  io::PartitionFlusher flusher(map, 0, std::move(log.value()), *io, c.log, [](const char*, const std::string&) {}, 0,
                               nullptr);
  Producer p = std::move(Producer::open(instance, "t").value());
  ASSERT_TRUE(p.publish("", "alone").ok());
  const std::int64_t t0 = 1'000'000'000;
  EXPECT_FALSE(flusher.pump(t0));
  EXPECT_TRUE(flusher.lingering());
  EXPECT_FALSE(flusher.pump(t0 + 1000));  // still within the linger
  EXPECT_TRUE(flusher.lingering());
  map->ring(0).header().ack_waiters.fetch_add(1);  // as wait_durable does
  EXPECT_TRUE(flusher.pump(t0 + 2000));
  EXPECT_FALSE(flusher.lingering());
  map->ring(0).header().ack_waiters.fetch_sub(1);
  // And a producer's wait leaves the count as it found it.
  const PublishResult r = p.publish("", "second");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(p.wait_durable(r, std::chrono::milliseconds(1)), PublishStatus::timed_out);  // nobody completes the write
  EXPECT_EQ(map->ring(0).header().ack_waiters.load(), 0u);
}

// Disk full: the write fails, the error is logged once and published to
// waiters, the flusher retries, and once the disk has room again everything
// is written, nothing lost or doubled.
TEST(FlusherFaults, DiskFullIsReportedOnceAndTheFlusherResumes) {
  const std::string instance = unique_instance("full");
  auto b = Broker::start({instance});
  ASSERT_TRUE(b.ok());
  TopicConfig c = topic("t", 1, 64 * 1024, 1024);
  ASSERT_TRUE(b->create_topic(c).ok());
  auto map = detail::TopicMap::open(instance, "t").value();
  map->ring(0).header().log_durability.store(static_cast<std::uint32_t>(detail::LogDurability::synced));
  auto mem = std::make_unique<log::MemoryIo>();
  log::MemoryIo* raw = mem.get();
  // Writes 1-3 create the first segment's files; 4 is the leader-epoch file
  // (written as the first batch is placed), 5 the first batch.
  raw->inject({5, -ENOSPC, 100});
  std::vector<std::string> lines;
  std::mutex mu;
  c.log.durability = Durability::every_ack;
  auto log = io::PartitionLog::open(*raw, "/mem/t/0", io::LogSettings::from(c.log), 0, nullptr);
  ASSERT_TRUE(log.ok());
  io::FlusherThread flusher(std::move(mem), [&](const char* level, const std::string& m) {
    std::lock_guard lock(mu);
    lines.push_back(std::string(level) + ": " + m);
  });
  flusher.add(map, 0, std::move(log.value()), c.log, nullptr);
  Producer p = std::move(Producer::open(instance, "t").value());
  PublishResult last;
  for (std::uint64_t i = 0; i < 50; ++i) {
    last = p.publish("", "value-" + std::to_string(i));
    ASSERT_TRUE(last.ok());
    PublishStatus s;
    while ((s = p.wait_durable(last, std::chrono::seconds(10))) == PublishStatus::log_failed) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(s, PublishStatus::ok);
  }
  flusher.stop();
  std::lock_guard lock(mu);
  int errors = 0;
  int resumed = 0;
  for (const std::string& l : lines) {
    errors += l.find("No space left on device") != std::string::npos;
    resumed += l.find("resumed") != std::string::npos;
  }
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(resumed, 1);
  log::LogReader r(*raw, "/mem/t/0");
  ASSERT_EQ(r.seek(0), log::ReadStatus::batch);
  std::uint64_t next = 0;
  log::DecodedBatch batch;
  while (r.next(UINT64_MAX, batch) == log::ReadStatus::batch) {
    log::for_each_record(batch, 0, [&](const Record& rec) {
      EXPECT_EQ(rec.offset, next);
      EXPECT_EQ(rec.value, "value-" + std::to_string(next));
      ++next;
    });
  }
  EXPECT_EQ(next, 50u);
}

}  // namespace
}  // namespace ringbus::test
