// Crash test of the commit log: a process runs the broker (and so the
// flusher) with producers publishing under durable acknowledgements
// (every_ack); it is killed with SIGKILL at a random moment, restarted, and
// killed again, many times. It reports each acknowledged record on a pipe
// before the kill can lose it. At the end every acknowledged record is in the
// log, once, in order, with its value, and each restart went on from where
// the last broker's ring stopped (it adopts the ring).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../bus/process_support.h"
#include "../bus/stress_support.h"
#include "../bus/test_support.h"
#include "ringbus/broker.h"

namespace ringbus::test {
namespace {

constexpr int kProducers = 3;

// The child: broker + flusher + producer threads. Lines on `out`:
//   "start <end offset>" once the broker has recovered, then
//   "<offset> <value>" for each acknowledged (durable) record.
int run_child(const std::string& instance, const std::string& data, int out, int round) {
  BrokerOptions o{instance, data};
  o.logger = [](const char*, const std::string&) {};
  auto b = Broker::start(o);
  if (!b) return 2;
  if (!b->describe_topic("t")) {
    TopicConfig c = topic("t", 1, 256 * 1024, 1024);
    c.log.durability = Durability::every_ack;
    c.log.segment_bytes = 1 << 20;
    if (!b->create_topic(c)) return 3;
  }
  const std::string start = "start " + std::to_string(b->describe_topic("t")->partition_info[0].end_offset) + "\n";
  if (::write(out, start.data(), start.size()) < 0) return 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kProducers; ++t) {
    threads.emplace_back([&, t] {
      auto p = Producer::open(instance, "t");
      if (!p) return;
      for (std::uint64_t seq = 0;; ++seq) {
        const std::string value = "r" + std::to_string(round) + "p" + std::to_string(t) + "s" + std::to_string(seq);
        const PublishResult r = p->publish("", value);
        if (!r.ok()) continue;
        if (p->wait_durable(r, std::chrono::seconds(5)) != PublishStatus::ok) continue;
        // One write(2) per line: lines from several threads never interleave.
        const std::string line = std::to_string(r.offset) + " " + value + "\n";
        if (::write(out, line.data(), line.size()) < 0) return;
      }
    });
  }
  for (auto& t : threads) t.join();
  return 0;
}

TEST(LogCrash, AcknowledgedRecordsSurviveKillsOfTheFlusherProcess) {
  const std::string instance = unique_instance("logcrash");
  const std::filesystem::path data = std::filesystem::temp_directory_path() / ("ringbus-crash-" + instance);
  std::mt19937 rng(std::random_device{}());
  std::map<std::uint64_t, std::string> acked;
  std::uint64_t highest_acked_end = 0;  // every restart must begin at or after this
  const int rounds = static_cast<int>(scaled(12));
  for (int round = 0; round < rounds; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = spawn([&] {
      ::close(fds[0]);
      return run_child(instance, data.string(), fds[1], round);
    });
    ::close(fds[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 400)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::string text;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    std::istringstream lines(text);
    std::string line;
    bool started = false;
    while (std::getline(lines, line)) {
      if (lines.eof()) break;  // a line cut by the kill: not a whole report
      std::istringstream f(line);
      std::string first;
      std::string value;
      f >> first >> value;
      if (first == "start") {
        const std::uint64_t start = std::stoull(value);
        EXPECT_GE(start, highest_acked_end) << "round " << round << " restarted below an acknowledged record";
        started = true;
        continue;
      }
      const std::uint64_t offset = std::stoull(first);
      EXPECT_TRUE(acked.emplace(offset, value).second) << "offset " << offset << " acknowledged twice";
      highest_acked_end = std::max(highest_acked_end, offset + 1);
    }
    EXPECT_TRUE(started || WIFEXITED(status)) << "round " << round << " never started";
  }
  // Recover once more and read everything.
  {
    BrokerOptions o{instance, data.string()};
    o.logger = [](const char*, const std::string&) {};
    auto b = Broker::start(o);
    ASSERT_TRUE(b.ok()) << b.error().message;
    const std::uint64_t end = b->describe_topic("t")->partition_info[0].end_offset;
    EXPECT_GE(end, highest_acked_end);
    auto c = Consumer::open(instance, "t", from_earliest());
    ASSERT_TRUE(c.ok()) << c.error().message;
    // Offsets are dense but for the claims of producers killed with their
    // broker: the next broker adopted the ring and its flusher retired them.
    std::uint64_t next = 0;
    std::size_t matched = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (c->position(0) < end && std::chrono::steady_clock::now() < deadline) {
      const PollResult r = c->poll([&](const Record& rec) {
        ASSERT_GE(rec.offset, next) << "a duplicate";
        const auto it = acked.find(rec.offset);
        if (it != acked.end()) {
          EXPECT_EQ(rec.value, it->second) << "offset " << rec.offset;
          ++matched;
        }
        next = rec.offset + 1;
      });
      ASSERT_EQ(r.status, PollStatus::ok);
      if (r.records == 0) (void)c->wait(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(c->position(0), end);
    EXPECT_EQ(matched, acked.size()) << "acknowledged records missing";
    EXPECT_GT(acked.size(), 0u);
    std::printf("%zu acknowledged records over %d kills; log end %llu\n", acked.size(), rounds,
                static_cast<unsigned long long>(end));
  }
  std::error_code ec;
  std::filesystem::remove_all(data, ec);
}

}  // namespace
}  // namespace ringbus::test
