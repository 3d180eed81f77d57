// Fault test: the broker process is killed with SIGKILL at random moments
// while producer processes and a consumer stay up; sometimes no broker runs
// for a while (producers go on publishing into the rings, up to
// back-pressure, and are told no_broker), then a new broker starts and adopts
// the rings. Every record a producer got an offset for is read once, in
// order per producer, by the consumer and the group member that stayed up and
// by a new consumer reading the log from the start; offsets stay dense and no
// offset names two records.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "../bus/process_support.h"
#include "../bus/stress_support.h"
#include "../bus/test_support.h"
#include "ringbus/broker.h"
#include "ringbus/group.h"

namespace ringbus::test {
namespace {

constexpr std::uint32_t kPartitions = 2;
constexpr std::uint32_t kProducers = 2;
constexpr std::size_t kValueBytes = 100;

TopicConfig restart_topic() {
  TopicConfig c = topic("t", kPartitions, 256 * 1024, 1024);
  c.log.durability = Durability::page_cache;
  c.log.segment_bytes = 1 << 20;
  return c;
}

// A broker in a child process: starts (adopting what the last one left),
// creates the topic the first time, says "ready" on the pipe, then runs
// until it is killed.
pid_t start_broker(const std::string& instance, const std::string& data) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t pid = spawn([&] {
    ::close(fds[0]);
    BrokerOptions o{instance, data};
    o.logger = [](const char*, const std::string&) {};
    auto b = Broker::start(o);
    if (!b) return 2;
    if (!b->describe_topic("t") && !b->create_topic(restart_topic())) return 3;
    if (::write(fds[1], "ready\n", 6) != 6) return 4;
    for (;;) ::pause();
  });
  ::close(fds[1]);
  pollfd p{fds[0], POLLIN, 0};
  char buf[8] = {};
  const bool ready = ::poll(&p, 1, 30'000) == 1 && ::read(fds[0], buf, sizeof buf) == 6;
  ::close(fds[0]);
  if (!ready) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

// A producer process: publishes `count` stamped records to its partition,
// retrying whatever did not get an offset, and reports each
// "partition offset seq" line on `out` as soon as it has the offset.
int run_producer(const std::string& instance, std::uint32_t id, std::uint64_t count, int out) {
  auto p = Producer::open(instance, "t", {.publish_timeout = std::chrono::milliseconds(200)});
  if (!p) return 2;
  std::uint64_t no_broker = 0;
  for (std::uint64_t seq = 0; seq < count;) {
    const PublishResult r = p->publish("", stamped(id, seq, kValueBytes), {}, id % kPartitions);
    if (r.ok()) {
      const std::string line =
          std::to_string(r.partition) + " " + std::to_string(r.offset) + " " + std::to_string(seq) + "\n";
      if (::write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 3;
      ++seq;
      continue;
    }
    if (r.status == PublishStatus::no_broker) {
      ++no_broker;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    if (r.status != PublishStatus::timed_out) {
      std::fprintf(stderr, "producer %u: %s\n", id, to_string(r.status));
      return 4;
    }
  }
  std::printf("producer %u: told no_broker %llu times\n", id, static_cast<unsigned long long>(no_broker));
  return 0;
}

TEST(BrokerRestart, PublishedRecordsSurviveKillsOfTheBrokerWithClientsStayingUp) {
  const std::string instance = unique_instance("restart");
  const std::filesystem::path data = std::filesystem::temp_directory_path() / ("ringbus-restart-" + instance);
  std::mt19937 rng(std::random_device{}());
  const std::uint64_t per_producer = scaled(150'000);

  pid_t broker = start_broker(instance, data.string());
  ASSERT_GT(broker, 0);

  // The consumer that stays up across every restart.
  std::atomic<bool> stop{false};
  Checker live(kProducers, kPartitions);
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t> seen;  // (partition, offset) -> seq
  std::thread consumer([&] {
    auto c = Consumer::open(instance, "t", from_earliest());
    if (!c) {
      ADD_FAILURE() << c.error().message;
      return;
    }
    while (!stop.load()) {
      const PollResult r = c->poll([&](const Record& rec) {
        live.on_record(rec);
        Stamp s;
        std::memcpy(&s, rec.value.data(), sizeof s);
        seen[{rec.partition, rec.offset}] = s.seq;
      });
      if (r.status != PollStatus::ok) {
        ADD_FAILURE() << "live consumer: " << to_string(r.status) << " at partition " << r.partition << " offset "
                      << r.missed_from;
        return;
      }
      if (r.records == 0) (void)c->wait(std::chrono::milliseconds(5));
    }
  });

  // A publish-subscribe group member that stays up too: its positions live
  // in shared memory, so the restarts are invisible to it as well.
  Checker grouped(kProducers, kPartitions);
  std::thread member([&] {
    GroupOptions o;
    o.settings.start = StartPosition::Kind::earliest;
    auto g = GroupConsumer::join(instance, "t", "g", o);
    if (!g) {
      ADD_FAILURE() << g.error().message;
      return;
    }
    while (!stop.load()) {
      const PollResult r = g->poll([&](const Record& rec) { grouped.on_record(rec); });
      if (r.status != PollStatus::ok) {
        ADD_FAILURE() << "group member: " << to_string(r.status);
        return;
      }
      if (r.records == 0) (void)g->wait(std::chrono::milliseconds(5));
    }
    g->leave();
  });

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::vector<pid_t> producers;
  for (std::uint32_t id = 0; id < kProducers; ++id) {
    producers.push_back(spawn([&, id] {
      ::close(fds[0]);
      return run_producer(instance, id, per_producer, fds[1]);
    }));
  }
  ::close(fds[1]);
  std::string reports;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) reports.append(buf, static_cast<std::size_t>(n));
  });

  const int kills = 6;
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(30, 250)(rng)));
    ::kill(broker, SIGKILL);
    ::waitpid(broker, nullptr, 0);
    // Sometimes no broker at all for a while: producers fill the rings.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 150)(rng)));
    broker = start_broker(instance, data.string());
    ASSERT_GT(broker, 0) << "restart " << k;
  }
  const std::string problems = wait_all(producers, std::chrono::seconds(300));
  reader.join();
  ::close(fds[0]);
  EXPECT_EQ(problems, "");

  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t> acked;  // (partition, offset) -> seq
  std::istringstream lines(reports);
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;
  std::uint64_t seq = 0;
  while (lines >> partition >> offset >> seq) {
    EXPECT_TRUE(acked.emplace(std::make_pair(partition, offset), seq).second)
        << "partition " << partition << " offset " << offset << " given to two records";
  }
  EXPECT_EQ(acked.size(), kProducers * per_producer);

  // The live consumer reads everything (the last broker writes what the
  // rings held).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((live.records() < acked.size() || grouped.records() < acked.size()) && live.ok() && grouped.ok() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop.store(true);
  consumer.join();
  member.join();
  EXPECT_TRUE(live.ok()) << live.error();
  EXPECT_EQ(live.records(), acked.size());
  EXPECT_TRUE(grouped.ok()) << grouped.error();
  EXPECT_EQ(grouped.records(), acked.size());

  // The log, read from the start, holds every acknowledged record once, at
  // the offset its producer was given.
  auto c = Consumer::open(instance, "t", from_earliest());
  ASSERT_TRUE(c.ok()) << c.error().message;
  Checker from_log(kProducers, kPartitions);
  std::size_t matched = 0;
  const auto log_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (from_log.records() < acked.size() && std::chrono::steady_clock::now() < log_deadline) {
    const PollResult r = c->poll([&](const Record& rec) {
      from_log.on_record(rec);
      Stamp s;
      std::memcpy(&s, rec.value.data(), sizeof s);
      const auto it = acked.find({rec.partition, rec.offset});
      if (it == acked.end()) {
        ADD_FAILURE() << "partition " << rec.partition << " offset " << rec.offset << " holds a record no producer was given";
        return;
      }
      EXPECT_EQ(s.seq, it->second) << "partition " << rec.partition << " offset " << rec.offset;
      const auto live_it = seen.find({rec.partition, rec.offset});
      if (live_it != seen.end()) {
        EXPECT_EQ(live_it->second, s.seq) << "offset read as two records";
      }
      ++matched;
    });
    ASSERT_EQ(r.status, PollStatus::ok);
    if (r.records == 0) (void)c->wait(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(from_log.ok()) << from_log.error();
  EXPECT_EQ(matched, acked.size());
  const auto end = c->position(0) + c->position(1);
  std::printf("%zu records over %d broker kills; partitions end at %llu in all\n", acked.size(), kills,
              static_cast<unsigned long long>(end));

  ::kill(broker, SIGKILL);
  ::waitpid(broker, nullptr, 0);
  std::error_code ec;
  std::filesystem::remove_all(instance_directory(instance), ec);
  std::filesystem::remove_all(data, ec);
}

}  // namespace
}  // namespace ringbus::test
