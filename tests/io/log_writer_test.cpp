// The log writer with batches from elsewhere (a mirror's appends), on the
// in-memory backend: batches kept at their offsets and epochs, one test per
// refusal, the leader-epoch file (kept, rebuilt when missing or damaged,
// trimmed by truncation and retention) and the epoch-end query mirrors ask.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "batch_codec.h"
#include "file_io.h"
#include "log_reader.h"
#include "log_writer.h"
#include "partition_log.h"
#include "record_batch.h"
#include "segment_files.h"

namespace ringbus::io {
namespace {

const std::string kDir = "/data/m/0";
const std::string kEpochFile = kDir + "/" + kEpochFileName;

struct Marks : LogWriter::Events {
  std::uint64_t written_to = 0;
  std::uint64_t cookie = 0;
  std::uint64_t durable_to = 0;
  int error = 0;
  void written(std::uint64_t offset, std::uint64_t c) override {
    written_to = offset;
    cookie = c;
  }
  void durable(std::uint64_t offset) override { durable_to = offset; }
  void failed(int err) override { error = err; }
  void start_moved(std::uint64_t) override {}
};

// A batch of `records` records from `base`, stamped with `epoch`, as a
// leader would ship it.
std::vector<std::byte> leader_batch(std::uint64_t base, std::uint32_t records, std::int32_t epoch,
                                    log::v2::Compression codec = log::v2::Compression::none) {
  log::v2::BatchBuilder b;
  b.reset(base, epoch, codec);
  for (std::uint32_t i = 0; i < records; ++i) {
    b.append(base + i, 1'700'000'000'000 + static_cast<std::int64_t>(base + i), "k", "value-" + std::to_string(base + i));
  }
  const auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

class LogWriterTest : public ::testing::Test {
 protected:
  log::MemoryIo io;
  Marks marks;
  std::unique_ptr<LogWriter> writer;
  LogConfig config;

  void open(std::uint64_t first_offset = 100, RecoveryReport* report = nullptr, std::uint64_t segment_bytes = 64 * 1024) {
    writer.reset();
    LogSettings s = LogSettings::from(config);
    s.segment_bytes = segment_bytes;
    s.preallocate = false;
    auto log = PartitionLog::open(io, kDir, s, first_offset, report);
    ASSERT_TRUE(log.ok()) << log.error().message;
    writer = std::make_unique<LogWriter>(std::move(log.value()), io, config, [](const char*, const std::string&) {}, 0,
                                         "partition 0 of topic 'm'", marks);
  }
  // Pumps and reaps until everything submitted is written.
  void drain() {
    for (int round = 0; round < 100 && writer->busy(); ++round) {
      (void)writer->pump(0, 0);
      log::IoCompletion done[8];
      const std::size_t n = io.reap(done, 0);
      for (std::size_t i = 0; i < n; ++i) writer->on_completion(done[i], 0);
    }
    ASSERT_FALSE(writer->busy());
  }
  void append(std::uint64_t base, std::uint32_t records, std::int32_t epoch) {
    const std::vector<std::byte> b = leader_batch(base, records, epoch);
    const Status s = writer->append(b, base);
    ASSERT_TRUE(s.ok()) << s.error().message;
    drain();
  }
  std::vector<std::pair<std::int32_t, std::uint64_t>> epochs() const {
    std::vector<std::pair<std::int32_t, std::uint64_t>> v;
    for (const LeaderEpoch& e : writer->log().epochs()) v.emplace_back(e.epoch, e.start_offset);
    return v;
  }
  // Every record the reader finds: offset, value and the batch's epoch.
  std::vector<std::uint64_t> read_offsets() {
    log::LogReader r(io, kDir);
    std::vector<std::uint64_t> offsets;
    EXPECT_EQ(r.seek(writer->log().start_offset()), log::ReadStatus::batch) << r.error();
    log::DecodedBatch b;
    while (r.next(UINT64_MAX, b) == log::ReadStatus::batch) {
      log::for_each_record(b, 0, [&](const Record& rec) {
        EXPECT_EQ(rec.value, "value-" + std::to_string(rec.offset));
        offsets.push_back(rec.offset);
      });
    }
    return offsets;
  }
  static std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> v;
    for (std::uint64_t o = from; o < to; ++o) v.push_back(o);
    return v;
  }
  void expect_refused(const std::vector<std::byte>& batch, Errc code, const std::string& words) {
    const std::uint64_t next = writer->next_offset();
    const Status s = writer->append(batch, 0);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, code) << s.error().message;
    EXPECT_NE(s.error().message.find(words), std::string::npos) << s.error().message;
    EXPECT_EQ(writer->next_offset(), next);
    EXPECT_FALSE(writer->busy());
  }
};

TEST_F(LogWriterTest, BatchesKeepTheirOffsetsAndEpochs) {
  config.durability = Durability::page_cache;
  open(100);
  append(100, 5, 0);
  append(105, 5, 0);
  append(110, 3, 3);
  append(113, 4, 5);
  EXPECT_EQ(writer->next_offset(), 117u);
  EXPECT_EQ(marks.written_to, 117u);
  EXPECT_EQ(marks.cookie, 113u);  // the cookie of the last batch written
  EXPECT_EQ(marks.durable_to, 117u);  // page_cache: written is durable
  EXPECT_EQ(writer->epoch(), 5);
  EXPECT_EQ(read_offsets(), range(100, 117));
  const std::vector<std::pair<std::int32_t, std::uint64_t>> want{{0, 100}, {3, 110}, {5, 113}};
  EXPECT_EQ(epochs(), want);
  // The file lasts a clean close and a reopen.
  ASSERT_TRUE(writer->close_clean().ok());
  RecoveryReport report;
  open(0, &report);
  EXPECT_TRUE(report.clean);
  EXPECT_TRUE(report.notes.empty());
  EXPECT_EQ(epochs(), want);
  EXPECT_EQ(writer->epoch(), 5);
  EXPECT_EQ(writer->next_offset(), 117u);
}

TEST_F(LogWriterTest, CompressedBatchesAreWrittenAsTheyCame) {
  open(0);
  const std::vector<std::byte> b = leader_batch(0, 50, 1, log::v2::Compression::zstd);
  ASSERT_TRUE(writer->append(b, 0).ok());
  drain();
  const std::vector<std::byte>& file = io.contents(writer->log().active_path());
  ASSERT_EQ(file.size(), sizeof(log::SegmentHeader) + b.size());
  EXPECT_EQ(std::memcmp(file.data() + sizeof(log::SegmentHeader), b.data(), b.size()), 0);
  EXPECT_EQ(read_offsets(), range(0, 50));
}

TEST_F(LogWriterTest, EndOfEpochIsWhereTheNextEpochBegins) {
  open(100);
  append(100, 10, 2);
  append(110, 10, 4);
  append(120, 10, 7);
  EXPECT_FALSE(writer->log().end_of_epoch(1).has_value());  // below every epoch the log has
  auto e = writer->log().end_of_epoch(2);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->epoch, 2);
  EXPECT_EQ(e->start_offset, 110u);
  e = writer->log().end_of_epoch(3);  // unknown here: the largest below it, and its end
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->epoch, 2);
  EXPECT_EQ(e->start_offset, 110u);
  e = writer->log().end_of_epoch(7);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->epoch, 7);
  EXPECT_EQ(e->start_offset, 130u);  // the latest ends at the log's end
  e = writer->log().end_of_epoch(9);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->epoch, 7);
  EXPECT_EQ(e->start_offset, 130u);
}

TEST_F(LogWriterTest, ABatchWithABadCrcIsRefused) {
  open(0);
  std::vector<std::byte> b = leader_batch(0, 3, 0);
  b.back() ^= std::byte{1};
  expect_refused(b, Errc::corrupt, "CRC");
}

TEST_F(LogWriterTest, ABatchThatDoesNotContinueTheLogIsRefused) {
  open(0);
  append(0, 3, 0);
  expect_refused(leader_batch(4, 3, 0), Errc::invalid_argument, "continues at 3");
  expect_refused(leader_batch(2, 3, 0), Errc::invalid_argument, "starts at offset 2");
  append(3, 1, 0);  // the right one still goes on
  EXPECT_EQ(read_offsets(), range(0, 4));
}

TEST_F(LogWriterTest, AnEpochThatGoesDownIsRefused) {
  open(0);
  append(0, 3, 4);
  expect_refused(leader_batch(3, 3, 3), Errc::invalid_argument, "epochs never go down");
  expect_refused(leader_batch(3, 3, -1), Errc::invalid_argument, "no leader epoch");
}

TEST_F(LogWriterTest, BytesBeyondTheBatchLengthAreRefused) {
  open(0);
  std::vector<std::byte> b = leader_batch(0, 3, 0);
  b.resize(b.size() + 7);
  expect_refused(b, Errc::invalid_argument, "by its batchLength");
  b.resize(b.size() - 8);
  expect_refused(b, Errc::corrupt, "truncated");
}

TEST_F(LogWriterTest, WithEverySlotInFlightAppendSaysBusy) {
  open(0);
  std::uint64_t next = 0;
  Status s;
  for (int i = 0; i < 16 && (s = writer->append(leader_batch(next, 1, 0), 0)).ok(); ++i) ++next;
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::busy) << s.error().message;
  drain();
  EXPECT_EQ(read_offsets(), range(0, next));
}

// A mirror's writer writes from its receive buffer (Hold::borrow): a batch
// whose write failed (a full disk) is kept, copied, before the buffer is
// used again, and its retry writes the bytes as they came.
TEST_F(LogWriterTest, BorrowedBatchesAreKeptBeforeTheirBytesChange) {
  config.durability = Durability::page_cache;
  open(0);
  std::vector<std::byte> a = leader_batch(0, 3, 0), b = leader_batch(3, 3, 0);
  // a's write, the second at the pump (the log records epoch 0 first).
  io.inject({io.writes() + 2, -ENOSPC, 0});
  ASSERT_TRUE(writer->append(a, 0, LogWriter::Hold::borrow).ok());
  ASSERT_TRUE(writer->append(b, 0, LogWriter::Hold::borrow).ok());
  (void)writer->pump(0, 0);
  log::IoCompletion done[8];
  for (std::size_t i = 0, n = io.reap(done, 0); i < n; ++i) writer->on_completion(done[i], 0);
  ASSERT_EQ(marks.error, ENOSPC);
  ASSERT_TRUE(writer->busy());
  writer->keep_borrowed();
  std::fill(a.begin(), a.end(), std::byte{0xEE});  // the buffer, used again
  std::fill(b.begin(), b.end(), std::byte{0xEE});
  for (std::int64_t now = 0; writer->busy() && now < 10'000'000'000; now += 10'000'000) {
    (void)writer->pump(now, 0);
    for (std::size_t i = 0, n = io.reap(done, 0); i < n; ++i) writer->on_completion(done[i], now);
  }
  ASSERT_FALSE(writer->busy());
  EXPECT_EQ(marks.written_to, 6u);
  EXPECT_EQ(read_offsets(), range(0, 6));
}

TEST_F(LogWriterTest, EveryAckSyncsBeforeTheDurableMarkMoves) {
  config.durability = Durability::every_ack;
  open(0);
  ASSERT_TRUE(writer->append(leader_batch(0, 3, 0), 0).ok());
  (void)writer->pump(0, 0);
  log::IoCompletion done[4];
  ASSERT_EQ(io.reap(done, 1), 1u);
  const std::uint64_t syncs = io.syncs();
  writer->on_completion(done[0], 0);  // the write: a sync is queued
  EXPECT_EQ(marks.written_to, 3u);
  EXPECT_EQ(marks.durable_to, 0u);
  ASSERT_EQ(io.reap(done, 1), 1u);
  writer->on_completion(done[0], 0);
  EXPECT_GT(io.syncs(), syncs);
  EXPECT_EQ(marks.durable_to, 3u);
}

TEST_F(LogWriterTest, AMissingEpochFileIsRebuiltFromTheBatches) {
  open(0, nullptr, 1024);  // small segments: epochs change inside and across segments
  std::uint64_t next = 0;
  for (std::int32_t epoch : {0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 5, 5, 5, 5, 5, 5, 6}) {
    append(next, 10, epoch);
    next += 10;
  }
  ASSERT_GT(writer->log().segment_count(), 3u);
  const auto want = epochs();
  ASSERT_EQ(want.size(), 5u);
  ASSERT_TRUE(writer->close_clean().ok());
  ASSERT_TRUE(io.remove(kEpochFile).ok());
  RecoveryReport report;
  open(0, &report, 1024);
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_NE(report.notes[0].find("missing; rebuilt from the batches (5 epochs)"), std::string::npos) << report.notes[0];
  EXPECT_EQ(epochs(), want);
}

TEST_F(LogWriterTest, ADamagedEpochFileIsRebuilt) {
  open(0);
  append(0, 5, 0);
  append(5, 5, 2);
  const auto want = epochs();
  ASSERT_TRUE(writer->close_clean().ok());
  for (const std::size_t at : {std::size_t{3}, std::size_t{30}}) {  // the magic; an entry (the CRC catches it)
    writer.reset();
    std::vector<std::byte> bytes = io.contents(kEpochFile);
    bytes[at] ^= std::byte{0x40};
    auto fd = io.open(kEpochFile, false);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(io.write_now(fd.value(), 0, bytes).ok());
    io.close(fd.value());
    RecoveryReport report;
    open(0, &report);
    ASSERT_EQ(report.notes.size(), 1u);
    EXPECT_NE(report.notes[0].find("rebuilt from the batches"), std::string::npos) << report.notes[0];
    EXPECT_EQ(epochs(), want);
    ASSERT_TRUE(writer->close_clean().ok());
  }
}

TEST_F(LogWriterTest, AnEpochFileBehindTheLastBatchIsRebuiltAfterACrash) {
  open(0);
  append(0, 5, 0);
  const std::vector<std::byte> old_file = io.contents(kEpochFile);
  append(5, 5, 3);
  writer.reset();
  // The file as before epoch 3 (its write lost), the batch of epoch 3 on disk.
  auto fd = io.open(kEpochFile, false);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(io.truncate(fd.value(), 0).ok());
  ASSERT_TRUE(io.write_now(fd.value(), 0, old_file).ok());
  ASSERT_TRUE(io.sync_now(fd.value()).ok());
  io.close(fd.value());
  RecoveryReport report;
  open(0, &report);
  EXPECT_FALSE(report.clean);
  ASSERT_FALSE(report.notes.empty());
  EXPECT_NE(report.notes.back().find("behind the log's last batch"), std::string::npos) << report.notes.back();
  EXPECT_EQ(writer->epoch(), 3);
}

TEST_F(LogWriterTest, TruncationDropsTheEpochsThatBeganPastTheNewEnd) {
  open(0);
  append(0, 10, 0);
  append(10, 10, 2);
  append(20, 10, 4);
  append(30, 10, 4);
  auto end = writer->truncate_to(25);  // inside the batch of 20..29: it goes
  ASSERT_TRUE(end.ok()) << end.error().message;
  EXPECT_EQ(end.value(), 20u);
  const std::vector<std::pair<std::int32_t, std::uint64_t>> want{{0, 0}, {2, 10}};
  EXPECT_EQ(epochs(), want);
  EXPECT_EQ(writer->epoch(), 2);
  EXPECT_EQ(writer->next_offset(), 20u);
  EXPECT_EQ(writer->written(), 20u);
  // A mirror goes on with the new leader's epoch; the file names it at
  // once, but a crash before the batch was synced loses the batch: the
  // epoch goes with it at the next open.
  append(20, 5, 6);
  EXPECT_EQ(writer->epoch(), 6);
  writer.reset();
  io.crash();
  RecoveryReport report;
  open(0, &report);
  EXPECT_EQ(epochs(), want);
  EXPECT_EQ(read_offsets(), range(0, 20));
}

TEST_F(LogWriterTest, TruncationIsRefusedWhileWritesAreInFlight) {
  open(0);
  append(0, 10, 0);
  ASSERT_TRUE(writer->append(leader_batch(10, 1, 0), 0).ok());
  auto end = writer->truncate_to(5);
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.error().code, Errc::busy);
  drain();
}

TEST_F(LogWriterTest, RetentionTrimsTheEpochsBelowTheNewStart) {
  config.retention_bytes = 1;  // every segment but the active one goes
  open(0, nullptr, 1024);
  std::uint64_t next = 0;
  for (std::int32_t epoch : {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 3}) {
    append(next, 10, epoch);
    next += 10;
  }
  ASSERT_GT(writer->log().segment_count(), 2u);
  (void)writer->pump(10'000'000'000, 0);  // retention is due again
  ASSERT_EQ(writer->log().segment_count(), 1u);
  const std::uint64_t start = writer->log().start_offset();
  ASSERT_GT(start, 40u);
  const auto got = epochs();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front().second, start);
  EXPECT_EQ(got.back(), (std::pair<std::int32_t, std::uint64_t>{3, 120}));
  for (const auto& e : got) EXPECT_GE(e.first, 1);  // epoch 0 is wholly gone
}

}  // namespace
}  // namespace ringbus::io
