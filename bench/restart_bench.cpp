// Broker restart time (issue 13): a broker with T topics x P partitions of
// 1 MiB rings is killed with SIGKILL; producers fill every ring while no
// broker runs (each up to its dead flusher's gate: the ring is full of
// records not yet on disk); then a new broker starts, adopts the rings and
// writes what they hold. Measured: the time until Broker::start() returns
// (clients are served again from then) and until every partition's log has
// caught up with its ring. Baseline, same run, same file system: a plain
// sequential write of as many bytes (the records' frames) to one file, with
// no sync (the topics are page_cache durability, which does not sync either).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_util.h"
#include "ringbus/broker.h"
#include "ringbus/producer.h"

namespace {

using namespace ringbus;
namespace fs = std::filesystem;

std::string topic_name(int t) { return "restart-" + std::to_string(t); }

double seconds_since(std::int64_t t0) { return static_cast<double>(bench::now_ns() - t0) / 1e9; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringbus-restart-bench: restart time of a broker whose rings are full of unflushed records"};
  int topics = 100;
  int partitions = 8;
  int runs = 3;
  std::string dir = "/var/tmp";
  bool verbose = false;
  app.add_option("--topics", topics, "topics (default 100)")->check(CLI::Range(1, 10000));
  app.add_option("--partitions", partitions, "partitions per topic (default 8)")->check(CLI::Range(1, 1024));
  app.add_option("--runs", runs, "runs; medians are printed (default 3)")->check(CLI::Range(1, 100));
  app.add_option("--dir", dir, "where the data directory goes (default /var/tmp)");
  app.add_flag("--verbose", verbose, "the restarted broker's log on stderr");
  CLI11_PARSE(app, argc, argv);

  std::vector<double> starts;
  std::vector<double> caught_up;
  std::vector<double> raw;
  std::uint64_t unflushed_bytes = 0;
  for (int run = 0; run < runs; ++run) {
    const std::string instance = "restart-bench-" + std::to_string(::getpid()) + "-" + std::to_string(run);
    const fs::path data = fs::path(dir) / ("ringbus-" + instance);
    BrokerOptions options{instance, data.string()};
    options.logger = [](const char*, const std::string&) {};
    // The first broker: creates the topics, then dies.
    int fds[2];
    if (::pipe(fds) != 0) return 1;
    const pid_t child = ::fork();
    if (child == 0) {
      ::close(fds[0]);
      auto b = Broker::start(options);
      if (!b) _exit(2);
      for (int t = 0; t < topics; ++t) {
        TopicConfig c;
        c.name = topic_name(t);
        c.partitions = static_cast<std::uint32_t>(partitions);
        c.ring_bytes = 1 << 20;
        c.max_record_size = 4096;
        c.log.durability = Durability::page_cache;
        if (!b->create_topic(c)) _exit(3);
      }
      if (::write(fds[1], "r", 1) != 1) _exit(4);
      for (;;) ::pause();
    }
    ::close(fds[1]);
    char ready = 0;
    if (::read(fds[0], &ready, 1) != 1) {
      std::fprintf(stderr, "the first broker did not start\n");
      return 1;
    }
    ::close(fds[0]);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);

    // Fill every ring while no broker runs.
    const std::string value(1000, 'x');
    std::uint64_t records = 0;
    for (int t = 0; t < topics; ++t) {
      auto p = Producer::open(instance, topic_name(t));
      if (!p) return 1;
      for (std::uint32_t part = 0; part < static_cast<std::uint32_t>(partitions); ++part) {
        while (p->try_publish("", value, {}, part).ok()) ++records;
      }
    }
    unflushed_bytes = records * 1056;  // 32-byte header + 1000 bytes, aligned to 32

    // The restart.
    if (verbose) options.logger = nullptr;  // the broker's own stderr log, with times
    const std::int64_t t0 = bench::now_ns();
    auto b = Broker::start(options);
    if (!b) {
      std::fprintf(stderr, "restart failed: %s\n", b.error().message.c_str());
      return 1;
    }
    starts.push_back(seconds_since(t0));
    for (bool done = false; !done;) {
      done = true;
      for (int t = 0; t < topics && done; ++t) {
        Result<TopicInfo> info = b->describe_topic(topic_name(t));
        if (!info) return 1;
        for (const PartitionInfo& pi : info->partition_info) {
          if (pi.written_offset < pi.end_offset) done = false;
        }
      }
      if (!done) ::usleep(1000);
    }
    caught_up.push_back(seconds_since(t0));
    b->close();

    // The baseline: the same bytes written sequentially to one file.
    const std::string path = (data / "raw-baseline").string();
    std::vector<char> chunk(1 << 20, 'x');
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const std::int64_t r0 = bench::now_ns();
    for (std::uint64_t done = 0; done < unflushed_bytes; done += chunk.size()) {
      if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) return 1;
    }
    raw.push_back(seconds_since(r0));
    ::close(fd);
    std::error_code ec;
    fs::remove_all(data, ec);
    std::printf("run %d: %llu records (%.0f MiB) in %d rings: start() %.3f s, all written %.3f s; raw write %.3f s\n", run,
                static_cast<unsigned long long>(records), static_cast<double>(unflushed_bytes) / (1 << 20),
                topics * partitions, starts.back(), caught_up.back(), raw.back());
  }
  const double s = bench::median(starts);
  const double c = bench::median(caught_up);
  const double r = bench::median(raw);
  std::printf("restart %dx%d rings of 1 MiB, full: start() %.3f s (goal < 2 s: %s), all written %.3f s\n", topics,
              partitions, s, s < 2.0 ? "met" : "MISSED", c);
  std::printf("ratio restart writing %.0f MiB: raw sequential write %.3f s / restart until written %.3f s = %.2fx\n",
              static_cast<double>(unflushed_bytes) / (1 << 20), r, c, r / c);
  return 0;
}
