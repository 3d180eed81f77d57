// The commit log's writer, reader and recovery, on the in-memory backend:
// appends read back across segments, seeks by offset and time, a clean
// reopen reads no data, and one test per corruption case recovery handles.
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "batch_codec.h"
#include "file_io.h"
#include "log_reader.h"
#include "partition_log.h"
#include "record_batch.h"
#include "segment_check.h"
#include "segment_files.h"
#include "sync.h"

namespace ringbus::io {
namespace {

const std::string kDir = "/data/t/0";

LogSettings small_segments(std::uint64_t bytes = 64 * 1024) {
  LogSettings s;
  s.segment_bytes = bytes;
  s.index_interval_bytes = 1024;
  return s;
}

class PartitionLogTest : public ::testing::Test {
 protected:
  log::MemoryIo io;
  std::unique_ptr<PartitionLog> log;
  std::uint64_t next = 0;
  std::int64_t clock_ms = 1'000'000;  // record o has timestamp clock_ms + o, in milliseconds

  void open(LogSettings s = small_segments(), RecoveryReport* report = nullptr) {
    log.reset();
    auto r = PartitionLog::open(io, kDir, s, 0, report);
    ASSERT_TRUE(r.ok()) << r.error().message;
    log = std::move(r.value());
    next = log->end_offset();
  }
  // Appends a batch of `records` records of `value_size` bytes; `sync`
  // makes it survive a MemoryIo crash.
  void append(std::uint32_t records, std::size_t value_size = 100, bool sync = true) {
    log::v2::BatchBuilder b;
    b.reset(next);
    for (std::uint32_t i = 0; i < records; ++i) {
      b.append(next + i, clock_ms++, "k", std::string(value_size, static_cast<char>('a' + (next + i) % 26)));
    }
    std::vector<std::byte> bytes(b.finish().begin(), b.finish().end());
    if (log->should_roll(bytes.size(), 0)) {
      ASSERT_TRUE(log->roll(0).ok());
    }
    const auto place = log->append(bytes);
    ASSERT_TRUE(io.write(place.file, place.position, bytes, 1).ok());
    log::IoCompletion c[4];
    ASSERT_EQ(io.reap(c, 1), 1u);
    ASSERT_GT(c[0].result, 0);
    if (sync) {
      ASSERT_TRUE(io.sync_now(place.file).ok());
    }
    next += records;
  }
  // Every offset a reader finds from `from`, in order.
  std::vector<std::uint64_t> read_all(std::uint64_t from = 0, std::uint64_t limit = UINT64_MAX) {
    log::LogReader r(io, kDir);
    return read_with(r, from, limit);
  }
  static std::vector<std::uint64_t> read_with(log::LogReader& r, std::uint64_t from, std::uint64_t limit = UINT64_MAX) {
    std::vector<std::uint64_t> offsets;
    EXPECT_EQ(r.seek(from), log::ReadStatus::batch) << r.error();
    log::DecodedBatch b;
    log::ReadStatus s;
    while ((s = r.next(limit, b)) == log::ReadStatus::batch) {
      log::for_each_record(b, 0, [&](const Record& rec) {
        if (rec.offset >= from) offsets.push_back(rec.offset);
      });
    }
    EXPECT_EQ(s, log::ReadStatus::end) << r.error();
    return offsets;
  }
  // A batch of two records at `base`, placed in the log but not yet written
  // (a write in flight), and its write.
  struct Placed {
    std::vector<std::byte> bytes;
    PartitionLog::Placement place;
  };
  Placed place_batch(std::uint64_t base) {
    log::v2::BatchBuilder b;
    b.reset(base);
    for (std::uint64_t o = base; o < base + 2; ++o) b.append(o, clock_ms++, "k", "v" + std::to_string(o));
    Placed p{std::vector<std::byte>(b.finish().begin(), b.finish().end()), {}};
    p.place = log->append(p.bytes);
    return p;
  }
  void write_placed(const Placed& p) {
    ASSERT_TRUE(io.write(p.place.file, p.place.position, p.bytes, 1).ok());
    log::IoCompletion c[1];
    ASSERT_EQ(io.reap(c, 1), 1u);
  }
  static std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> v;
    for (std::uint64_t o = from; o < to; ++o) v.push_back(o);
    return v;
  }
  std::string last_segment() { return log::segment_path(kDir, log::list_segments(io, kDir).value().back(), log::kLogExt); }
  void overwrite(const std::string& path, std::uint64_t at, std::span<const std::byte> bytes) {
    auto fd = io.open(path, false);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(io.write_now(fd.value(), at, bytes).ok());
    ASSERT_TRUE(io.sync_now(fd.value()).ok());
    io.close(fd.value());
  }
  // A crash: the log is dropped without its clean marker.
  void crash(std::size_t torn = 0) {
    log.reset();
    io.crash(torn);
  }
};

TEST_F(PartitionLogTest, AppendedBatchesReadBackInOrder) {
  open();
  for (int i = 0; i < 50; ++i) append(3);
  EXPECT_EQ(log->end_offset(), 150u);
  EXPECT_EQ(read_all(), range(0, 150));
}

TEST_F(PartitionLogTest, RollsBySizeAndReadsAcrossSegments) {
  open();
  for (int i = 0; i < 400; ++i) append(4);  // ~190 KiB: several 64 KiB segments
  EXPECT_GT(log->segment_count(), 2u);
  EXPECT_EQ(read_all(), range(0, 1600));
}

TEST_F(PartitionLogTest, SeekFindsAnOffsetInAMiddleSegment) {
  open();
  for (int i = 0; i < 400; ++i) append(4);
  EXPECT_EQ(read_all(777), range(777, 1600));
}

TEST_F(PartitionLogTest, ReadsStopAtTheLimit) {
  open();
  for (int i = 0; i < 10; ++i) append(5);
  EXPECT_EQ(read_all(0, 25), range(0, 25));
}

TEST_F(PartitionLogTest, SeekByTimeFindsTheFirstRecordAtOrAfterIt) {
  open();
  const std::int64_t t0 = clock_ms;
  for (int i = 0; i < 400; ++i) append(4);  // record o has timestamp t0 + o ms
  log::LogReader r(io, kDir);
  std::uint64_t offset = 0;
  EXPECT_EQ(r.seek_time((t0 + 1234) * 1'000'000, UINT64_MAX, &offset), log::ReadStatus::batch) << r.error();
  EXPECT_EQ(offset, 1234u);
  // Kafka's rule: by millisecond, so a time inside record 1234's millisecond finds it.
  EXPECT_EQ(r.seek_time((t0 + 1234) * 1'000'000 + 999'999, UINT64_MAX, &offset), log::ReadStatus::batch) << r.error();
  EXPECT_EQ(offset, 1234u);
  EXPECT_EQ(r.seek_time((t0 + 1'000'000) * 1'000'000, UINT64_MAX, &offset), log::ReadStatus::end);
  EXPECT_EQ(offset, 1600u);
}

TEST_F(PartitionLogTest, CleanReopenReadsNoData) {
  open();
  for (int i = 0; i < 100; ++i) append(2);
  ASSERT_TRUE(log->close_clean().ok());
  RecoveryReport report;
  open(small_segments(), &report);
  EXPECT_TRUE(report.clean);
  EXPECT_EQ(report.scanned_bytes, 0u);
  EXPECT_EQ(log->end_offset(), 200u);
  append(2);
  EXPECT_EQ(read_all(), range(0, 202));
}

TEST_F(PartitionLogTest, ReopenAfterACrashGoesOnFromTheLastGoodBatch) {
  open();
  for (int i = 0; i < 10; ++i) append(2);
  crash();
  RecoveryReport report;
  open(small_segments(), &report);
  EXPECT_FALSE(report.clean);
  EXPECT_EQ(report.cut_bytes, 0u);
  EXPECT_EQ(log->end_offset(), 20u);
  append(2);
  EXPECT_EQ(read_all(), range(0, 22));
}

TEST_F(PartitionLogTest, TornLastBatchIsCut) {
  open();
  for (int i = 0; i < 10; ++i) append(2);
  append(2, 100, /*sync=*/false);
  crash(/*torn=*/100);  // the unsynced batch landed in part
  RecoveryReport report;
  open(small_segments(), &report);
  EXPECT_EQ(report.cut_bytes, 100u);
  EXPECT_EQ(report.cut_from_offset, 20u);
  ASSERT_FALSE(report.notes.empty());
  EXPECT_NE(report.notes.back().find("cut 100 bytes"), std::string::npos) << report.notes.back();
  EXPECT_EQ(log->end_offset(), 20u);
  EXPECT_EQ(read_all(), range(0, 20));
}

TEST_F(PartitionLogTest, BitFlipInTheMiddleCutsFromThatBatch) {
  open();
  for (int i = 0; i < 10; ++i) append(2);  // ten batches of the same size
  const std::string path = last_segment();
  const std::uint64_t batch = (io.contents(path).size() - sizeof(log::SegmentHeader)) / 10;
  const std::uint64_t fifth = sizeof(log::SegmentHeader) + 4 * batch;  // the batch of offsets 8..9
  std::byte flipped = io.contents(path)[fifth + 200] ^ std::byte{0x10};
  crash();
  overwrite(path, fifth + 200, std::span(&flipped, 1));
  RecoveryReport report;
  open(small_segments(), &report);
  EXPECT_EQ(report.cut_from_offset, 8u);
  EXPECT_EQ(report.cut_bytes, 6 * batch);
  EXPECT_NE(report.notes.back().find("CRC"), std::string::npos) << report.notes.back();
  EXPECT_EQ(read_all(), range(0, 8));
}

// The v2 CRC leaves the leader epoch out: a tail batch whose epoch went
// down is damage, and recovery cuts from it.
TEST_F(PartitionLogTest, AnEpochThatGoesDownInTheTailIsCut) {
  open();
  for (int i = 0; i < 10; ++i) append(2);  // ten batches of the same size, epoch 0
  const std::string path = last_segment();
  const std::uint64_t batch = (io.contents(path).size() - sizeof(log::SegmentHeader)) / 10;
  crash();
  const std::byte three[4] = {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{3}};
  overwrite(path, sizeof(log::SegmentHeader) + 5 * batch + 12, three);  // the batch of offsets 10..11: epoch 3
  RecoveryReport report;
  open(small_segments(), &report);
  EXPECT_EQ(report.cut_from_offset, 12u);
  EXPECT_EQ(report.cut_bytes, 4 * batch);
  bool named = false;
  for (const std::string& n : report.notes) named = named || n.find("leader epoch 0 below the previous batch's 3") != std::string::npos;
  EXPECT_TRUE(named) << (report.notes.empty() ? "" : report.notes.front());
  EXPECT_EQ(read_all(), range(0, 12));
  EXPECT_EQ(log->latest_epoch(), 3);
}

// The flusher's writes complete in any order: a later batch can extend the
// file while an earlier one is still a hole. A reader that read past the
// written offset then must read that batch again once it is written, not
// decode the hole it saw (it used to call it corrupt).
TEST_F(PartitionLogTest, AReaderReadsAgainWhatWasNotWrittenWhenItsBufferFilled) {
  open();
  const Placed first = place_batch(0);
  const Placed late = place_batch(2);
  const Placed last = place_batch(4);
  write_placed(first);
  write_placed(last);  // the middle one is late
  log::LogReader r(io, kDir);
  ASSERT_EQ(r.seek(0), log::ReadStatus::batch) << r.error();
  log::DecodedBatch batch;
  ASSERT_EQ(r.next(2, batch), log::ReadStatus::batch) << r.error();  // written: offsets below 2
  EXPECT_EQ(batch.header.base_offset, 0u);
  EXPECT_EQ(r.next(2, batch), log::ReadStatus::end);
  write_placed(late);
  ASSERT_EQ(r.next(6, batch), log::ReadStatus::batch) << r.error();  // now everything is written
  EXPECT_EQ(batch.header.base_offset, 2u);
  ASSERT_EQ(r.next(6, batch), log::ReadStatus::batch) << r.error();
  EXPECT_EQ(batch.header.base_offset, 4u);
}

// A reader that reads ahead (a consumer's) finds every record across chunks
// and segments, with batches larger than its chunk and smaller; a seek
// elsewhere drops what it read ahead.
TEST_F(PartitionLogTest, AReaderThatReadsAheadReadsEveryRecordOnce) {
  open(small_segments(8 << 20));
  for (int i = 0; i < 40; ++i) append(i % 4 == 0 ? 1200 : 7, 1000);  // batches of ~1.2 MB and of ~7 KB
  ASSERT_TRUE(log->roll(0).ok());
  for (int i = 0; i < 10; ++i) append(300, 1000);
  log::LogReader r(io, kDir, true);  // one reader: its read ahead is dropped at each seek
  EXPECT_EQ(read_with(r, 0), range(0, next));
  EXPECT_EQ(read_with(r, 5000), range(5000, next));
  EXPECT_EQ(read_with(r, 3), range(3, next));
}

// What a reader read ahead past the written offset is not trusted: a batch
// still a hole then (a later one was written first) is read again once it
// is written.
TEST_F(PartitionLogTest, AReadAheadPastTheWrittenOffsetIsReadAgain) {
  open(small_segments(8 << 20));
  append(1200, 1000);  // larger than the reader's chunk: the read ahead starts after it
  const std::uint64_t written = next;
  const Placed late = place_batch(written);
  const Placed later = place_batch(written + 2);
  write_placed(later);  // first: the file now has a hole where the late one goes
  log::LogReader r(io, kDir, true);
  ASSERT_EQ(r.seek(0), log::ReadStatus::batch) << r.error();
  log::DecodedBatch batch;
  ASSERT_EQ(r.next(written, batch), log::ReadStatus::batch) << r.error();
  EXPECT_EQ(r.next(written, batch), log::ReadStatus::end);
  // Written at once, not queued: the reader's read ahead is still to be
  // reaped from this MemoryIo, and a reap here would take it.
  ASSERT_TRUE(io.write_now(late.place.file, late.place.position, late.bytes).ok());
  ASSERT_EQ(r.next(written + 4, batch), log::ReadStatus::batch) << r.error();
  EXPECT_EQ(batch.header.base_offset, written);
  ASSERT_EQ(r.next(written + 4, batch), log::ReadStatus::batch) << r.error();
  EXPECT_EQ(batch.header.base_offset, written + 2);
}

TEST_F(PartitionLogTest, ZeroedTailIsCut) {
  open();
  for (int i = 0; i < 5; ++i) append(2);
  const std::string path = last_segment();
  const std::uint64_t size = io.contents(path).size();
  crash();
  const std::vector<std::byte> zeros(4096);
  overwrite(path, size, zeros);  // blocks allocated but never written read back as zeros
  RecoveryReport report;
  open(small_segments(), &report);
  EXPECT_EQ(report.cut_bytes, 4096u);
  EXPECT_EQ(log->end_offset(), 10u);
  EXPECT_EQ(io.contents(path).size(), size);
}

TEST_F(PartitionLogTest, MissingIndexOfTheLastSegmentIsRebuilt) {
  open();
  for (int i = 0; i < 40; ++i) append(4);
  const std::uint64_t base = log::list_segments(io, kDir).value().back();
  const std::string index = log::segment_path(kDir, base, log::kIndexExt);
  const std::vector<std::byte> before = io.contents(index);
  ASSERT_TRUE(log->write_index().ok());
  const std::vector<std::byte> written = io.contents(index);
  crash();
  ASSERT_TRUE(io.remove(index).ok());
  RecoveryReport report;
  open(small_segments(), &report);
  EXPECT_NE(report.notes.front().find("missing"), std::string::npos) << report.notes.front();
  EXPECT_EQ(io.contents(index), written);  // exactly what the writer writes
  EXPECT_GT(written.size(), sizeof(log::IndexHeader));
  EXPECT_EQ(read_all(77), range(77, 160));
}

TEST_F(PartitionLogTest, MissingIndexOfAnOlderSegmentIsRebuilt) {
  open();
  for (int i = 0; i < 400; ++i) append(4);
  ASSERT_TRUE(log->close_clean().ok());
  const std::uint64_t first = log::list_segments(io, kDir).value().front();
  const std::string index = log::segment_path(kDir, first, log::kIndexExt);
  const std::vector<std::byte> written = io.contents(index);
  ASSERT_TRUE(io.remove(index).ok());
  RecoveryReport report;
  open(small_segments(), &report);
  ASSERT_FALSE(report.notes.empty());
  EXPECT_NE(report.notes.front().find("rebuilt"), std::string::npos) << report.notes.front();
  EXPECT_EQ(io.contents(index), written);
}

TEST_F(PartitionLogTest, IndexPointingPastTheEndIsRebuilt) {
  open();
  for (int i = 0; i < 40; ++i) append(4);
  ASSERT_TRUE(log->write_index().ok());
  const std::string path = last_segment();
  const std::uint64_t base = log::list_segments(io, kDir).value().back();
  const std::string index = log::segment_path(kDir, base, log::kIndexExt);
  const std::vector<std::byte> good = io.contents(index);
  crash();
  const log::IndexEntry bogus{10'000, 1'000'000};
  overwrite(index, good.size(), std::span(reinterpret_cast<const std::byte*>(&bogus), sizeof bogus));
  RecoveryReport report;
  open(small_segments(), &report);
  bool noted = false;
  for (const std::string& n : report.notes) noted = noted || n.find("past the end") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(io.contents(index), good);
  EXPECT_EQ(read_all(), range(0, 160));
  (void)path;
}

TEST_F(PartitionLogTest, WrongMagicEmptiesTheSegmentAndSaysSo) {
  open();
  for (int i = 0; i < 5; ++i) append(2);
  const std::string path = last_segment();
  crash();
  const char junk[8] = {'N', 'O', 'T', 'A', 'L', 'O', 'G', '!'};
  overwrite(path, 0, std::as_bytes(std::span(junk)));
  RecoveryReport report;
  open(small_segments(), &report);
  EXPECT_NE(report.notes.front().find("bad magic"), std::string::npos) << report.notes.front();
  EXPECT_EQ(report.cut_from_offset, 0u);
  EXPECT_EQ(log->end_offset(), 0u);
  append(1);
  EXPECT_EQ(read_all(), range(0, 1));
}

TEST_F(PartitionLogTest, WrongVersionIsRefusedAndNothingIsChanged) {
  open();
  for (int i = 0; i < 5; ++i) append(2);
  const std::string path = last_segment();
  crash();
  const std::uint32_t v3 = 3;  // a version from a later ringbus
  overwrite(path, offsetof(log::SegmentHeader, version), std::as_bytes(std::span(&v3, 1)));
  const std::vector<std::byte> before = io.contents(path);
  auto r = PartitionLog::open(io, kDir, small_segments(), 0, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::version_mismatch);
  EXPECT_NE(r.error().message.find("version 3, this ringbus reads versions 1 to 2"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(io.contents(path), before);
}

// Power cuts (file data and directory entries as last synced) at many
// moments of a log that rolls and deletes segments, with every third batch
// synced: recovery keeps every synced record, invents none, and the log goes
// on from there.
TEST_F(PartitionLogTest, PowerCutsKeepEverySyncedRecordAndInventNone) {
  LogSettings s = small_segments();
  s.retention_bytes = 192 * 1024;
  open(s);
  std::uint64_t synced_end = 0;
  for (int cut = 0; cut < 20; ++cut) {
    for (int i = 0; i < 37 + cut * 11; ++i) {  // cuts at varied moments
      const bool sync = i % 3 == 0;
      append(4, 100, sync);
      if (sync) synced_end = next;
      if (i % 50 == 49) {
        ASSERT_TRUE(log->apply_retention(0).ok());
      }
    }
    const std::uint64_t appended_end = next;
    crash(cut % 2 == 0 ? 0 : 150);
    open(s);
    ASSERT_GE(log->end_offset(), synced_end) << "a synced record was lost at cut " << cut;
    ASSERT_LE(log->end_offset(), appended_end) << "records invented at cut " << cut;
    ASSERT_EQ(read_all(log->start_offset()), range(log->start_offset(), log->end_offset())) << "cut " << cut;
    synced_end = log->end_offset();  // what recovery kept is synced (it says so)
  }
}

TEST_F(PartitionLogTest, RetentionBySizeDeletesTheOldestSegments) {
  LogSettings s = small_segments();
  s.retention_bytes = 128 * 1024;
  open(s);
  for (int i = 0; i < 800; ++i) append(4);
  const std::size_t before = log->segment_count();
  auto deleted = log->apply_retention(0);
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_GT(deleted.value(), 0u);
  EXPECT_EQ(log->segment_count(), before - deleted.value());
  const std::uint64_t earliest = log->start_offset();
  EXPECT_GT(earliest, 0u);
  log::LogReader r(io, kDir);
  EXPECT_EQ(r.seek(0), log::ReadStatus::out_of_range);
  EXPECT_EQ(r.earliest(), earliest);
  EXPECT_NE(r.error().find("out of range, earliest is " + std::to_string(earliest)), std::string::npos) << r.error();
  EXPECT_EQ(read_all(earliest), range(earliest, 3200));
}

// A reader keeps its listing of the segments between seeks; it must notice
// segments deleted by retention and segments rolled since it listed.
TEST_F(PartitionLogTest, AReaderSeesSegmentsDeletedAndRolledSinceItListed) {
  LogSettings s = small_segments();
  s.retention_bytes = 128 * 1024;
  open(s);
  for (int i = 0; i < 400; ++i) append(4);
  log::LogReader r(io, kDir);
  ASSERT_EQ(r.seek(300), log::ReadStatus::batch) << r.error();  // lists the segments
  for (int i = 0; i < 400; ++i) append(4);                  // rolls newer ones
  ASSERT_TRUE(log->apply_retention(0).ok());               // deletes the oldest
  const std::uint64_t earliest = log->start_offset();
  ASSERT_GT(earliest, 400u);
  // Offset 400 lies in a segment the reader listed and retention deleted.
  EXPECT_EQ(r.seek(400), log::ReadStatus::out_of_range);
  EXPECT_EQ(r.earliest(), earliest);
  // Offset 3000 lies in a segment rolled after the reader listed.
  auto from = [&](std::uint64_t offset) {
    std::vector<std::uint64_t> seen;
    EXPECT_EQ(r.seek(offset), log::ReadStatus::batch) << r.error();
    log::DecodedBatch b;
    while (r.next(UINT64_MAX, b) == log::ReadStatus::batch) {
      log::for_each_record(b, 0, [&](const Record& rec) {
        if (rec.offset >= offset) seen.push_back(rec.offset);
      });
    }
    return seen;
  };
  EXPECT_EQ(from(3000), range(3000, 3200));
  EXPECT_EQ(from(earliest + 10), range(earliest + 10, 3200));
  // The same by time (record o has timestamp 1'000'000 + o ms), with a reader
  // that listed before the rolls and the deletions.
  log::LogReader t(io, kDir);
  std::uint64_t offset = 0;
  ASSERT_EQ(t.seek_time((1'000'000LL + 300) * 1'000'000, UINT64_MAX, &offset), log::ReadStatus::batch) << t.error();
  for (int i = 0; i < 400; ++i) append(4);
  ASSERT_TRUE(log->apply_retention(0).ok());
  EXPECT_EQ(t.seek_time((1'000'000LL + 4700) * 1'000'000, UINT64_MAX, &offset), log::ReadStatus::batch) << t.error();
  EXPECT_EQ(offset, 4700u);
  EXPECT_EQ(t.seek_time(0, UINT64_MAX, &offset), log::ReadStatus::batch) << t.error();
  EXPECT_EQ(offset, log->start_offset());
}

TEST_F(PartitionLogTest, RetentionByAgeKeepsTheActiveSegment) {
  LogSettings s = small_segments();
  s.retention_age_ns = 1;
  open(s);
  for (int i = 0; i < 400; ++i) append(4);
  auto deleted = log->apply_retention(detail::realtime_ns() + 1'000'000'000);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(read_all(log->start_offset()), range(log->start_offset(), 1600));
}

// Policy consumed: a segment goes once `consumed` reaches the next one's
// base (every record in it is below), never the active one; without the
// policy the consumed offset deletes nothing.
TEST_F(PartitionLogTest, RetentionConsumedDeletesSegmentsWhollyBelowTheConsumedOffset) {
  LogSettings s = small_segments();
  open(s);
  for (int i = 0; i < 400; ++i) append(4);
  ASSERT_GE(log->segment_count(), 3u);
  EXPECT_EQ(log->apply_retention(0, 1600).value(), 0u) << "policy limits";
  s.retention_consumed = true;
  log->set_settings(s);
  EXPECT_EQ(log->apply_retention(0, 0).value(), 0u);
  const std::uint64_t second = log::list_segments(io, kDir).value().at(1);
  EXPECT_EQ(log->apply_retention(0, second - 1).value(), 0u) << "the last record of the first segment is not consumed";
  EXPECT_EQ(log->apply_retention(0, second).value(), 1u);
  EXPECT_EQ(log->start_offset(), second);
  EXPECT_EQ(log->apply_retention(0, UINT64_MAX).ok(), true);
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(read_all(log->start_offset()), range(log->start_offset(), 1600));
}

// A cluster leader's log: whatever the policy says, a segment goes only
// once it is wholly below the high watermark (every in-sync mirror has
// copied it).
TEST_F(PartitionLogTest, RetentionKeepsWhatAnInSyncMirrorHasNotCopied) {
  LogSettings s = small_segments();
  s.retention_bytes = 1;  // everything it may delete
  open(s);
  for (int i = 0; i < 400; ++i) append(4);
  const std::vector<std::uint64_t> bases = log::list_segments(io, kDir).value();
  ASSERT_GE(bases.size(), 3u);
  EXPECT_EQ(log->apply_retention(0, 0, 0).value(), 0u);
  EXPECT_EQ(log->apply_retention(0, 0, bases[1] - 1).value(), 0u) << "the first segment's last record is not replicated";
  EXPECT_EQ(log->apply_retention(0, 0, bases[2]).value(), 2u);
  EXPECT_EQ(log->start_offset(), bases[2]);
  EXPECT_EQ(read_all(log->start_offset()), range(bases[2], 1600));
}

// ---- truncation ------------------------------------------------------------

TEST_F(PartitionLogTest, TruncateInsideABatchTakesTheWholeBatch) {
  open();
  for (int i = 0; i < 5; ++i) append(4);  // batches [0,4) [4,8) [8,12) [12,16) [16,20)
  auto end = log->truncate_to(10);
  ASSERT_TRUE(end.ok()) << end.error().message;
  EXPECT_EQ(end.value(), 8u);
  EXPECT_EQ(log->end_offset(), 8u);
  EXPECT_EQ(read_all(), range(0, 8));
  next = log->end_offset();
  append(3);  // appends go on from the new end
  EXPECT_EQ(read_all(), range(0, 11));
}

TEST_F(PartitionLogTest, TruncateAtABatchBoundaryKeepsWhatIsBelow) {
  open();
  for (int i = 0; i < 5; ++i) append(4);
  ASSERT_EQ(log->truncate_to(12).value(), 12u);
  EXPECT_EQ(read_all(), range(0, 12));
}

TEST_F(PartitionLogTest, TruncateDeletesTheSegmentsPastTheOffset) {
  open();
  for (int i = 0; i < 400; ++i) append(4);
  const std::size_t segments = log->segment_count();
  ASSERT_GT(segments, 2u);
  ASSERT_EQ(log->truncate_to(600).value(), 600u);
  EXPECT_LT(log->segment_count(), segments);
  EXPECT_EQ(log::list_segments(io, kDir).value().size(), log->segment_count());
  EXPECT_EQ(read_all(), range(0, 600));
  EXPECT_EQ(read_all(333), range(333, 600));  // the indexes lead to what is left
  next = log->end_offset();
  for (int i = 0; i < 100; ++i) append(4);
  EXPECT_EQ(read_all(), range(0, 1000));
}

TEST_F(PartitionLogTest, TruncateToTheStartEmptiesTheFirstSegment) {
  open();
  for (int i = 0; i < 400; ++i) append(4);
  ASSERT_EQ(log->truncate_to(0).value(), 0u);
  EXPECT_EQ(log->segment_count(), 1u);
  log::LogReader r(io, kDir);
  EXPECT_EQ(r.seek(0), log::ReadStatus::batch) << r.error();
  log::DecodedBatch b;
  EXPECT_EQ(r.next(UINT64_MAX, b), log::ReadStatus::end);
}

TEST_F(PartitionLogTest, TruncateAtOrPastTheEndChangesNothing) {
  open();
  for (int i = 0; i < 5; ++i) append(4);
  EXPECT_EQ(log->truncate_to(20).value(), 20u);
  EXPECT_EQ(log->truncate_to(99).value(), 20u);
  EXPECT_EQ(read_all(), range(0, 20));
}

TEST_F(PartitionLogTest, TruncateBelowTheStartIsRefused) {
  open();
  for (int i = 0; i < 400; ++i) append(4);
  ASSERT_TRUE(log->apply_retention(0).ok());
  log->set_settings([] {
    LogSettings s = small_segments();
    s.retention_bytes = 64 * 1024;
    return s;
  }());
  ASSERT_TRUE(log->apply_retention(0).ok());
  ASSERT_GT(log->start_offset(), 0u);
  auto r = log->truncate_to(log->start_offset() - 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("below the log's start"), std::string::npos) << r.error().message;
  EXPECT_EQ(read_all(log->start_offset()), range(log->start_offset(), 1600));
}

TEST_F(PartitionLogTest, ATruncationSurvivesACrash) {
  open();
  for (int i = 0; i < 400; ++i) append(4);
  ASSERT_EQ(log->truncate_to(1001).value(), 1000u);
  crash();  // what truncate_to did is synced: the deleted segments stay deleted
  open();
  EXPECT_EQ(log->end_offset(), 1000u);
  EXPECT_EQ(read_all(), range(0, 1000));
}

// On real files, so that `ringbus log verify`'s check reads them: the
// segments and both indexes left by a truncation are what a writer that
// had stopped there would have left.
TEST(PartitionLogTruncation, LeavesSegmentsAndIndexesThatVerify) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path("/var/tmp") / ("ringbus-truncate-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto fio = log::make_pwrite_io();
  {
    auto opened = PartitionLog::open(*fio, dir.string(), small_segments(), 0, nullptr);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    PartitionLog& plog = *opened.value();
    std::uint64_t next = 0;
    for (int i = 0; i < 300; ++i) {
      log::v2::BatchBuilder b;
      b.reset(next);
      for (int k = 0; k < 4; ++k) b.append(next + k, static_cast<std::int64_t>(1000 + next + k), "k", std::string(100, 'v'));
      const std::vector<std::byte> bytes(b.finish().begin(), b.finish().end());
      if (plog.should_roll(bytes.size(), 0)) {
        ASSERT_TRUE(plog.roll(0).ok());
      }
      const auto place = plog.append(bytes);
      ASSERT_TRUE(fio->write_now(place.file, place.position, bytes).ok());
      next += 4;
    }
    ASSERT_EQ(plog.truncate_to(702).value(), 700u);
    ASSERT_TRUE(plog.close_clean().ok());
  }
  auto reports = log::check_path(dir.string(), log::CheckOptions{});
  ASSERT_TRUE(reports.ok()) << reports.error().message;
  std::uint64_t records = 0;
  for (const log::SegmentReport& r : reports.value()) {
    EXPECT_EQ(r.problems, std::vector<std::string>{}) << r.path;
    records += r.records;
  }
  EXPECT_EQ(records, 700u);
  EXPECT_EQ(reports.value().back().end_offset, 700u);
  fs::remove_all(dir);
}

// ---- segments of Kafka record batches v2 (segment version 2) ----------------

// Writes segment `base` as version 2: the header, then `batches` back to
// back, and index files with headers only (readers then scan from the first
// batch; recovery rebuilds the entries).
void write_v2_segment(log::FileIo& fio, const std::string& dir, std::uint64_t base,
                      const std::vector<std::vector<std::byte>>& batches) {
  ASSERT_TRUE(fio.make_directories(dir).ok());
  auto fd = fio.open(log::segment_path(dir, base, log::kLogExt), true);
  ASSERT_TRUE(fd.ok());
  const log::SegmentHeader h = log::make_segment_header(base, 1, log::kSegmentVersionKafka);
  std::uint64_t at = 0;
  ASSERT_TRUE(fio.write_now(fd.value(), at, std::as_bytes(std::span(&h, 1))).ok());
  at += sizeof h;
  for (const auto& b : batches) {
    ASSERT_TRUE(fio.write_now(fd.value(), at, b).ok());
    at += b.size();
  }
  ASSERT_TRUE(fio.sync_now(fd.value()).ok());
  fio.close(fd.value());
  for (const bool time : {false, true}) {
    auto ifd = fio.open(log::segment_path(dir, base, time ? log::kTimeIndexExt : log::kIndexExt), true);
    ASSERT_TRUE(ifd.ok());
    const log::IndexHeader ih = log::make_index_header(time, base);
    ASSERT_TRUE(fio.write_now(ifd.value(), 0, std::as_bytes(std::span(&ih, 1))).ok());
    ASSERT_TRUE(fio.sync_now(ifd.value()).ok());
    fio.close(ifd.value());
  }
  ASSERT_TRUE(fio.sync_directory(dir).ok());
}

// A v2 batch of `n` records from `base` (record o: key "k<o>", value
// "v<o>", timestamp 1'700'000'000'000 + o ms, a header on even offsets), the
// last `retired` offsets covered without records.
std::vector<std::byte> v2_batch(std::uint64_t base, std::uint32_t n, std::uint32_t retired = 0,
                                log::v2::Compression c = log::v2::Compression::none) {
  log::v2::BatchBuilder b;
  b.reset(base, 0, c);
  for (std::uint64_t o = base; o < base + n; ++o) {
    const std::string tag = "t" + std::to_string(o);
    const Header h[] = {{"tag", tag}};
    b.append(o, 1'700'000'000'000 + static_cast<std::int64_t>(o), "k" + std::to_string(o), "v" + std::to_string(o),
             o % 2 == 0 ? std::span<const Header>(h) : std::span<const Header>());
  }
  b.cover_until(base + n + retired);
  const auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

TEST_F(PartitionLogTest, AKafkaV2SegmentIsReadByItsVersion) {
  write_v2_segment(io, kDir, 0, {v2_batch(0, 5), v2_batch(5, 4, 2, log::v2::Compression::zstd), v2_batch(11, 3)});
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13}));
  EXPECT_EQ(read_all(7), (std::vector<std::uint64_t>{7, 8, 11, 12, 13}));
  // Every field, as a consumer's Record: Kafka's milliseconds, no nanoseconds.
  log::LogReader r(io, kDir);
  ASSERT_EQ(r.seek(6), log::ReadStatus::batch) << r.error();
  log::DecodedBatch b;
  ASSERT_EQ(r.next(UINT64_MAX, b), log::ReadStatus::batch) << r.error();
  EXPECT_EQ(b.header.base_offset, 5u);
  EXPECT_EQ(b.header.offset_span, 6u);
  EXPECT_EQ(b.header.record_count, 4u);
  std::vector<std::string> seen;
  log::for_each_record(b, 3, [&](const Record& rec) {
    std::string_view tag;
    (void)rec.headers.find("tag", tag);
    seen.push_back(std::to_string(rec.offset) + " " + std::string(rec.key) + " " + std::string(rec.value) + " " +
                   std::to_string(rec.timestamp_ms) + " " + std::to_string(rec.publish_ns) + " " +
                   std::to_string(rec.partition) + " " + std::string(tag));
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"5 k5 v5 1700000000005 0 3 ", "6 k6 v6 1700000000006 0 3 t6",
                                            "7 k7 v7 1700000000007 0 3 ", "8 k8 v8 1700000000008 0 3 t8"}));
  std::uint64_t offset = 0;
  EXPECT_EQ(r.seek_time(1'700'000'000'012LL * 1'000'000, UINT64_MAX, &offset), log::ReadStatus::batch) << r.error();
  EXPECT_EQ(offset, 12u);
}

TEST_F(PartitionLogTest, OldSegmentsAndV2SegmentsReadOnAfterEachOther) {
  open();
  for (int i = 0; i < 5; ++i) append(4);  // RBB1, offsets 0..19
  log.reset();                            // the writer goes
  write_v2_segment(io, kDir, 20, {v2_batch(20, 6), v2_batch(26, 4)});
  EXPECT_EQ(read_all(), range(0, 30));
  EXPECT_EQ(read_all(18), range(18, 30));
}

TEST_F(PartitionLogTest, RecoveryCutsATornV2BatchAndRebuildsTheIndexes) {
  std::vector<std::byte> torn = v2_batch(9, 5);
  torn.resize(torn.size() - 7);
  write_v2_segment(io, kDir, 0, {v2_batch(0, 4), v2_batch(4, 5), torn});
  RecoveryReport report;
  open(small_segments(), &report);
  EXPECT_EQ(log->end_offset(), 9u);
  EXPECT_GT(report.cut_bytes, 0u);
  EXPECT_EQ(report.cut_from_offset, 9u);
  EXPECT_EQ(read_all(), range(0, 9));
}

TEST_F(PartitionLogTest, ADamagedV2BatchIsSkippedToTheNextIntactOne) {
  std::vector<std::byte> bad = v2_batch(4, 5);
  bad[bad.size() - 2] ^= std::byte{0x40};  // CRC mismatch
  write_v2_segment(io, kDir, 0, {v2_batch(0, 4), bad, v2_batch(9, 3)});
  log::LogReader r(io, kDir);
  ASSERT_EQ(r.seek(0), log::ReadStatus::batch);
  log::DecodedBatch b;
  ASSERT_EQ(r.next(UINT64_MAX, b), log::ReadStatus::batch);
  ASSERT_EQ(r.next(UINT64_MAX, b), log::ReadStatus::corrupt);
  EXPECT_NE(r.error().find("CRC32C mismatch"), std::string::npos) << r.error();
  ASSERT_EQ(r.skip_corrupt(UINT64_MAX), log::ReadStatus::batch) << r.error();
  EXPECT_EQ(r.next_offset(), 9u);
  ASSERT_EQ(r.next(UINT64_MAX, b), log::ReadStatus::batch);
  EXPECT_EQ(b.header.base_offset, 9u);
}

// A leader's replication reads only batch headers (next_unread) and sends
// the bytes from the file: it must find every batch where next() does,
// across segments, with large batches (their headers read alone) and small
// ones mixed, and stop at a header that is not one.
TEST_F(PartitionLogTest, UnreadBatchesAreFoundWhereReadOnesAre) {
  open();
  for (int i = 0; i < 60; ++i) append(i % 3 == 0 ? 12 : 2, i % 3 == 0 ? 2000 : 100);  // 24 KiB and 0.3 KiB batches
  ASSERT_GT(log->segment_count(), 2u);
  struct Where {
    std::uint64_t base, segment, position, length;
    bool operator==(const Where&) const = default;
  };
  std::vector<Where> read, unread;
  log::LogReader r(io, kDir);
  ASSERT_EQ(r.seek(0), log::ReadStatus::batch);
  log::DecodedBatch b;
  while (r.next(UINT64_MAX, b) == log::ReadStatus::batch) {
    read.push_back({b.header.base_offset, r.batch_segment(), r.batch_position(), b.header.batch_length});
  }
  log::LogReader u(io, kDir);
  ASSERT_EQ(u.seek(0), log::ReadStatus::batch);
  log::BatchInfo h;
  log::ReadStatus st;
  while ((st = u.next_unread(UINT64_MAX, h)) == log::ReadStatus::batch) {
    EXPECT_EQ(u.batch_format(), log::kSegmentVersion);
    unread.push_back({h.base_offset, u.batch_segment(), u.batch_position(), h.batch_length});
  }
  EXPECT_EQ(st, log::ReadStatus::end) << u.error();
  EXPECT_EQ(read.size(), 60u);
  EXPECT_TRUE(read == unread);
  // Up to a limit, as next().
  ASSERT_EQ(u.seek(0), log::ReadStatus::batch);
  ASSERT_EQ(u.next_unread(1, h), log::ReadStatus::batch);
  EXPECT_EQ(u.next_unread(1, h), log::ReadStatus::end);

  // The second batch's magic damaged: no batch starts there.
  const Where second = read[1];
  overwrite(log::segment_path(kDir, second.segment, log::kLogExt), second.position + 16, std::vector<std::byte>{std::byte{9}});
  log::LogReader d(io, kDir);
  ASSERT_EQ(d.seek(0), log::ReadStatus::batch);
  ASSERT_EQ(d.next_unread(UINT64_MAX, h), log::ReadStatus::batch);
  ASSERT_EQ(d.next_unread(UINT64_MAX, h), log::ReadStatus::corrupt);
  EXPECT_NE(d.error().find("at byte " + std::to_string(second.position) + ": no batch starts there"), std::string::npos)
      << d.error();
}

// On real files, so that `ringbus log verify`'s check reads them: a v2
// segment and the indexes recovery rebuilt for it verify.
TEST(KafkaV2Segments, VerifyAfterRecoveryRebuiltTheirIndexes) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path("/var/tmp") / ("ringbus-v2seg-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto fio = log::make_pwrite_io();
  std::vector<std::vector<std::byte>> batches;
  for (std::uint64_t o = 0; o < 400; o += 8) batches.push_back(v2_batch(o, 8, 0, o % 16 == 0 ? log::v2::Compression::lz4 : log::v2::Compression::none));
  write_v2_segment(*fio, dir.string(), 0, batches);
  {
    RecoveryReport report;
    auto opened = PartitionLog::open(*fio, dir.string(), small_segments(1 << 20), 0, &report);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(opened.value()->end_offset(), 400u);
    ASSERT_TRUE(opened.value()->close_clean().ok());
  }
  // A seek goes through the rebuilt index to the batch that holds the offset.
  log::LogReader reader(*fio, dir.string());
  ASSERT_EQ(reader.seek(333), log::ReadStatus::batch) << reader.error();
  log::DecodedBatch b;
  ASSERT_EQ(reader.next(UINT64_MAX, b), log::ReadStatus::batch) << reader.error();
  EXPECT_EQ(b.header.base_offset, 328u);
  std::uint64_t records = 0;
  log::CheckOptions o;
  o.on_record = [&](const Record&) { ++records; };
  auto reports = log::check_path(dir.string(), o);
  ASSERT_TRUE(reports.ok()) << reports.error().message;
  ASSERT_EQ(reports.value().size(), 1u);
  EXPECT_EQ(reports.value()[0].problems, std::vector<std::string>{});
  EXPECT_EQ(reports.value()[0].end_offset, 400u);
  EXPECT_EQ(records, 400u);
  fs::remove_all(dir);
}

// Writes segment `base` as version 1 (RBB1 batches), as an older ringbus did.
void write_rbb1_segment(log::FileIo& fio, const std::string& dir, std::uint64_t base, std::uint64_t end) {
  ASSERT_TRUE(fio.make_directories(dir).ok());
  auto fd = fio.open(log::segment_path(dir, base, log::kLogExt), true);
  ASSERT_TRUE(fd.ok());
  const log::SegmentHeader h = log::make_segment_header(base, 1, log::kSegmentVersionRbb1);
  std::uint64_t at = 0;
  ASSERT_TRUE(fio.write_now(fd.value(), at, std::as_bytes(std::span(&h, 1))).ok());
  at += sizeof h;
  for (std::uint64_t o = base; o < end; o += 2) {
    log::BatchBuilder b;
    b.reset(o);
    for (std::uint64_t k = o; k < std::min(o + 2, end); ++k) b.append_record(k, 1'000'000 * static_cast<std::int64_t>(k), "k", "old");
    const auto bytes = b.finish();
    ASSERT_TRUE(fio.write_now(fd.value(), at, bytes).ok());
    at += bytes.size();
  }
  ASSERT_TRUE(fio.sync_now(fd.value()).ok());
  fio.close(fd.value());
  ASSERT_TRUE(fio.sync_directory(dir).ok());
}

std::uint32_t segment_version(log::MemoryIo& mio, const std::string& path) {
  log::SegmentHeader h{};
  std::memcpy(&h, mio.contents(path).data(), sizeof h);
  return h.version;
}

TEST_F(PartitionLogTest, AnOlderActiveSegmentIsRolledAtTheFirstAppend) {
  write_rbb1_segment(io, kDir, 0, 10);
  open();  // no clean marker: its tail is checked, in its own format
  EXPECT_EQ(log->end_offset(), 10u);
  append(3);
  const auto segments = log::list_segments(io, kDir).value();
  ASSERT_EQ(segments, (std::vector<std::uint64_t>{0, 10}));
  EXPECT_EQ(segment_version(io, log::segment_path(kDir, 0, log::kLogExt)), log::kSegmentVersionRbb1);
  EXPECT_EQ(segment_version(io, log::segment_path(kDir, 10, log::kLogExt)), log::kSegmentVersionKafka);
  EXPECT_EQ(read_all(), range(0, 13));
}

TEST_F(PartitionLogTest, AnEmptyOlderActiveSegmentTakesTheCurrentFormat) {
  write_rbb1_segment(io, kDir, 0, 0);
  open();
  append(3);
  EXPECT_EQ(log::list_segments(io, kDir).value(), std::vector<std::uint64_t>{0});
  EXPECT_EQ(segment_version(io, log::segment_path(kDir, 0, log::kLogExt)), log::kSegmentVersionKafka);
  EXPECT_EQ(read_all(), range(0, 3));
}

}  // namespace
}  // namespace ringbus::io
