// The file I/O backends: the same behaviour from io_uring, pwrite and memory,
// and the memory backend's faults and crashes.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "file_io.h"

namespace ringbus::log {
namespace {

// The backend of a kind; for io_uring, nullptr (and the reason) if the
// kernel refuses it here: the pwrite cases then cover the fallback.
std::unique_ptr<FileIo> make(const std::string& kind, std::string& unavailable) {
  if (kind == "pwrite") return make_pwrite_io();
  if (kind == "thread_read") return make_thread_read_io();
  if (kind == "memory") return std::make_unique<MemoryIo>();
  auto io = make_uring_io(8, &unavailable);  // small depth: exercises a full queue
  return unavailable.empty() ? std::move(io) : nullptr;
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed * 7) & 0xFF);
  return v;
}

class FileIoTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ringbus-io-" + std::to_string(::getpid()) + "-" + GetParam() + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    std::string unavailable;
    io_ = make(GetParam(), unavailable);
    if (!io_) GTEST_SKIP() << unavailable;
  }
  void TearDown() override {
    io_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<IoCompletion> reap_all() {
    std::vector<IoCompletion> all;
    IoCompletion buf[16];
    while (io_->pending() > 0) {
      const std::size_t n = io_->reap(buf, 1);
      all.insert(all.end(), buf, buf + n);
    }
    return all;
  }
  std::filesystem::path dir_;
  std::unique_ptr<FileIo> io_;
};

TEST_P(FileIoTest, ManyWritesInFlightLandWhereAsked) {
  auto f = io_->open(path("seg"), true);
  ASSERT_TRUE(f.ok()) << f.error().message;
  constexpr int kWrites = 64;  // more than the io_uring depth of 8
  std::vector<std::vector<std::byte>> chunks;
  for (int i = 0; i < kWrites; ++i) chunks.push_back(pattern(4096 + i, i));
  std::uint64_t at = 0;
  std::vector<std::uint64_t> offsets;
  for (int i = 0; i < kWrites; ++i) {
    offsets.push_back(at);
    ASSERT_TRUE(io_->write(*f, at, chunks[i], 1000 + i).ok());
    at += chunks[i].size();
  }
  const auto done = reap_all();
  ASSERT_EQ(done.size(), static_cast<std::size_t>(kWrites));
  std::vector<bool> seen(kWrites, false);
  for (const IoCompletion& c : done) {
    ASSERT_GE(c.tag, 1000u);
    const auto i = c.tag - 1000;
    EXPECT_EQ(c.result, static_cast<int>(chunks[i].size()));
    seen[i] = true;
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), kWrites);
  EXPECT_EQ(io_->size(*f).value(), at);
  for (int i = 0; i < kWrites; ++i) {
    std::vector<std::byte> back(chunks[i].size());
    ASSERT_EQ(io_->read(*f, offsets[i], back).value(), back.size());
    EXPECT_EQ(back, chunks[i]) << "write " << i;
  }
  io_->close(*f);
}

TEST_P(FileIoTest, SyncCompletesWithZero) {
  auto f = io_->open(path("seg"), true);
  ASSERT_TRUE(f.ok());
  const auto data = pattern(100, 1);
  ASSERT_TRUE(io_->write(*f, 0, data, 1).ok());
  ASSERT_EQ(reap_all().size(), 1u);
  ASSERT_TRUE(io_->sync(*f, 2).ok());
  const auto done = reap_all();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].tag, 2u);
  EXPECT_EQ(done[0].result, 0);
}

TEST_P(FileIoTest, ReadPastTheEndIsShortNotAnError) {
  auto f = io_->open(path("seg"), true);
  ASSERT_TRUE(f.ok());
  const auto data = pattern(10, 3);
  ASSERT_TRUE(io_->write(*f, 0, data, 1).ok());
  reap_all();
  std::vector<std::byte> back(100);
  EXPECT_EQ(io_->read(*f, 4, back).value(), 6u);
  EXPECT_EQ(io_->read(*f, 50, back).value(), 0u);
}

TEST_P(FileIoTest, ReadAheadCompletesWithTheBytesReadShortAtTheEnd) {
  auto f = io_->open(path("seg"), true);
  ASSERT_TRUE(f.ok());
  const auto data = pattern(3 << 20, 5);  // larger than one read is sure to return
  ASSERT_TRUE(io_->write(*f, 0, data, 1).ok());
  reap_all();
  std::vector<std::byte> whole(data.size() - 10);
  std::vector<std::byte> tail(100);
  ASSERT_TRUE(io_->read_async(*f, 10, whole, 7).ok());
  ASSERT_TRUE(io_->read_async(*f, data.size() - 4, tail, 8).ok());
  const auto done = reap_all();
  ASSERT_EQ(done.size(), 2u);
  for (const IoCompletion& c : done) {
    if (c.tag == 7) {
      EXPECT_EQ(c.result, static_cast<int>(whole.size()));
    } else {
      EXPECT_EQ(c.tag, 8u);
      EXPECT_EQ(c.result, 4);  // the end of the file: short, not an error
    }
  }
  EXPECT_TRUE(std::equal(whole.begin(), whole.end(), data.begin() + 10));
  EXPECT_TRUE(std::equal(tail.begin(), tail.begin() + 4, data.end() - 4));
}

TEST_P(FileIoTest, TruncateAndPreallocate) {
  auto f = io_->open(path("seg"), true);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(io_->allocate(*f, 0, 1 << 20).ok());
  ASSERT_TRUE(io_->allocate(*f, 1 << 20, 2 << 20).ok());
  EXPECT_EQ(io_->size(*f).value(), 0u);  // preallocation does not change the size
  const auto data = pattern(1000, 4);
  ASSERT_TRUE(io_->write(*f, 0, data, 1).ok());
  reap_all();
  ASSERT_TRUE(io_->truncate(*f, 300).ok());
  EXPECT_EQ(io_->size(*f).value(), 300u);
}

TEST_P(FileIoTest, OpeningAMissingFileNamesIt) {
  auto f = io_->open(path("nope"), false);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, Errc::not_found);
  EXPECT_NE(f.error().message.find("nope"), std::string::npos) << f.error().message;
}

INSTANTIATE_TEST_SUITE_P(Backends, FileIoTest, ::testing::Values("io_uring", "pwrite", "thread_read", "memory"),
                         [](const auto& info) { return info.param == "io_uring" ? std::string("uring") : info.param; });

// ---- the memory backend's faults ------------------------------------------

TEST(MemoryIo, InjectedEnospcCompletesWithTheErrorAfterPartOfTheWriteLanded) {
  MemoryIo io;
  io.inject({2, -ENOSPC, 10});
  const int f = io.open("seg", true).value();
  const auto a = pattern(100, 1);
  const auto b = pattern(100, 2);
  ASSERT_TRUE(io.write(f, 0, a, 1).ok());
  ASSERT_TRUE(io.write(f, 100, b, 2).ok());
  IoCompletion c[2];
  ASSERT_EQ(io.reap(c, 2), 2u);
  EXPECT_EQ(c[0].result, 100);
  EXPECT_EQ(c[1].result, -ENOSPC);
  EXPECT_EQ(io.contents("seg").size(), 110u);  // the first 10 bytes of the failed write landed
}

TEST(MemoryIo, CrashLosesWhatWasNotSynced) {
  MemoryIo io;
  const int f = io.open("seg", true).value();
  ASSERT_TRUE(io.sync_directory("").ok());
  const auto a = pattern(100, 1);
  ASSERT_TRUE(io.write(f, 0, a, 1).ok());
  ASSERT_TRUE(io.sync(f, 2).ok());
  const auto b = pattern(100, 2);
  ASSERT_TRUE(io.write(f, 100, b, 3).ok());
  io.crash();
  EXPECT_EQ(io.contents("seg"), a);
  EXPECT_EQ(io.pending(), 0u);  // completions of the lost process are gone too
}

TEST(MemoryIo, CrashCanTearTheFirstUnsyncedWrite) {
  MemoryIo io;
  const int f = io.open("seg", true).value();
  ASSERT_TRUE(io.sync_directory("").ok());
  const auto a = pattern(100, 1);
  const auto b = pattern(100, 2);
  ASSERT_TRUE(io.write(f, 0, a, 1).ok());
  ASSERT_TRUE(io.write(f, 100, b, 2).ok());
  io.crash(/*torn_bytes=*/30);
  const auto& left = io.contents("seg");
  ASSERT_EQ(left.size(), 30u);
  EXPECT_TRUE(std::equal(left.begin(), left.end(), a.begin()));
}

// Names are durable once their directory is synced, as on a real file
// system: a crash drops files created since, and brings back files removed
// since (as they were last synced).
TEST(MemoryIo, CrashKeepsTheDirectoryAsLastSynced) {
  MemoryIo io;
  const auto a = pattern(100, 1);
  const int old_file = io.open("d/old", true).value();
  ASSERT_TRUE(io.write_now(old_file, 0, a).ok());
  ASSERT_TRUE(io.sync_now(old_file).ok());
  ASSERT_TRUE(io.sync_directory("d").ok());
  io.close(old_file);
  const int synced = io.open("d/synced", true).value();
  ASSERT_TRUE(io.sync_now(synced).ok());  // its data, not its name
  ASSERT_TRUE(io.remove("d/old").ok());
  const int other = io.open("e/kept", true).value();
  ASSERT_TRUE(io.sync_directory("e").ok());  // another directory's sync covers only it
  io.crash();
  EXPECT_EQ(io.list("d").value(), std::vector<std::string>{"old"});
  EXPECT_EQ(io.contents("d/old"), a);
  EXPECT_EQ(io.list("e").value(), std::vector<std::string>{"kept"});
  EXPECT_FALSE(io.size(synced).ok()) << "the handle of a file that is gone";
  EXPECT_TRUE(io.size(other).ok());
  // Once the directory is synced, removal and creation last.
  const int now = io.open("d/new", true).value();
  ASSERT_TRUE(io.remove("d/old").ok());
  ASSERT_TRUE(io.sync_directory("d").ok());
  io.crash();
  EXPECT_EQ(io.list("d").value(), std::vector<std::string>{"new"});
  EXPECT_TRUE(io.size(now).ok());
}

TEST(UringIo, FallbackWarningIsEmptyWhenIoUringWorks) {
  std::string warning;
  auto io = make_uring_io(4, &warning);
  // On a kernel without io_uring this names the reason and gives pwrite.
  if (warning.empty()) {
    EXPECT_STREQ(io->name(), "io_uring");
  } else {
    EXPECT_STREQ(io->name(), "pwrite");
  }
}

}  // namespace
}  // namespace ringbus::log
