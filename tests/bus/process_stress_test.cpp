// Separate processes on one topic: 4 producer processes x 4 gating consumer
// processes, 10 million records; each consumer checks every record.
#include <vector>

#include "process_support.h"
#include "stress_support.h"
#include "test_support.h"

namespace ringbus::test {
namespace {

using ProcessStressTest = BrokerFixture;

TEST_F(ProcessStressTest, FourProducerProcessesFourConsumerProcessesTenMillionRecords) {
  constexpr std::uint32_t kProducers = 4;
  constexpr std::uint32_t kConsumers = 4;
  constexpr std::uint64_t kPerProducer = 10'000'000 / kProducers;
  create(topic("s", 1, 4 << 20, 4096));

  // Consumers register their gating positions before any producer starts,
  // so none of them can miss a record. Each says "ready" through a pipe.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  std::vector<pid_t> pids;
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    pids.push_back(spawn([&, c] {
      ::close(ready[0]);
      ConsumerOptions o = from_earliest(/*gating=*/true);
      o.idle = c % 2 == 0 ? IdleStrategy::block : IdleStrategy::busy_spin;
      auto cons = Consumer::open(instance, "s", o);
      if (!cons) {
        std::fprintf(stderr, "consumer %u: %s\n", c, cons.error().message.c_str());
        return 1;
      }
      (void)::write(ready[1], "r", 1);
      Checker check(kProducers, 1);
      while (check.records() < kPerProducer * kProducers && check.ok()) {
        const PollResult r = cons->poll([&](const Record& rec) { check.on_record(rec); }, 8192);
        if (r.status != PollStatus::ok) {
          std::fprintf(stderr, "consumer %u: %s\n", c, to_string(r.status));
          return 1;
        }
        if (r.records == 0) (void)cons->wait(std::chrono::milliseconds(10));
      }
      if (!check.ok()) {
        std::fprintf(stderr, "consumer %u: %s\n", c, check.error().c_str());
        return 1;
      }
      return 0;
    }));
  }
  ::close(ready[1]);
  char buf[kConsumers];
  std::size_t got = 0;
  while (got < kConsumers) {
    const ssize_t n = ::read(ready[0], buf, sizeof buf);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(ready[0]);
  ASSERT_EQ(got, kConsumers) << "a consumer process failed to start";

  for (std::uint32_t p = 0; p < kProducers; ++p) {
    pids.push_back(spawn([&, p] {
      auto prod = Producer::open(instance, "s", {std::chrono::seconds(60), true});
      if (!prod) return 1;
      for (std::uint64_t seq = 0; seq < kPerProducer;) {
        // Batches of 8 most of the time, single records otherwise.
        if (seq % 64 < 56 && seq + 8 <= kPerProducer) {
          std::string v[8];
          Message m[8];
          for (int i = 0; i < 8; ++i) {
            v[i] = stamped(p, seq + i, 24);
            m[i] = Message{"", v[i]};
          }
          const PublishResult r = prod->publish_batch(m, 0);
          if (!r.ok()) return std::fprintf(stderr, "producer %u: %s\n", p, to_string(r.status)), 1;
          seq += 8;
        } else {
          const PublishResult r = prod->publish("", stamped(p, seq, 24), {}, 0);
          if (!r.ok()) return std::fprintf(stderr, "producer %u: %s\n", p, to_string(r.status)), 1;
          ++seq;
        }
      }
      return 0;
    }));
  }
  EXPECT_EQ(wait_all(pids, std::chrono::seconds(300)), "");
  auto info = broker.describe_topic("s");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->partition_info[0].end_offset, kPerProducer * kProducers);
}

}  // namespace
}  // namespace ringbus::test
