// Fault test on a real file system: the data directory is on a small tmpfs
// the test mounts (as root, which CI is), nearly filled by a filler file.
// Producers fill the disk; the flusher reports ENOSPC, waits without burning
// a core, and goes on by itself once the filler is removed; every published
// record ends up in the log, in order.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "../bus/stress_support.h"
#include "../bus/test_support.h"
#include "ringbus/broker.h"

namespace ringbus::test {
namespace {

namespace fs = std::filesystem;

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

PartitionInfo partition0(const Broker& b) { return b.describe_topic("t").value().partition_info[0]; }

// A tmpfs of 8 MiB the test mounts (root) and unmounts when it ends.
struct SmallDisk : ::testing::Test {
  std::string instance = unique_instance("disk");
  Tmpfs disk{fs::temp_directory_path() / ("ringbus-disk-" + instance), "8m"};
  const fs::path& mnt = disk.path;

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << disk.error;
    ASSERT_TRUE(disk.mounted()) << disk.error;
  }
};

TEST_F(SmallDisk, TheFlusherWaitsIdleAndGoesOnWhenSpaceReturns) {

  {
    BrokerOptions o{instance, (mnt / "data").string()};
    o.logger = [](const char*, const std::string&) {};
    auto b = Broker::start(o);
    ASSERT_TRUE(b.ok()) << b.error().message;
    TopicConfig c = topic("t", 1, 1 << 20, 4096);
    c.log.durability = Durability::page_cache;
    c.log.segment_bytes = 1 << 20;
    ASSERT_TRUE(b->create_topic(c).ok());

    // Leave about 1.5 MiB free.
    const fs::path filler = mnt / "filler";
    {
      std::ofstream f(filler, std::ios::binary);
      const std::string chunk(64 * 1024, 'x');
      while (f.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
      }
    }
    fs::resize_file(filler, fs::file_size(filler) - (3 << 19));

    auto p = Producer::open(instance, "t", {.publish_timeout = std::chrono::milliseconds(50)});
    ASSERT_TRUE(p.ok());
    const std::uint64_t total = 4000;  // ~4 MiB: more than is free
    std::uint64_t seq = 0;
    auto publish_some = [&](std::chrono::seconds limit) {
      const auto deadline = std::chrono::steady_clock::now() + limit;
      while (seq < total && std::chrono::steady_clock::now() < deadline) {
        const PublishResult r = p->publish("", stamped(0, seq, 1000));
        if (r.ok()) {
          ++seq;
        } else {
          ASSERT_EQ(r.status, PublishStatus::timed_out) << to_string(r.status);
        }
      }
    };
    publish_some(std::chrono::seconds(5));
    ASSERT_LT(seq, total) << "the disk never filled up";
    ASSERT_TRUE(eventually([&] { return partition0(*b).log_error == ENOSPC; }, std::chrono::seconds(10)))
        << "log_error " << partition0(*b).log_error;
    const std::uint64_t written_when_full = partition0(*b).written_offset;

    // Waiting for space is idle: the broker's threads (the flusher, the
    // group keeper) use little CPU while the test sleeps.
    const double before = cpu_seconds();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double used = cpu_seconds() - before;
    EXPECT_LT(used, 0.3) << "the flusher busy-loops on a full disk";
    EXPECT_EQ(partition0(*b).log_error, ENOSPC);
    EXPECT_EQ(partition0(*b).written_offset, written_when_full);

    // Space returns: the flusher goes on by itself.
    fs::remove(filler);
    publish_some(std::chrono::seconds(60));
    ASSERT_EQ(seq, total);
    ASSERT_TRUE(eventually([&] { return partition0(*b).written_offset == total; }, std::chrono::seconds(30)))
        << "written " << partition0(*b).written_offset;
    EXPECT_EQ(partition0(*b).log_error, 0);
    std::printf("disk full at offset %llu; CPU while waiting %.3f s/s; all %llu records written after space returned\n",
                static_cast<unsigned long long>(written_when_full), used, static_cast<unsigned long long>(total));
  }
  // A new broker recovers the whole log from the disk.
  BrokerOptions o{instance, (mnt / "data").string()};
  o.logger = [](const char*, const std::string&) {};
  auto b = Broker::start(o);
  ASSERT_TRUE(b.ok()) << b.error().message;
  auto c = Consumer::open(instance, "t", from_earliest());
  ASSERT_TRUE(c.ok());
  Checker check(1, 1);
  ASSERT_TRUE(eventually(
      [&] {
        const PollResult r = c->poll([&](const Record& rec) { check.on_record(rec); });
        EXPECT_EQ(r.status, PollStatus::ok);
        return check.records() == 4000 || !check.ok();
      },
      std::chrono::seconds(30)));
  EXPECT_TRUE(check.ok()) << check.error();
}

TEST_F(SmallDisk, ATopicLargerThanTheFreeDiskIsRefusedUpFront) {
  BrokerOptions o{instance, (mnt / "data").string()};
  o.logger = [](const char*, const std::string&) {};
  auto b = Broker::start(o);
  ASSERT_TRUE(b.ok()) << b.error().message;
  TopicConfig c = topic("big", 16, 64 * 1024, 1024);
  c.log.segment_bytes = 1 << 20;
  auto r = b->create_topic(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().message.find("need 16 MiB of disk"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("MiB free"), std::string::npos) << r.error().message;
  c.partitions = 2;
  c.name = "small";
  EXPECT_TRUE(b->create_topic(c).ok());
}

}  // namespace
}  // namespace ringbus::test
