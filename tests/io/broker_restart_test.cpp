// Fault test: the broker process is killed with SIGKILL at random moments
// while producer processes, a consumer process, and a publish-subscribe and
// a queue group member process stay up; sometimes no broker runs for a while
// (producers go on publishing into the rings, up to back-pressure, and are
// told no_broker), then a new broker starts and adopts the rings. Every
// record a producer got an offset for is read by each reader that stayed up
// (once, in order per producer; the queue member at least once) and by a new
// consumer reading the log from the start; offsets stay dense and no offset
// names two records.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
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

// A consumer process that stays up across every restart: plain, a member of
// the publish-subscribe group "g", or a member of the queue group "q".
// Reads until it has `expected` records, checks them (plain and pubsub: each
// once, in order per producer, dense offsets; a queue member: each once at
// least, the checks are the parent's) and reports "partition offset seq" per
// record on `out`.
enum class Reader { plain, pubsub, queue };
int run_consumer(const std::string& instance, Reader kind, std::uint64_t expected, int out) {
  const char* who = kind == Reader::plain ? "consumer" : kind == Reader::pubsub ? "pubsub member" : "queue member";
  std::optional<Consumer> plain;
  std::optional<GroupConsumer> grouped;
  if (kind == Reader::plain) {
    auto c = Consumer::open(instance, "t", from_earliest());
    if (!c) return 2;
    plain.emplace(std::move(c.value()));
  } else {
    GroupOptions o;
    o.settings.start = StartPosition::Kind::earliest;
    if (kind == Reader::queue) o.settings.mode = GroupMode::queue;
    auto g = GroupConsumer::join(instance, "t", kind == Reader::queue ? "q" : "g", o);
    if (!g) return 2;
    grouped.emplace(std::move(g.value()));
  }
  Checker check(kProducers, kPartitions);
  std::set<std::pair<std::uint32_t, std::uint64_t>> distinct;  // a queue member's
  std::string lines;
  auto on_record = [&](const Record& rec) {
    if (kind == Reader::queue) {
      distinct.emplace(rec.partition, rec.offset);
    } else {
      check.on_record(rec);
    }
    Stamp st;
    std::memcpy(&st, rec.value.data(), sizeof st);
    lines += std::to_string(rec.partition) + " " + std::to_string(rec.offset) + " " + std::to_string(st.seq) + "\n";
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(600);
  const auto has = [&] { return kind == Reader::queue ? distinct.size() : check.records(); };
  while (check.ok() && has() < expected && std::chrono::steady_clock::now() < deadline) {
    const PollResult r = grouped ? grouped->poll(on_record) : plain->poll(on_record);
    if (r.status != PollStatus::ok) {
      std::fprintf(stderr, "%s: %s at partition %u offset %llu\n", who, to_string(r.status), r.partition,
                   static_cast<unsigned long long>(r.missed_from));
      return 3;
    }
    if (!lines.empty() && ::write(out, lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) return 4;
    lines.clear();
    if (r.records == 0) (void)(grouped ? grouped->wait(std::chrono::milliseconds(5)) : plain->wait(std::chrono::milliseconds(5)));
  }
  if (grouped) grouped->leave();
  if (!check.ok() || has() != expected) {
    std::fprintf(stderr, "%s: %s (%llu of %llu records)\n", who, check.ok() ? "timed out" : check.error().c_str(),
                 static_cast<unsigned long long>(has()), static_cast<unsigned long long>(expected));
    return 5;
  }
  return 0;
}

// What child processes write on a pipe, collected by a thread.
class Collected {
 public:
  Collected() {
    if (::pipe(fds_) != 0) fds_[0] = fds_[1] = -1;
  }
  int writer() const { return fds_[1]; }
  // In the parent, once the children have it: starts reading.
  void start() {
    ::close(fds_[1]);
    thread_ = std::thread([this] {
      char buf[65536];
      ssize_t n;
      while ((n = ::read(fds_[0], buf, sizeof buf)) > 0) text_.append(buf, static_cast<std::size_t>(n));
    });
  }
  // Once every writer is gone.
  const std::string& text() {
    if (thread_.joinable()) thread_.join();
    return text_;
  }
  ~Collected() {
    if (thread_.joinable()) thread_.join();
    ::close(fds_[0]);
  }

 private:
  int fds_[2];
  std::string text_;
  std::thread thread_;
};

// "partition offset seq" lines, by (partition, offset); false if one is there twice.
bool parse_reports(const std::string& text, std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t>& out) {
  std::istringstream lines(text);
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;
  std::uint64_t seq = 0;
  bool once = true;
  while (lines >> partition >> offset >> seq) once = out.emplace(std::make_pair(partition, offset), seq).second && once;
  return once;
}

TEST(BrokerRestart, PublishedRecordsSurviveKillsOfTheBrokerWithClientsStayingUp) {
  const std::string instance = unique_instance("restart");
  const std::filesystem::path data = std::filesystem::temp_directory_path() / ("ringbus-restart-" + instance);
  std::mt19937 rng(std::random_device{}());
  const std::uint64_t per_producer = scaled(150'000);
  const std::uint64_t expected = kProducers * per_producer;

  pid_t broker = start_broker(instance, data.string());
  ASSERT_GT(broker, 0);

  // The consumer and the group member that stay up across every restart
  // (a group's positions live in shared memory: the restarts are invisible
  // to it as well), then the producers.
  Collected live;
  Collected grouped;
  Collected queued;
  Collected acks;
  std::vector<pid_t> readers;
  readers.push_back(spawn([&] { return run_consumer(instance, Reader::plain, expected, live.writer()); }));
  readers.push_back(spawn([&] { return run_consumer(instance, Reader::pubsub, expected, grouped.writer()); }));
  readers.push_back(spawn([&] { return run_consumer(instance, Reader::queue, expected, queued.writer()); }));
  std::vector<pid_t> producers;
  for (std::uint32_t id = 0; id < kProducers; ++id) {
    producers.push_back(spawn([&, id] { return run_producer(instance, id, per_producer, acks.writer()); }));
  }
  live.start();
  grouped.start();
  queued.start();
  acks.start();

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
  EXPECT_EQ(wait_all(producers, std::chrono::seconds(300)), "");
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t> acked;  // (partition, offset) -> seq
  EXPECT_TRUE(parse_reports(acks.text(), acked)) << "an offset was given to two records";
  EXPECT_EQ(acked.size(), expected);

  // The consumer and the member read everything (the last broker writes
  // what the rings held), each once, in order, at the offsets the producers
  // were given.
  EXPECT_EQ(wait_all(readers, std::chrono::seconds(120)), "");
  for (Collected* c : {&live, &grouped, &queued}) {
    std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t> read;
    const bool once = parse_reports(c->text(), read);
    // The queue member acknowledges each record as its handler returns: a
    // record is handed over again only if its lease ran out unacknowledged
    // (at least once); the others read each exactly once.
    if (c != &queued) {
      EXPECT_TRUE(once) << "an offset read twice";
    }
    EXPECT_EQ(read.size(), acked.size());
    std::size_t differ = 0;
    for (const auto& [at, seq] : read) differ += acked.contains(at) && acked.at(at) == seq ? 0 : 1;
    EXPECT_EQ(differ, 0u) << "offsets read as another record than their producer was given";
  }

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
