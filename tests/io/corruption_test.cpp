// One test per kind of damage to a real log on disk: the consumer reads
// everything around the damage, reports it once (with the range lost), and
// never loops; the broker starts and serves what is intact.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../bus/test_support.h"
#include "log_fixture.h"
#include "log_format.h"
#include "ringbus/broker.h"
#include "segment_files.h"

namespace ringbus::test {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kRecords = 3000;  // ~3 MiB: three 1 MiB segments

struct Damage : LogFixture {
  Damage() : LogFixture("damage") {}
  static std::string value(std::uint64_t i) { return std::string(1000, static_cast<char>('a' + i % 26)) + std::to_string(i); }
  // A log of kRecords records in partition 0 of topic t (two partitions),
  // written by a broker that then stops cleanly.
  void write_log() {
    Broker b = start();
    TopicConfig c = topic("t", 2, 1 << 20, 4096);
    c.log.segment_bytes = 1 << 20;
    c.log.durability = Durability::page_cache;
    ASSERT_TRUE(b.create_topic(c).ok());
    auto p = Producer::open(instance, "t");
    ASSERT_TRUE(p.ok());
    PublishResult last;
    for (std::uint64_t i = 0; i < kRecords; ++i) {
      last = p->publish("", value(i), {}, 0);
      ASSERT_TRUE(last.ok()) << to_string(last.status);
      ASSERT_TRUE(p->publish("", value(i), {}, 1).ok());
    }
    ASSERT_EQ(p->wait_durable(last, std::chrono::seconds(30)), PublishStatus::ok);
  }
  std::string partition_dir(int p) const { return (data / "t" / std::to_string(p)).string(); }
  std::vector<std::string> files(const std::string& ext, int partition = 0) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(partition_dir(partition))) {
      if (e.path().extension() == ext) out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  static void flip_bit(const std::string& path, std::uint64_t at) {
    const int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    unsigned char b = 0;
    ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(at)), 1);
    b ^= 0x10;
    ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(at)), 1);
    ::close(fd);
  }

  struct Read {
    std::vector<std::uint64_t> offsets;  // delivered, in order
    std::vector<PollResult> damage;      // each corrupt report
  };
  // Reads partition 0 from the earliest offset to its end.
  Read read_all(Broker& b) {
    Read out;
    const std::uint64_t end = b.describe_topic("t")->partition_info[0].end_offset;
    ConsumerOptions o = from_earliest();
    o.partitions = {0};
    auto c = Consumer::open(instance, "t", o);
    EXPECT_TRUE(c.ok());
    if (!c) return out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (c->position(0) < end && std::chrono::steady_clock::now() < deadline) {
      const PollResult r = c->poll([&](const Record& rec) {
        EXPECT_EQ(rec.value, value(rec.offset)) << rec.offset;
        out.offsets.push_back(rec.offset);
      });
      if (r.status == PollStatus::corrupt) out.damage.push_back(r);
      EXPECT_TRUE(r.status == PollStatus::ok || r.status == PollStatus::corrupt) << to_string(r.status);
      if (r.records == 0 && r.status == PollStatus::ok) (void)c->wait(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(c->position(0), end);
    return out;
  }
  // Every offset below the end is delivered once, in order, except those
  // the reports name as lost.
  static void expect_everything_around(const Read& r) {
    std::uint64_t next = 0;
    std::size_t d = 0;
    for (const std::uint64_t o : r.offsets) {
      while (d < r.damage.size() && next == r.damage[d].missed_from) next = r.damage[d++].resumed_at;
      ASSERT_EQ(o, next) << "a record lost without a report, or delivered twice";
      ++next;
    }
  }
};

TEST_F(Damage, ABitFlipInASealedSegmentIsReportedOnceAndReadAround) {
  write_log();
  const auto logs = files(".log");
  ASSERT_GE(logs.size(), 3u);
  flip_bit(logs[1], fs::file_size(logs[1]) / 2);
  Broker b = start();
  const Read r = read_all(b);
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_LT(r.damage[0].missed_from, r.damage[0].resumed_at);
  EXPECT_LT(r.damage[0].resumed_at - r.damage[0].missed_from, 1100u);  // one batch, not the segment
  expect_everything_around(r);
  EXPECT_EQ(r.offsets.size(), kRecords - (r.damage[0].resumed_at - r.damage[0].missed_from));
}

// The broker's scrubber reads sealed segments back on its own: it finds the
// damage before any consumer, reports it once however many passes see it,
// and notices when the file is restored.
TEST_F(Damage, TheScrubberFindsDamageInASealedSegmentAndReportsItOnce) {
  write_log();
  const auto logs = files(".log");
  ASSERT_GE(logs.size(), 3u);
  const std::uint64_t at = fs::file_size(logs[1]) / 2;
  flip_bit(logs[1], at);
  configure = [](BrokerOptions& o) { o.scrub_interval = std::chrono::nanoseconds(0); };  // passes back to back
  Broker b = start();
  auto damaged = [&](std::uint32_t p) { return b.describe_topic("t")->partition_info[p].damaged_segments; };
  ASSERT_TRUE(eventually([&] { return damaged(0) == 1; }, std::chrono::seconds(30)));
  const std::uint64_t passes = b.scrub_stats().passes;
  ASSERT_TRUE(eventually([&] { return b.scrub_stats().passes >= passes + 2; }, std::chrono::seconds(30)));
  const ScrubStats s = b.scrub_stats();
  EXPECT_EQ(s.damaged_segments, 1u);
  EXPECT_EQ(damaged(1), 0u) << "the other partition is intact";
  EXPECT_GE(s.segments_checked, 4u) << "both partitions' sealed segments, each pass";
  EXPECT_GE(s.bytes_checked, 2u << 20);
  flip_bit(logs[1], at);  // restored
  EXPECT_TRUE(eventually([&] { return damaged(0) == 0; }, std::chrono::seconds(30)));
  b.close();
  const auto said = std::count_if(messages.begin(), messages.end(), [&](const std::string& m) {
    return m.starts_with("error: scrubber: partition 0 of topic 't'") && m.find(logs[1]) != std::string::npos &&
           m.find("byte ") != std::string::npos;
  });
  EXPECT_EQ(said, 1) << "once, naming the file and the byte";
  EXPECT_EQ(std::count_if(messages.begin(), messages.end(),
                          [&](const std::string& m) { return m.find("checks intact again") != std::string::npos; }),
            1);
}

// Its reads are paced: never more than the rate allows (plus the read that
// is paid for after the fact).
TEST_F(Damage, TheScrubberKeepsToItsRate) {
  write_log();
  configure = [](BrokerOptions& o) {
    o.scrub_bytes_per_second = 1 << 20;
    o.scrub_interval = std::chrono::nanoseconds(0);
  };
  const auto t0 = std::chrono::steady_clock::now();
  Broker b = start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const std::uint64_t read = b.scrub_stats().bytes_checked;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT(read, 0u);
  EXPECT_LE(static_cast<double>(read), seconds * (1 << 20) + (1 << 20));
}

// A consumer starting at the earliest while retention deletes: the broker's
// log start (in the ring's header) moves only after the files are gone, so
// a start may find it stale. The files are the truth: the consumer starts
// at the first segment still there, not at what the ring holds.
TEST_F(Damage, AStartAtTheEarliestTakesTheFilesOverAStaleLogStart) {
  write_log();
  Broker b = start();
  const auto logs = files(".log");
  ASSERT_GE(logs.size(), 3u);
  ASSERT_EQ(b.describe_topic("t")->partition_info[0].log_start_offset, 0u);
  for (const char* ext : {".log", ".index", ".timeindex"}) {
    fs::remove(fs::path(logs[0]).replace_extension(ext));  // as retention does, before it moves the log start
  }
  const std::uint64_t second = std::stoull(fs::path(logs[1]).stem().string());
  ConsumerOptions o = from_earliest();
  o.partitions = {0};
  auto c = Consumer::open(instance, "t", o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  std::vector<std::uint64_t> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.empty() && std::chrono::steady_clock::now() < deadline) {
    const PollResult r = c->poll([&](const Record& rec) { got.push_back(rec.offset); });
    ASSERT_EQ(r.status, PollStatus::ok);
    if (r.records == 0) (void)c->wait(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(got.empty()) << "nothing read (started at the ring's end)";
  EXPECT_EQ(got.front(), second);
}

// The case of the report: byte 100 of the first segment (its first batch).
TEST_F(Damage, ABitFlipInTheFirstBatchDoesNotStopTheConsumer) {
  write_log();
  flip_bit(files(".log").front(), 100);
  Broker b = start();
  const Read r = read_all(b);
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].missed_from, 0u);
  EXPECT_GT(r.damage[0].resumed_at, 0u);
  expect_everything_around(r);
  EXPECT_GT(r.offsets.size(), kRecords - 1100);
}

TEST_F(Damage, ATruncatedIndexIsOnlyAHint) {
  write_log();
  for (const std::string& idx : files(".index")) fs::resize_file(idx, 10);
  Broker b = start();
  const Read r = read_all(b);
  EXPECT_TRUE(r.damage.empty());
  EXPECT_EQ(r.offsets.size(), kRecords);
  expect_everything_around(r);
}

TEST_F(Damage, ASegmentOfAnotherVersionIsSkippedWhole) {
  write_log();
  const auto logs = files(".log");
  ASSERT_GE(logs.size(), 3u);
  const int fd = ::open(logs[1].c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const std::uint32_t version = 99;
  ASSERT_EQ(::pwrite(fd, &version, sizeof version, offsetof(log::SegmentHeader, version)), 4);
  ::close(fd);
  Broker b = start();
  const Read r = read_all(b);
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].missed_from, std::stoull(fs::path(logs[1]).stem().string()));
  EXPECT_EQ(r.damage[0].resumed_at, std::stoull(fs::path(logs[2]).stem().string()));
  expect_everything_around(r);
}

// A crash right after a segment file was made leaves it empty: recovery
// gives it a header again, and the log goes on from its base.
TEST_F(Damage, AZeroLengthActiveSegmentIsRecoveredAsEmpty) {
  write_log();
  const auto logs = files(".log");
  fs::resize_file(logs.back(), 0);
  Broker b = start();
  const std::uint64_t base = std::stoull(fs::path(logs.back()).stem().string());
  EXPECT_EQ(b.describe_topic("t")->partition_info[0].end_offset, base);
  EXPECT_FALSE(b.describe_topic("t")->partition_info[0].offline);
  auto p = Producer::open(instance, "t");
  ASSERT_TRUE(p.ok());
  const PublishResult r = p->publish("", value(base), {}, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.offset, base);
  EXPECT_EQ(p->wait_durable(r, std::chrono::seconds(10)), PublishStatus::ok);
}

// A partition whose log cannot be opened (here: its active segment is of
// another format version, which is never "repaired") goes offline alone.
TEST_F(Damage, AnUnreadablePartitionGoesOfflineAloneAndTheBrokerServesTheRest) {
  write_log();
  const auto logs1 = files(".log", 1);
  const int fd = ::open(logs1.back().c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const std::uint32_t version = 99;
  ASSERT_EQ(::pwrite(fd, &version, sizeof version, offsetof(log::SegmentHeader, version)), 4);
  ::close(fd);
  Broker b = start();
  const TopicInfo info = b.describe_topic("t").value();
  EXPECT_FALSE(info.partition_info[0].offline);
  EXPECT_TRUE(info.partition_info[1].offline);
  EXPECT_NE(info.partition_info[1].log_error, 0);
  bool said = false;
  for (const std::string& m : messages) {
    said = said || (m.find(partition_dir(1) + " is offline") != std::string::npos && m.find("version") != std::string::npos &&
                    m.find("ringbus log verify") != std::string::npos);
  }
  EXPECT_TRUE(said) << "no log line names the partition, the cause and what to do";
  // The other partition is served: read and written.
  const Read r = read_all(b);
  EXPECT_TRUE(r.damage.empty());
  EXPECT_EQ(r.offsets.size(), kRecords);
  auto p = Producer::open(instance, "t");
  ASSERT_TRUE(p.ok());
  const PublishResult ok = p->publish("", value(kRecords), {}, 0);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(p->wait_durable(ok, std::chrono::seconds(10)), PublishStatus::ok);
  EXPECT_EQ(p->publish("", "x", {}, 1).status, PublishStatus::partition_offline);
  EXPECT_EQ(p->try_publish("", "x", {}, 1).status, PublishStatus::partition_offline);
}

}  // namespace
}  // namespace ringbus::test
