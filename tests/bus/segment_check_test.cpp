// The segment check (`ringbus log dump|verify`, the scrubber): a log the broker wrote checks clean;
// each kind of damage is reported naming the file and the byte or entry.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "../bus/test_support.h"
#include "record_batch.h"
#include "segment_check.h"
#include "segment_files.h"
#include "ringbus/broker.h"
#include "ringbus/producer.h"

namespace ringbus::test {
namespace {

namespace fs = std::filesystem;
using log::check_path;
using log::CheckOptions;
using log::SegmentReport;

struct SegmentCheck : ::testing::Test {
  std::string instance = unique_instance("check");
  fs::path data = fs::path("/var/tmp") / ("ringbus-check-" + instance);
  fs::path partition = data / "t" / "0";

  // A log of 3 segments (1 MiB each) holding `n` records, closed cleanly.
  void SetUp() override {
    auto b = Broker::start(BrokerOptions{instance, data.string()});
    ASSERT_TRUE(b) << b.error().message;
    TopicConfig c = topic("t", 1, 1 << 20, 8192);
    c.log.segment_bytes = 1 << 20;
    c.log.index_interval_bytes = 4096;
    ASSERT_TRUE(b->create_topic(c));
    auto p = Producer::open(instance, "t");
    ASSERT_TRUE(p);
    const std::string v(1000, 'v');
    PublishResult last;
    for (int i = 0; i < n; ++i) {
      last = p->publish("k" + std::to_string(i), v);
      ASSERT_TRUE(last.ok());
    }
    ASSERT_EQ(p->wait_durable(last, std::chrono::seconds(30)), PublishStatus::ok);
    b->close();
  }
  void TearDown() override { fs::remove_all(data); }

  std::vector<log::SegmentReport> check() {
    auto r = log::check_path(partition.string(), log::CheckOptions{});
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? r.value() : std::vector<log::SegmentReport>{};
  }
  static std::string problems(const std::vector<log::SegmentReport>& reports) {
    std::string s;
    for (const auto& r : reports) {
      for (const auto& p : r.problems) s += p + "\n";
    }
    return s;
  }
  fs::path segment(std::size_t i) {
    std::vector<fs::path> logs;
    for (const auto& e : fs::directory_iterator(partition)) {
      if (e.path().extension() == ".log") logs.push_back(e.path());
    }
    std::sort(logs.begin(), logs.end());
    return logs.at(i);
  }
  static void write_byte(const fs::path& p, std::uint64_t at, char c) {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at));
    f.put(c);
  }
  static constexpr int n = 2500;
};

TEST_F(SegmentCheck, ACleanLogHasNoProblemsAndEveryRecord) {
  const auto reports = check();
  ASSERT_GE(reports.size(), 2u);
  EXPECT_EQ(problems(reports), "");
  std::uint64_t records = 0;
  for (const auto& r : reports) records += r.records;
  EXPECT_EQ(records, static_cast<std::uint64_t>(n));
  EXPECT_EQ(reports.back().end_offset, static_cast<std::uint64_t>(n));
}

TEST_F(SegmentCheck, DumpSeesEveryRecordInOrder) {
  std::uint64_t next = 0;
  log::CheckOptions o;
  o.on_record = [&](const Record& r) {
    EXPECT_EQ(r.offset, next);
    EXPECT_EQ(r.key, "k" + std::to_string(next));
    ++next;
  };
  ASSERT_TRUE(log::check_path(partition.string(), o));
  EXPECT_EQ(next, static_cast<std::uint64_t>(n));
}

TEST_F(SegmentCheck, BitFlipInTheMiddleIsABadCrcAtItsBatch) {
  // Inside the data, wherever the first segment's data ends (the flusher's
  // batching decides), with a byte that differs from what is there.
  const auto before = check();
  ASSERT_FALSE(before.empty());
  ASSERT_GT(before[0].data_end, 1000u);
  const std::uint64_t mid = before[0].data_end / 2;
  char old = 0;
  std::ifstream(segment(0), std::ios::binary).seekg(static_cast<std::streamoff>(mid)).get(old);
  write_byte(segment(0), mid, static_cast<char>(~old));
  const std::string p = problems(check());
  EXPECT_NE(p.find(segment(0).string() + ": byte "), std::string::npos) << p;
  EXPECT_NE(p.find("CRC"), std::string::npos) << p;
}

// The v2 CRC leaves the leader epoch out: a batch whose epoch is below the
// one before it, in a segment or across two, is named.
TEST_F(SegmentCheck, ALeaderEpochThatGoesDownAcrossSegmentsIsNamed) {
  std::uint64_t last = 0;  // the position of segment 0's last batch
  log::CheckOptions o;
  o.check_indexes = false;
  o.on_batch = [&](const log::BatchSummary& b) { last = b.position; };
  ASSERT_TRUE(log::check_path(segment(0).string(), o));
  ASSERT_GT(last, 0u);
  write_byte(segment(0), last + 15, 5);  // partitionLeaderEpoch: bytes 12-15, big-endian
  const std::string p = problems(check());
  EXPECT_NE(p.find(segment(1).string() + ": its first batch has leader epoch 0, below the segment before's 5"),
            std::string::npos)
      << p;
}

TEST_F(SegmentCheck, ALeaderEpochThatGoesDownInASegmentIsNamed) {
  const fs::path file = data / "00000000000000000000.log";
  std::ofstream out(file, std::ios::binary);
  const log::SegmentHeader h = log::make_segment_header(0, 0);
  out.write(reinterpret_cast<const char*>(&h), sizeof h);
  std::uint64_t second = sizeof h;
  for (const std::int32_t epoch : {4, 2}) {
    log::v2::BatchBuilder b;
    const std::uint64_t base = epoch == 4 ? 0 : 2;
    b.reset(base, epoch);
    b.append(base, 1, "k", "v");
    b.append(base + 1, 2, "k", "v");
    const auto bytes = b.finish();
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (epoch == 4) second += bytes.size();
  }
  out.close();
  log::CheckOptions o;
  o.check_indexes = false;
  auto reports = log::check_path(file.string(), o);
  ASSERT_TRUE(reports);
  const std::string p = problems(reports.value());
  EXPECT_NE(p.find(file.string() + ": byte " + std::to_string(second) +
                   ": leader epoch 2 below the previous batch's 4 (epochs never go down)"),
            std::string::npos)
      << p;
}

TEST_F(SegmentCheck, WrongMagicIsNamed) {
  write_byte(segment(1), 0, 'Z');
  EXPECT_NE(problems(check()).find("bad magic"), std::string::npos);
}

TEST_F(SegmentCheck, MissingIndexIsAProblem) {
  fs::path idx = segment(0);
  idx.replace_extension(".index");
  fs::remove(idx);
  EXPECT_NE(problems(check()).find(idx.string() + ": missing"), std::string::npos);
}

TEST_F(SegmentCheck, IndexPointingPastTheEndIsAProblem) {
  fs::path idx = segment(0);
  idx.replace_extension(".index");
  std::ofstream(idx, std::ios::app | std::ios::binary).write("\x01\x00\x00\x00\xff\xff\xff\x7f", 8);
  const std::string p = problems(check());
  EXPECT_NE(p.find("points past the end of the data"), std::string::npos) << p;
}

TEST_F(SegmentCheck, NotASegmentIsAClearError) {
  auto r = log::check_path((data / "nope").string(), log::CheckOptions{});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no such segment file or partition directory"), std::string::npos);
  auto empty = log::check_path(data.string(), log::CheckOptions{});
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("no segment files"), std::string::npos);
}

}  // namespace
}  // namespace ringbus::test
