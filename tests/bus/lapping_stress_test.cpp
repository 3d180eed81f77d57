// A non-gating consumer that is lapped over and over while producers write
// at full speed: it must never hand a torn or overwritten record to its
// handler, must report every gap as `lapped` with the first missed offset,
// and must otherwise see each producer's records in order.
#include <atomic>
#include <thread>
#include <vector>

#include "stress_support.h"
#include "test_support.h"

namespace ringbus::test {
namespace {

using LappingStressTest = BrokerFixture;

TEST_F(LappingStressTest, LappedReaderNeverSeesATornRecord) {
#if defined(__SANITIZE_THREAD__)
  // The reader's copy races with producers overwriting the ring by design
  // (seqlock style: copy, then check the copy was not overwritten). TSan
  // would report that race; this test checks the outcome instead.
  GTEST_SKIP() << "copy-then-check reads race with writers by design";
#endif
  constexpr std::uint32_t kProducers = 2;
  create(topic("l", 1, 64 * 1024, 4096));
  Consumer reader = consumer("l", from_earliest(/*gating=*/false));
  std::atomic<bool> stop{false};
  std::vector<std::thread> producers;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      Producer prod = producer("l");
      for (std::uint64_t seq = 0; !stop.load(std::memory_order_relaxed);) {
        // Sizes vary so frames and padding land everywhere in the ring.
        const PublishStatus st = prod.try_publish("", stamped(p, seq, 16 + (seq * 131) % 3000)).status;
        if (st == PublishStatus::ok) {
          ++seq;
        } else if (st == PublishStatus::back_pressured) {
          // No reader gates these producers, but a claim of the other
          // producer still being written does (the commit frontier).
          std::this_thread::yield();
        } else {
          ADD_FAILURE() << to_string(st);
          return;
        }
      }
    });
  }
  std::vector<std::uint64_t> next(kProducers, 0);
  std::uint64_t delivered = 0;
  std::uint64_t laps = 0;
  std::uint64_t next_offset = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until) {
    const PollResult r = reader.poll(
        [&](const Record& rec) {
          Stamp s;
          ASSERT_GE(rec.value.size(), sizeof s);
          std::memcpy(&s, rec.value.data(), sizeof s);
          ASSERT_LT(s.producer, kProducers);
          ASSERT_EQ(rec.value.size(), std::max<std::size_t>(16 + (s.seq * 131) % 3000, sizeof s)) << "torn length";
          for (std::size_t i = sizeof s; i < rec.value.size(); ++i) {
            ASSERT_EQ(rec.value[i], static_cast<char>('a' + (s.seq + i) % 26)) << "torn record " << rec.offset;
          }
          ASSERT_GE(s.seq, next[s.producer]) << "duplicate or reordered";
          ASSERT_GE(rec.offset, next_offset) << "offsets went backwards";
          next[s.producer] = s.seq + 1;
          next_offset = rec.offset + 1;
          ++delivered;
          // A slow handler: producers lap us while we hold the copy.
          if (delivered % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
        },
        256);
    if (r.status == PollStatus::lapped) {
      ++laps;
      EXPECT_GE(r.missed_from, next_offset) << "a lap must not re-report delivered offsets";
      EXPECT_GT(r.resumed_at, r.missed_from);
      next_offset = r.resumed_at;
    }
    if (::testing::Test::HasFatalFailure()) break;
  }
  stop = true;
  for (auto& t : producers) t.join();
  EXPECT_GT(delivered, 1000u);
  EXPECT_GT(laps, 0u) << "the test never lapped the reader; it checked nothing";
  std::printf("%llu records delivered intact, %llu laps reported\n", static_cast<unsigned long long>(delivered),
              static_cast<unsigned long long>(laps));
}

}  // namespace
}  // namespace ringbus::test
