// Threads hammering one topic: 4 producers x 4 gating consumers, every
// consumer checks every record (no loss, no duplicate, order per producer,
// dense offsets). Producers mix the four publish paths (copy, batch,
// zero-copy claim, a Kafka record batch in one batch frame). Runs under
// ThreadSanitizer in tools/check.
#include <atomic>
#include <thread>
#include <vector>

#include "record_batch.h"
#include "stress_support.h"
#include "test_support.h"

namespace ringbus::test {
namespace {

struct StressCase {
  std::uint32_t partitions;
  std::uint64_t records;  // in total, over all producers
  std::size_t value_size;
};

void run_threads(BrokerFixture& f, const StressCase& sc) {
  constexpr std::uint32_t kProducers = 4;
  constexpr std::uint32_t kConsumers = 4;
  f.create(topic("s", sc.partitions, 1 << 20, 4096));
  std::vector<Consumer> consumers;
  for (std::uint32_t i = 0; i < kConsumers; ++i) {
    ConsumerOptions o = from_earliest(/*gating=*/true);
    o.idle = i % 2 == 0 ? IdleStrategy::block : IdleStrategy::yield;
    consumers.push_back(f.consumer("s", o));
  }
  const std::uint64_t per_producer = sc.records / kProducers;
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  std::vector<Checker> checkers(kConsumers, Checker(kProducers, sc.partitions));
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      Checker& check = checkers[c];
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
      while (check.records() < per_producer * kProducers && check.ok() && !failed.load()) {
        const PollResult r = consumers[c].poll([&](const Record& rec) { check.on_record(rec); }, 4096);
        if (r.status != PollStatus::ok) {
          failed = true;
          ADD_FAILURE() << "consumer " << c << ": " << to_string(r.status);
        }
        if (r.records == 0) (void)consumers[c].wait(std::chrono::milliseconds(10));
        if (std::chrono::steady_clock::now() > deadline) {
          failed = true;
          ADD_FAILURE() << "consumer " << c << " timed out at " << check.records() << " records";
        }
      }
    });
  }
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      Producer prod = f.producer("s");
      const std::string key = "producer-" + std::to_string(p);  // keeps a producer on one partition
      std::vector<std::string> values;
      std::vector<Message> batch;
      log::v2::BatchBuilder kafka;
      const std::uint32_t partition = partition_for_key(key, sc.partitions);
      for (std::uint64_t seq = 0; seq < per_producer && !failed.load();) {
        PublishStatus st;
        std::uint64_t n = 1;
        switch (seq % 4) {
          case 0: st = prod.publish(key, stamped(p, seq, sc.value_size)).status; break;
          case 1: {
            n = std::min<std::uint64_t>(1 + seq % 17, per_producer - seq);
            values.clear();
            batch.clear();
            for (std::uint64_t i = 0; i < n; ++i) values.push_back(stamped(p, seq + i, sc.value_size));
            for (const auto& v : values) batch.push_back({key, v});
            st = prod.publish_batch(batch).status;
            break;
          }
          case 3: {
            // The whole batch counts against max_record_size (4096).
            n = std::min<std::uint64_t>({1 + seq % 13, per_producer - seq, 3500 / (sc.value_size + 64)});
            kafka.reset(0, -1);
            for (std::uint64_t i = 0; i < n; ++i) kafka.append(i, 0, key, stamped(p, seq + i, sc.value_size));
            st = prod.publish_record_batch(kafka.finish(), partition).status;
            break;
          }
          default: {
            const std::string v = stamped(p, seq, sc.value_size);
            Claim c = prod.try_claim(v.size(), key);
            st = c.status();
            if (c.ok()) {
              std::memcpy(c.value().data(), v.data(), v.size());
              st = c.commit().status;
            }
            break;
          }
        }
        if (st == PublishStatus::back_pressured) {
          std::this_thread::yield();
          continue;
        }
        if (st != PublishStatus::ok) {
          failed = true;
          ADD_FAILURE() << "producer " << p << ": " << to_string(st);
          return;
        }
        seq += n;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    EXPECT_TRUE(checkers[c].ok()) << "consumer " << c << ": " << checkers[c].error();
    EXPECT_EQ(checkers[c].records(), per_producer * kProducers) << "consumer " << c;
  }
}

using RingStressTest = BrokerFixture;

TEST_F(RingStressTest, FourProducersFourConsumersOnePartitionTenMillionRecords) {
  run_threads(*this, {1, scaled(10'000'000), 16});
}

TEST_F(RingStressTest, FourProducersFourConsumersFourPartitionsMixedSizes) {
  run_threads(*this, {4, scaled(2'000'000), 700});
}

}  // namespace
}  // namespace ringbus::test
