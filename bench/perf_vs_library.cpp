// ringbus-perf-bench: does the command line's `ringbus perf` add any cost of
// its own? In each repetition, the same workload runs through the library in
// this process (the baseline) and through the `ringbus perf` binary in a
// child process, on an embedded broker's topic:
//   produce: N records of 64 bytes in publish_batch calls of 64;
//   consume: N records of 64 bytes from the earliest offset, plain consumer.
// The ratio (ringbus perf / library) is taken within each repetition; its
// median is the figure. Goal: >= 0.9x (no hidden cost).
//
// A meter must look at each record: `ringbus perf consume` adds up the
// values' bytes and keeps each poll's first timestamp. The consume baseline
// does the same in its handler, so the ratio shows what the command line
// adds beyond that; a third line shows what that metering costs against a
// handler that does nothing (library against library).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_util.h"
#include "ringbus/broker.h"
#include "ringbus/consumer.h"
#include "ringbus/producer.h"

using namespace ringbus;
using namespace ringbus::bench;

namespace {

struct Config {
  std::uint64_t records = 5'000'000;
  int repetitions = 9;
  std::string cli = RINGBUS_CLI_PATH;
};

// Runs `ringbus perf ...`; returns the records/s of its summary line (0 on failure).
double run_cli(const Config& c, const std::string& instance, const std::vector<std::string>& args) {
  std::string cmd = c.cli + " --instance " + instance;
  for (const auto& a : args) cmd += " " + a;
  cmd += " 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return 0;
  char line[1024];
  double rate = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    const char* at = std::strstr(line, " s: ");
    if (at != nullptr) rate = std::strtod(at + 4, nullptr);
  }
  return ::pclose(f) == 0 ? rate : 0;
}

double library_produce(const std::string& instance, const std::string& topic, std::uint64_t n) {
  auto p = Producer::open(instance, topic);
  const std::string value(64, 'x');
  std::vector<Message> batch(64, Message{{}, value});
  const std::int64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; i += batch.size()) {
    if (!p->publish_batch(batch).ok()) return 0;
  }
  return static_cast<double>(n) * 1e9 / static_cast<double>(now_ns() - t0);
}

// metered: the handler does what `ringbus perf consume`'s does (cli_perf.cpp).
double library_consume(const std::string& instance, const std::string& topic, std::uint64_t n, bool metered) {
  ConsumerOptions o;
  o.start = StartPosition::earliest();
  auto c = Consumer::open(instance, topic, o);
  std::uint64_t got = 0;
  struct Tally {
    std::uint64_t bytes = 0;
    std::int64_t first_ts = 0;
  } t;
  auto meter = [&t](const Record& r) {
    if (t.first_ts == 0) t.first_ts = r.publish_ns;
    t.bytes += r.value.size();
  };
  const std::int64_t t0 = now_ns();
  while (got < n) {
    t.first_ts = 0;
    got += metered ? c->poll(meter, 4096).records : c->poll([](const Record& r) { escape(r.value.data()); }, 4096).records;
  }
  escape(&t);
  return static_cast<double>(got) * 1e9 / static_cast<double>(now_ns() - t0);
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app{"ringbus-perf-bench: `ringbus perf` against the same workload through the library (bench/README.md)"};
  app.add_option("--records", c.records, "records per case")->capture_default_str();
  app.add_option("--repetitions", c.repetitions, "repetitions")->capture_default_str();
  app.add_option("--cli", c.cli, "the ringbus binary")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const std::string instance = "perf-bench-" + std::to_string(::getpid());
  auto broker = Broker::start({instance});
  if (!broker) {
    std::fprintf(stderr, "%s\n", broker.error().message.c_str());
    return 1;
  }
  std::uint64_t ring = 1 << 20;
  while (ring < 2 * c.records * 96) ring <<= 1;  // every record fits: nobody laps anybody
  std::printf("machine: %s, %u CPUs; %llu records of 64 bytes per case, %d repetitions\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), static_cast<unsigned long long>(c.records), c.repetitions);
  std::vector<double> lib_p, cli_p, lib_c, cli_c, bare_c, rp, rc, rm;
  const std::string n = std::to_string(c.records);
  for (int rep = 0; rep < c.repetitions; ++rep) {
    // A fresh topic per case: each writes to (or reads from) an empty ring the same way.
    auto topic = [&](const std::string& name) {
      TopicConfig t;
      t.name = name;
      t.ring_bytes = ring;
      (void)broker->delete_topic(name);
      if (!broker->create_topic(t)) std::exit(1);
    };
    topic("lib");
    lib_p.push_back(library_produce(instance, "lib", c.records));
    topic("cli");
    cli_p.push_back(run_cli(c, instance, {"perf", "produce", "cli", "--records", n, "--record-size", "64", "--batch", "64"}));
    rp.push_back(cli_p.back() / lib_p.back());
    // Both topics now hold N records: read them back.
    bare_c.push_back(library_consume(instance, "lib", c.records, false));
    lib_c.push_back(library_consume(instance, "lib", c.records, true));
    cli_c.push_back(run_cli(c, instance, {"perf", "consume", "cli", "--records", n, "--from", "earliest"}));
    rc.push_back(cli_c.back() / lib_c.back());
    rm.push_back(lib_c.back() / bare_c.back());
  }
  auto line = [&](const char* what, const std::vector<double>& cli, const std::vector<double>& lib, const std::vector<double>& r) {
    std::printf("ratio %s 64B: ringbus perf %.2f Mrec/s / library %.2f Mrec/s = %s (%s, median %s; %s)\n", what,
                median(cli) / 1e6, median(lib) / 1e6, ratio_str(median(cli) / median(lib)).c_str(), per_run(r).c_str(),
                ratio_str(median(r)).c_str(), goal_str(median(r), 0.9).c_str());
  };
  line("produce (batches of 64)", cli_p, lib_p, rp);
  line("consume (from earliest, both metering)", cli_c, lib_c, rc);
  std::printf("ratio consume metering 64B: library metering %.2f Mrec/s / library bare handler %.2f Mrec/s = %s (%s, median %s)\n",
              median(lib_c) / 1e6, median(bare_c) / 1e6, ratio_str(median(lib_c) / median(bare_c)).c_str(),
              per_run(rm).c_str(), ratio_str(median(rm)).c_str());
  return 0;
}
