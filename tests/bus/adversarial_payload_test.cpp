// Records whose payloads imitate what a reader of the next lap expects to
// find at the same place: record headers with the exact offset, length and
// type of the record that will be written there, and 8-byte words equal to
// any commit marker a protocol could key on the position (position + 1) or
// the offset. Readers must never take such stale bytes for a record
// (bus/README.md, "Commit entries"; issue 16's first trap).
//
// One producer writes laps of two shapes in turn, so that the frame
// boundaries of each lap fall inside the payloads of the lap before:
//   lap A: 64 records of 1 KiB frames (992-byte values);
//   lap B: 1024 records of 64 B frames (32-byte values).
// With one producer and frames that divide the ring, every record's position
// follows from its offset, and each lap-A payload forges the lap-B records
// that will overwrite it. Producers pause now and then between claim and
// commit, so readers spin at claimed, unwritten records.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "partition_format.h"
#include "stress_support.h"
#include "test_support.h"

namespace ringbus::test {
namespace {

constexpr std::uint64_t kRing = 64 * 1024;
constexpr std::uint64_t kBigFrame = 1024, kSmallFrame = 64;
constexpr std::uint64_t kBigPerLap = kRing / kBigFrame, kSmallPerLap = kRing / kSmallFrame;
constexpr std::uint64_t kPerCycle = kBigPerLap + kSmallPerLap;  // two laps
constexpr std::uint32_t kForged = 0xBADF00D;
constexpr std::size_t kHeader = sizeof(detail::RecordHeader);

bool big(std::uint64_t seq) { return seq % kPerCycle < kBigPerLap; }
std::size_t value_size(std::uint64_t seq) { return (big(seq) ? kBigFrame : kSmallFrame) - kHeader; }

// Where record `seq` (the producer's count from 0, which is also its offset)
// starts in the ring's positions.
std::uint64_t position_of(std::uint64_t seq) {
  const std::uint64_t cycle = seq / kPerCycle, in = seq % kPerCycle;
  const std::uint64_t base = cycle * 2 * kRing;
  return in < kBigPerLap ? base + in * kBigFrame : base + kRing + (in - kBigPerLap) * kSmallFrame;
}

// The offset the lap B after record `seq`'s lap A starts at.
std::uint64_t lap_b_start(std::uint64_t seq) { return seq - seq % kPerCycle + kBigPerLap; }

// The value of record `seq`: stamped() as the stress tests' records are,
// then for a lap-A record the lap-B records forged where they will be
// written.
void fill(std::uint64_t seq, std::span<std::byte> v) {
  const std::string stamp = stamped(0, seq, v.size());
  std::memcpy(v.data(), stamp.data(), v.size());
  if (!big(seq)) return;
  const std::uint64_t first_small = lap_b_start(seq);
  const std::uint64_t lap_b = position_of(first_small);
  // Past the stamp, every 32-byte slot of this value, seen from the next lap.
  for (std::size_t at = kHeader; at + kHeader <= v.size(); at += kHeader) {
    const std::uint64_t next = position_of(seq) + kHeader + at + kRing;  // the same bytes, one lap on
    if (next % kSmallFrame == 0) {
      // Exactly the header lap B's record will have here, with a marker.
      const detail::RecordHeader h{static_cast<std::uint32_t>(kSmallFrame), detail::FrameType::record, 1, 0, 0,
                                   first_small + (next - lap_b) / kSmallFrame, static_cast<std::int64_t>(next + 1)};
      std::memcpy(v.data() + at, &h, sizeof h);
    } else {
      // Where that record's value goes: a forged stamp, then the frame's
      // position + 1 and its offset, as commit markers could be.
      const std::uint64_t frame = next - kHeader;
      const Stamp forged{kForged, 0, first_small + (frame - lap_b) / kSmallFrame};
      const std::uint64_t words[2] = {frame + 1, forged.seq};
      std::memcpy(v.data() + at, &forged, sizeof forged);
      std::memcpy(v.data() + at + sizeof forged, words, sizeof words);
    }
  }
}

// Checks a delivered record is record `seq` as published.
void check(const Record& rec, std::uint64_t& next_seq, bool gaps_allowed) {
  Stamp s;
  ASSERT_GE(rec.value.size(), sizeof s);
  std::memcpy(&s, rec.value.data(), sizeof s);
  ASSERT_NE(s.producer, kForged) << "a forged record from a stale lap was delivered at offset " << rec.offset;
  ASSERT_EQ(s.producer, 0u) << "offset " << rec.offset;
  ASSERT_EQ(rec.offset, s.seq) << "the record's offset is not the one it was published at";
  if (gaps_allowed) {
    ASSERT_GE(s.seq, next_seq) << "duplicate or reordered";
  } else {
    ASSERT_EQ(s.seq, next_seq) << "lost, duplicated or reordered";
  }
  ASSERT_EQ(rec.value.size(), value_size(s.seq)) << "torn length at offset " << rec.offset;
  std::vector<std::byte> want(value_size(s.seq));
  fill(s.seq, want);
  ASSERT_EQ(std::memcmp(rec.value.data(), want.data(), want.size()), 0) << "torn record at offset " << rec.offset;
  next_seq = s.seq + 1;
}

struct AdversarialPayloadTest : BrokerFixture {
  // The whole run, with a shared or an exclusive producer.
  void run(const ProducerOptions& options);
};

TEST_F(AdversarialPayloadTest, StaleLapsThatImitateTheNextRecordsAreNeverDelivered) { run({}); }

// The same against an exclusive owner's plain claims and commits.
TEST_F(AdversarialPayloadTest, StaleLapsThatImitateTheNextRecordsAreNeverDeliveredByAnExclusiveOwner) {
  run(exclusive_producer());
}

void AdversarialPayloadTest::run(const ProducerOptions& options) {
  create(topic("adv", 1, kRing, 4096));
  Consumer gating = consumer("adv", from_earliest(/*gating=*/true));
#if defined(__SANITIZE_THREAD__)
  // A non-gating reader's copy races with the producer by design (copy, then
  // check the copy was not overwritten): ThreadSanitizer runs the gating one.
  constexpr bool kNonGating = false;
#else
  constexpr bool kNonGating = true;
#endif
  Consumer lapped = consumer("adv", from_earliest(/*gating=*/false));
  constexpr std::uint64_t kRecords = 200 * kPerCycle;
  std::atomic<bool> failed{false};
  std::thread producer_thread([&] {
    Producer prod = producer("adv", options);
    for (std::uint64_t seq = 0; seq < kRecords && !failed.load(std::memory_order_relaxed);) {
      Claim c = prod.try_claim(value_size(seq));
      if (c.status() == PublishStatus::back_pressured) {
        std::this_thread::yield();
        continue;
      }
      if (!c.ok() || c.offset() != seq) {
        ADD_FAILURE() << "claim " << seq << ": " << to_string(c.status()) << " at offset " << c.offset();
        failed = true;
        return;
      }
      // Readers spin at a claimed, unwritten record for a while.
      if (seq % 97 == 0) std::this_thread::sleep_for(std::chrono::microseconds(30));
      fill(seq, c.value());
      if (const PublishResult r = c.commit(); r.status != PublishStatus::ok) {
        ADD_FAILURE() << "commit " << seq << ": " << to_string(r.status);
        failed = true;
        return;
      }
      ++seq;
    }
  });
  std::uint64_t gating_next = 0, lapped_next = 0, lapped_delivered = 0, laps = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (gating_next < kRecords && !failed.load() && std::chrono::steady_clock::now() < deadline) {
    (void)gating.poll([&](const Record& rec) { check(rec, gating_next, false); }, 64);
    if (::testing::Test::HasFatalFailure()) break;
    if (kNonGating) {
      const PollResult r = lapped.poll(
          [&](const Record& rec) {
            check(rec, lapped_next, true);
            ++lapped_delivered;
          },
          64);
      if (::testing::Test::HasFatalFailure()) break;
      if (r.status == PollStatus::lapped) {
        lapped_next = r.resumed_at;
        ++laps;
      }
    }
  }
  if (::testing::Test::HasFatalFailure() || gating_next < kRecords) failed = true;
  producer_thread.join();
  EXPECT_EQ(gating_next, kRecords) << "the gating reader did not get every record in time";
  if (kNonGating) {
    EXPECT_GT(lapped_delivered, kPerCycle) << "the non-gating reader checked too little";
  }
  std::printf("gating reader: %llu records; non-gating: %llu records, lapped %llu times\n",
              static_cast<unsigned long long>(gating_next), static_cast<unsigned long long>(lapped_delivered),
              static_cast<unsigned long long>(laps));
}

// The forgery is exact: a record's value holds the very header the next
// lap's record at those bytes will carry (else the test above proves little).
TEST(AdversarialPayload, ALapAValueHoldsTheHeadersOfTheLapBRecordsThatOverwriteIt) {
  const std::uint64_t seq = kPerCycle + 5;  // a lap-A record of the second cycle
  std::vector<std::byte> v(value_size(seq));
  fill(seq, v);
  const std::uint64_t value_at = position_of(seq) + kHeader;
  std::size_t forged = 0;
  for (std::uint64_t b = lap_b_start(seq); b < lap_b_start(seq) + kSmallPerLap; ++b) {
    const std::uint64_t at = position_of(b) - kRing;  // where record b lands, one lap back
    if (at < value_at || at + kHeader > value_at + v.size()) continue;
    detail::RecordHeader h;
    std::memcpy(&h, v.data() + (at - value_at), sizeof h);
    EXPECT_EQ(h.offset, b);
    EXPECT_EQ(h.frame_length, kSmallFrame);
    EXPECT_EQ(static_cast<std::uint64_t>(h.timestamp_ns), position_of(b) + 1);
    ++forged;
  }
  EXPECT_EQ(forged, kBigFrame / kSmallFrame - 1) << "every lap-B frame inside the value but the stamp's";
}

}  // namespace
}  // namespace ringbus::test
