// ringbus-group-bench: what a queue group's per-record claim costs. A topic
// is filled with N records; then, in turn within each repetition, a plain
// (non-gating) consumer and queue groups of 1, 2 and 4 member threads read
// all of it, each group a fresh one from the earliest offset. The plain
// consumer is the baseline: the goal (issue 4) is a 1-member queue group at
// no less than half its throughput at 64-byte records. Ratios are taken
// within each repetition; the goal is judged on their median.
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_util.h"
#include "ringbus/broker.h"
#include "ringbus/consumer.h"
#include "ringbus/group.h"
#include "ringbus/producer.h"

using namespace ringbus;
using namespace ringbus::bench;

namespace {

struct Config {
  std::uint64_t records = 2'000'000;
  std::uint32_t value_bytes = 64;
  int repetitions = 5;
  std::uint32_t partitions = 1;
};

// Records per second for a plain consumer to read everything.
double plain(const std::string& instance, const Config& c) {
  ConsumerOptions o;
  o.start = StartPosition::earliest();
  auto cons = Consumer::open(instance, "g", o);
  if (!cons) {
    std::fprintf(stderr, "%s\n", cons.error().message.c_str());
    std::exit(1);
  }
  std::uint64_t n = 0;
  const std::int64_t t0 = now_ns();
  while (n < c.records) {
    const PollResult r = cons->poll([&](const Record& rec) { escape(rec.value.data()); }, 4096);
    n += r.records;
  }
  return static_cast<double>(n) * 1e9 / static_cast<double>(now_ns() - t0);
}

// Records per second for a fresh queue group of `members` threads.
double queue(const std::string& instance, const Config& c, int members, int run) {
  const std::string group = "q" + std::to_string(members) + "-" + std::to_string(run);
  GroupSettings s;
  s.mode = GroupMode::queue;
  s.start = StartPosition::Kind::earliest;
  std::vector<GroupConsumer> joined;
  for (int m = 0; m < members; ++m) {
    GroupOptions o;
    o.settings = s;
    o.idle = IdleStrategy::yield;
    auto g = GroupConsumer::join(instance, "g", group, o);
    if (!g) {
      std::fprintf(stderr, "%s\n", g.error().message.c_str());
      std::exit(1);
    }
    joined.push_back(std::move(g.value()));
  }
  std::atomic<std::uint64_t> total{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int m = 0; m < members; ++m) {
    threads.emplace_back([&, m] {
      while (!go.load()) cpu_relax();
      std::uint64_t mine = 0;
      while (total.load(std::memory_order_relaxed) < c.records) {
        const PollResult r = joined[static_cast<std::size_t>(m)].poll([&](const Record& rec) { escape(rec.value.data()); }, 4096);
        if (r.records != 0) {
          total.fetch_add(r.records, std::memory_order_relaxed);
          mine += r.records;
        } else if (members > 1) {
          sched_yield();  // 2 cores: let the member that holds work run
        }
      }
      (void)mine;
    });
  }
  const std::int64_t t0 = now_ns();
  go = true;
  for (auto& t : threads) t.join();
  const std::int64_t t1 = now_ns();
  return static_cast<double>(total.load()) * 1e9 / static_cast<double>(t1 - t0);
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app{"ringbus-group-bench: queue-group read throughput against a plain consumer (bench/README.md)"};
  app.add_option("--records", c.records, "records in the topic")->capture_default_str();
  app.add_option("--value-bytes", c.value_bytes, "value size")->capture_default_str();
  app.add_option("--repetitions", c.repetitions, "repetitions (medians are reported)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string instance = "group-bench-" + std::to_string(::getpid());
  auto broker = Broker::start({instance});
  if (!broker) {
    std::fprintf(stderr, "%s\n", broker.error().message.c_str());
    return 1;
  }
  TopicConfig t;
  t.name = "g";
  t.partitions = c.partitions;
  // Everything fits: no reader is ever lapped.
  std::uint64_t ring = 1 << 20;
  while (ring < 2 * c.records * (32 + c.value_bytes + 32)) ring <<= 1;
  t.ring_bytes = ring;
  if (auto r = broker->create_topic(t); !r) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return 1;
  }
  {
    auto p = Producer::open(instance, "g");
    const std::string value(c.value_bytes, 'v');
    std::vector<Message> batch(64, Message{{}, value});
    for (std::uint64_t i = 0; i < c.records; i += batch.size()) {
      if (!p->publish_batch(batch).ok()) return 1;
    }
  }
  std::printf("machine: %s, %u CPUs\n", cpu_model().c_str(), std::thread::hardware_concurrency());
  std::printf("%llu records of %u bytes, %d repetitions; producer batches of 64 records\n",
              static_cast<unsigned long long>(c.records), c.value_bytes, c.repetitions);
  std::vector<double> base;
  std::vector<std::vector<double>> q(3);
  std::vector<std::vector<double>> ratio(3);
  const int sizes[] = {1, 2, 4};
  for (int run = 0; run < c.repetitions; ++run) {
    const double b = plain(instance, c);
    base.push_back(b);
    for (int i = 0; i < 3; ++i) {
      const double x = queue(instance, c, sizes[i], run);
      q[static_cast<std::size_t>(i)].push_back(x);
      ratio[static_cast<std::size_t>(i)].push_back(x / b);
    }
  }
  for (int i = 0; i < 3; ++i) {
    const auto& r = ratio[static_cast<std::size_t>(i)];
    std::string line = "ratio queue group " + std::to_string(sizes[i]) + " member" + (sizes[i] > 1 ? "s" : "") + " " +
                       std::to_string(c.value_bytes) + "B: " + fmt("%.2f", median(q[static_cast<std::size_t>(i)]) / 1e6) +
                       " Mrec/s / plain consumer " + fmt("%.2f", median(base) / 1e6) + " Mrec/s = " +
                       ratio_str(median(q[static_cast<std::size_t>(i)]) / median(base)) + " (" + per_run(r) + ", median " +
                       ratio_str(median(r));
    if (sizes[i] == 1) line += "; " + goal_str(median(r), 0.5);
    std::printf("%s)\n", line.c_str());
  }
  return 0;
}
