// Consumer groups under threads: producers publishing while queue members
// share the records (each exactly once, none lost) and while pubsub members
// join and leave (every record seen, none lost). Runs under ThreadSanitizer.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "ringbus/group.h"
#include "test_support.h"

namespace ringbus::test {
namespace {

using namespace std::chrono_literals;
using GroupStressTest = BrokerFixture;

constexpr int kProducers = 3;

// "producer:sequence" values.
void produce(const std::string& instance, const std::string& t, int id, int n) {
  auto p = Producer::open(instance, t);
  ASSERT_TRUE(p.ok());
  for (int i = 0; i < n; ++i) {
    const std::string v = std::to_string(id) + ":" + std::to_string(i);
    ASSERT_TRUE(p->publish(v, v).ok());
  }
}

TEST_F(GroupStressTest, QueueMembersSeeEveryRecordExactlyOnce) {
  constexpr int kMembers = 4;
  constexpr int kPerProducer = 20'000;
  // Rings that hold everything: a non-gating reader lapped with no commit
  // log loses records (PollStatus::lapped), which is not what this checks.
  create(topic("q", 2, 8 << 20));
  GroupOptions o;
  o.settings.mode = GroupMode::queue;
  o.settings.start = StartPosition::Kind::earliest;
  std::mutex mu;
  std::multiset<std::string> seen;
  std::atomic<int> total{0};
  std::vector<std::thread> threads;
  for (int m = 0; m < kMembers; ++m) {
    threads.emplace_back([&, m] {
      auto g = GroupConsumer::join(instance, "q", "workers", o);
      ASSERT_TRUE(g.ok()) << g.error().message;
      std::vector<std::string> mine;
      const auto deadline = std::chrono::steady_clock::now() + 120s;
      while (total.load() < kProducers * kPerProducer && std::chrono::steady_clock::now() < deadline) {
        const PollResult r = g->poll([&](const Record& rec) { mine.emplace_back(rec.value); }, 256 + m);
        EXPECT_EQ(r.status, PollStatus::ok);
        total.fetch_add(static_cast<int>(r.records));
        if (r.records == 0) (void)g->wait(5ms);
      }
      std::lock_guard lock(mu);
      seen.insert(mine.begin(), mine.end());
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) producers.emplace_back(produce, instance, "q", p, kPerProducer);
  for (auto& t : producers) t.join();
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kProducers * kPerProducer));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size()) << "a record was delivered twice";
  auto info = describe_group(instance, "q", "workers");
  ASSERT_TRUE(info.ok());
  for (const auto& p : info->partitions) EXPECT_EQ(p.committed, p.end_offset);
}

TEST_F(GroupStressTest, PubsubMembersComingAndGoingLoseNothing) {
  constexpr int kPerProducer = 20'000;
  create(topic("p", 4, 8 << 20));
  GroupOptions o;
  o.settings.start = StartPosition::Kind::earliest;
  o.commit_interval = 1ms;
  std::mutex mu;
  std::set<std::string> seen;
  std::atomic<bool> done{false};
  auto member = [&](std::chrono::milliseconds life) {
    while (!done.load()) {
      auto g = GroupConsumer::join(instance, "p", "subs", o);
      ASSERT_TRUE(g.ok()) << g.error().message;
      const auto until = std::chrono::steady_clock::now() + life;
      while (!done.load() && std::chrono::steady_clock::now() < until) {
        std::vector<std::string> got;
        (void)g->poll([&](const Record& rec) { got.emplace_back(rec.value); }, 512);
        {
          std::lock_guard lock(mu);
          seen.insert(got.begin(), got.end());
          if (seen.size() == static_cast<std::size_t>(kProducers * kPerProducer)) done = true;
        }
        if (got.empty()) (void)g->wait(2ms);
      }
    }  // leaves: commits and hands its partitions on
  };
  std::vector<std::thread> members;
  members.emplace_back(member, 10'000ms);  // one that stays
  members.emplace_back(member, 30ms);      // two that keep leaving and joining again
  members.emplace_back(member, 45ms);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) producers.emplace_back(produce, instance, "p", p, kPerProducer);
  for (auto& t : producers) t.join();
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!done.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  done = true;
  for (auto& t : members) t.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kProducers * kPerProducer)) << "records were lost";
}

}  // namespace
}  // namespace ringbus::test
