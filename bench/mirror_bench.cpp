// ringbus-mirror-bench: how fast a mirror copies its leader's log (issue
// "Peer mirrors and failover"), against a raw TCP stream of the same bytes
// between the same two processes, in the same run.
//
// The leader's log (1 KiB records in batches as the flusher writes them) is
// written once on tmpfs, so the disk is out of it. Each repetition then runs
// both cases with a fresh child process as the sending side:
//   raw TCP: the child reads the log's segment files and sends their bytes
//            down one TCP connection over loopback; the parent receives them;
//   mirror:  the child runs a ReplicationServer on the log; the parent runs a
//            MirrorFollower into a fresh mirror log on tmpfs (durability
//            page_cache, as Kafka's followers acknowledge) until it holds all;
//   raw TCP into a file: as raw TCP, the parent also writing what it gets to
//            a file beside the logs (not the goal's baseline: it shows what
//            the mirror's own file write costs);
//   raw TCP into a mapped file: as raw TCP, the parent receiving straight
//            into a file mapped beside the logs, its pages allocated and
//            mapped before the clock starts (one copy where the file write
//            makes two: what a mirror receiving into segments made ahead of
//            it could reach; the CPU that readying the pages took is
//            printed beside it).
// Throughput is the log's bytes over the time from the connection to the
// last byte (raw) or the last batch written (mirror). The child's CPU time
// (user + system, from wait4) per GB is the leader's cost; on 2 cores the
// two processes share the machine.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "mirror_follower.h"
#include "mirror_log.h"
#include "peer_link.h"
#include "record_batch.h"
#include "replication_server.h"
#include "segment_files.h"

using namespace ringbus;
using namespace ringbus::cluster;
namespace fs = std::filesystem;

namespace {

const PeerIdentity kLeader{"bench", "leader", "secret"};
const PeerIdentity kMirror{"bench", "mirror", "secret"};

LogConfig log_config() {
  LogConfig c;
  c.segment_bytes = 256ULL << 20;
  c.durability = Durability::page_cache;
  return c;
}

void quiet(const char*, const std::string&) {}

// Writes `bytes` of `record_bytes` records, `per_batch` to a batch; the end offset.
std::uint64_t write_leader_log(const std::string& dir, std::uint64_t bytes, std::uint32_t record_bytes,
                               std::uint32_t per_batch) {
  MirrorLog log(dir, log_config(), quiet, "leader");
  if (!log.ensure_open(0)) std::abort();
  const std::string value(record_bytes, 'v');
  log::v2::BatchBuilder b;
  std::uint64_t offset = 0, written = 0;
  while (written < bytes) {
    b.reset(offset, 0);
    for (std::uint32_t i = 0; i < per_batch; ++i) b.append(offset + i, 1'700'000'000'000, "key", value);
    const auto batch = b.finish();
    if (!log.append(batch)) std::abort();
    offset += per_batch;
    written += batch.size();
  }
  log.settle();
  if (!log.close_clean()) std::abort();
  return offset;
}

// The leader's side: serves the log until the parent closes `done`.
class BenchLeader : public LedPartition, public LedPartitions {
 public:
  BenchLeader(std::string dir, std::uint64_t end) : dir_(std::move(dir)), end_(end) {}
  const std::string& log_dir() const override { return dir_; }
  std::int32_t leader_epoch() const override { return 0; }
  std::uint64_t written() const override { return end_; }
  std::uint64_t log_start() const override { return 0; }
  std::uint64_t high_watermark() const override { return end_; }
  Result<std::optional<io::LeaderEpoch>> end_of_epoch(std::int32_t epoch) const override {
    if (epoch < 0) return std::optional<io::LeaderEpoch>();
    return std::optional(io::LeaderEpoch{0, end_});
  }
  void acknowledged(const std::string&, std::uint64_t, std::uint64_t) override {}
  Found find(std::string_view, std::uint64_t, std::uint32_t) override {
    return {std::shared_ptr<LedPartition>(this, [](LedPartition*) {}), {}, {}};
  }

 private:
  std::string dir_;
  std::uint64_t end_;
};

struct Child {
  pid_t pid = -1;
  int done_fd = -1;  // the parent closes it: the child ends
};

double child_cpu_seconds(Child& c) {
  if (c.done_fd >= 0) ::close(c.done_fd);
  int status = 0;
  rusage ru{};
  ::wait4(c.pid, &status, 0, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// Forks a child running fn(ready_fd, done_fd); returns once it wrote its
// 2-byte port to ready_fd.
template <class F>
Child fork_child(std::uint16_t* port, F&& fn) {
  int ready[2], done[2];
  if (::pipe(ready) != 0 || ::pipe(done) != 0) std::abort();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(ready[0]);
    ::close(done[1]);
    fn(ready[1], done[0]);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(done[0]);
  if (::read(ready[0], port, sizeof *port) != sizeof *port) std::abort();
  ::close(ready[0]);
  return Child{pid, done[1]};
}

void wait_closed(int fd) {
  char c;
  while (::read(fd, &c, 1) > 0) {
  }
}

struct Result2 {
  double mb_per_s = 0;
  double cpu_s_per_gb = 0;       // the sending child's
  double own_cpu_s_per_gb = 0;   // the receiving parent's
  double prepare_cpu_s_per_gb = 0;  // the parent's, readying a mapped file's pages before the clock
};

double own_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// `into`: where the receiver puts what it gets (`path`: the file) besides
// counting it.
enum class Into : std::uint8_t { nothing, file, mapped_file };

Result2 run_raw(const std::string& leader_dir, std::uint64_t bytes, Into into, const std::string& path = "") {
  auto listener = listen_on("127.0.0.1:0").value();
  const std::uint16_t lport = listener.port;
  std::uint16_t port = 0;
  Child child = fork_child(&port, [&](int ready, int) {
    auto link = dial("127.0.0.1:" + std::to_string(lport), std::chrono::seconds(5));
    if (!link) ::_exit(1);
    const int fd = link.value()->fd();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    (void)!::write(ready, &lport, sizeof lport);
    auto io = log::make_pwrite_io();
    auto segments = log::list_segments(*io, leader_dir);
    if (!segments) ::_exit(1);
    std::vector<std::byte> buf(1 << 20);
    for (std::uint64_t base : segments.value()) {
      const std::string path = log::segment_path(leader_dir, base, log::kLogExt);
      const int in = ::open(path.c_str(), O_RDONLY);
      for (;;) {
        const ssize_t n = ::read(in, buf.data(), buf.size());
        if (n <= 0) break;
        for (ssize_t at = 0; at < n;) {
          const ssize_t w = ::send(fd, buf.data() + at, static_cast<std::size_t>(n - at), MSG_NOSIGNAL);
          if (w <= 0) ::_exit(1);
          at += w;
        }
      }
      ::close(in);
    }
  });
  std::vector<std::byte> buf(1 << 20);
  std::uint64_t got = 0;
  const int out = into == Into::nothing ? -1 : ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  std::byte* map = nullptr;
  const double p0 = own_cpu_seconds();
  if (into == Into::mapped_file) {
    // Its pages made and mapped before the clock starts, as a mirror's
    // segments would have to be.
    void* m = MAP_FAILED;
    if (out < 0 || ::ftruncate(out, static_cast<off_t>(bytes)) != 0 ||
        ::fallocate(out, 0, 0, static_cast<off_t>(bytes)) != 0 ||
        (m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, out, 0)) == MAP_FAILED) {
      std::fprintf(stderr, "raw TCP into a mapped file: cannot make %s: %s\n", path.c_str(), std::strerror(errno));
      std::exit(1);
    }
    map = static_cast<std::byte*>(m);
  }
  const double prepare = own_cpu_seconds() - p0;
  pollfd p{listener.fd, POLLIN, 0};
  ::poll(&p, 1, 5000);
  const int fd = ::accept(listener.fd, nullptr, nullptr);
  const std::int64_t t0 = bench::now_ns();
  const double c0 = own_cpu_seconds();
  for (;;) {
    const ssize_t n = map != nullptr ? ::recv(fd, map + got, std::min<std::uint64_t>(buf.size(), bytes - got), 0)
                                     : ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    if (into == Into::file && ::write(out, buf.data(), static_cast<std::size_t>(n)) != n) std::abort();
    got += static_cast<std::uint64_t>(n);
  }
  const std::int64_t t1 = bench::now_ns();  // the last byte received (and written)
  const double own = own_cpu_seconds() - c0;
  if (map != nullptr) ::munmap(map, bytes);
  if (out >= 0) {
    ::close(out);
    ::unlink(path.c_str());
  }
  ::close(fd);
  ::close(listener.fd);
  const double cpu = child_cpu_seconds(child);
  if (got < bytes) std::fprintf(stderr, "raw TCP: received %llu of %llu bytes\n", (unsigned long long)got,
                                (unsigned long long)bytes);
  return {static_cast<double>(got) / (static_cast<double>(t1 - t0) * 1e-9) * 1e-6,
          cpu / (static_cast<double>(got) * 1e-9), own / (static_cast<double>(got) * 1e-9),
          prepare / (static_cast<double>(got) * 1e-9)};
}

Result2 run_mirror(const std::string& leader_dir, const std::string& mirror_dir, std::uint64_t end,
                   std::uint64_t bytes) {
  std::uint16_t port = 0;
  Child child = fork_child(&port, [&](int ready, int done) {
    BenchLeader leader(leader_dir, end);
    auto server = ReplicationServer::start({kLeader, "127.0.0.1:0", quiet}, leader);
    if (!server) ::_exit(1);
    const std::uint16_t p = server.value()->port();
    (void)!::write(ready, &p, sizeof p);
    wait_closed(done);
  });
  fs::remove_all(mirror_dir);
  MirrorLog mirror(mirror_dir, log_config(), quiet, "mirror");
  const std::int64_t t0 = bench::now_ns();
  const double c0 = own_cpu_seconds();
  auto follower = std::make_unique<MirrorFollower>(
      FollowerOptions{kMirror, "127.0.0.1:" + std::to_string(port), quiet},
      std::vector<FollowTarget>{{"bench", 1, 0, &mirror}});
  while (mirror.written() < end) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const std::int64_t t1 = bench::now_ns();
  const double own = own_cpu_seconds() - c0;
  follower.reset();
  const double cpu = child_cpu_seconds(child);
  (void)mirror.close_clean();
  return {static_cast<double>(bytes) / (static_cast<double>(t1 - t0) * 1e-9) * 1e-6,
          cpu / (static_cast<double>(bytes) * 1e-9), own / (static_cast<double>(bytes) * 1e-9)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringbus-mirror-bench: a mirror copying its leader's log, against raw TCP of the same bytes"};
  std::uint64_t mib = 512;
  std::uint32_t record_bytes = 1024, per_batch = 64;
  int runs = 5;
  std::string dir = "/dev/shm";
  app.add_option("--mib", mib, "size of the leader's log, MiB")->capture_default_str()->check(CLI::Range(1, 65536));
  app.add_option("--record-bytes", record_bytes, "value size of each record")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--per-batch", per_batch, "records per batch")->capture_default_str()->check(CLI::Range(1, 65535));
  app.add_option("--runs", runs, "repetitions (medians)")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--dir", dir, "where the logs go (tmpfs keeps the disk out of it)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  ::signal(SIGPIPE, SIG_IGN);

  const fs::path root = fs::path(dir) / ("ringbus-mirror-bench-" + std::to_string(::getpid()));
  const std::string leader_dir = (root / "leader").string(), mirror_dir = (root / "mirror").string();
  fs::create_directories(root);
  const std::uint64_t end = write_leader_log(leader_dir, mib << 20, record_bytes, per_batch);
  std::uint64_t bytes = 0;
  {
    auto io = log::make_pwrite_io();
    auto segments = log::list_segments(*io, leader_dir);
    if (!segments) {
      std::fprintf(stderr, "%s\n", segments.error().message.c_str());
      return 1;
    }
    for (std::uint64_t base : segments.value()) bytes += fs::file_size(log::segment_path(leader_dir, base, log::kLogExt));
  }
  std::printf("machine: %s, %u cpus; logs on %s\n", bench::cpu_model().c_str(), std::thread::hardware_concurrency(),
              dir.c_str());
  std::printf("leader log: %llu records of %u bytes, %u per batch, %.0f MiB in segment files\n",
              (unsigned long long)end, record_bytes, per_batch, static_cast<double>(bytes) / (1 << 20));
  std::vector<double> mirror_mb, raw_mb, file_mb, mapped_mb, ratios, file_ratios, mirror_cpu, raw_cpu;
  for (int r = 0; r < runs; ++r) {
    const Result2 raw = run_raw(leader_dir, bytes, Into::nothing);
    const Result2 mir = run_mirror(leader_dir, mirror_dir, end, bytes);
    const Result2 file = run_raw(leader_dir, bytes, Into::file, (root / "raw-copy").string());
    const Result2 mapped = run_raw(leader_dir, bytes, Into::mapped_file, (root / "raw-copy").string());
    std::printf(
        "run %d: mirror %.0f MB/s (CPU s/GB: leader %.2f, mirror %.2f), raw TCP %.0f MB/s (sender %.2f, receiver "
        "%.2f), raw TCP into a file %.0f MB/s (receiver %.2f), into a mapped file %.0f MB/s (receiver %.2f, its pages "
        "readied before %.2f)\n",
        r + 1, mir.mb_per_s, mir.cpu_s_per_gb, mir.own_cpu_s_per_gb, raw.mb_per_s, raw.cpu_s_per_gb,
        raw.own_cpu_s_per_gb, file.mb_per_s, file.own_cpu_s_per_gb, mapped.mb_per_s, mapped.own_cpu_s_per_gb,
        mapped.prepare_cpu_s_per_gb);
    mirror_mb.push_back(mir.mb_per_s);
    raw_mb.push_back(raw.mb_per_s);
    file_mb.push_back(file.mb_per_s);
    mapped_mb.push_back(mapped.mb_per_s);
    ratios.push_back(mir.mb_per_s / raw.mb_per_s);
    file_ratios.push_back(mir.mb_per_s / file.mb_per_s);
    mirror_cpu.push_back(mir.cpu_s_per_gb);
    raw_cpu.push_back(raw.cpu_s_per_gb);
  }
  const double ratio = bench::median(mirror_mb) / bench::median(raw_mb);
  std::printf("ratio mirror %uB: ringbus mirror %.0f MB/s / raw TCP %.0f MB/s = %s (%s, median %s; %s (per-run median))\n",
              record_bytes, bench::median(mirror_mb), bench::median(raw_mb), bench::ratio_str(ratio).c_str(),
              bench::per_run(ratios).c_str(), bench::ratio_str(bench::median(ratios)).c_str(),
              bench::goal_str(bench::median(ratios), 0.8).c_str());
  // Not the goal's baseline: what the file write alone costs the raw stream.
  std::printf("ratio mirror %uB against raw TCP into a file: ringbus mirror %.0f MB/s / raw TCP into a file %.0f MB/s = %s "
              "(%s, median %s)\n",
              record_bytes, bench::median(mirror_mb), bench::median(file_mb),
              bench::ratio_str(bench::median(mirror_mb) / bench::median(file_mb)).c_str(),
              bench::per_run(file_ratios).c_str(), bench::ratio_str(bench::median(file_ratios)).c_str());
  // Nor this: what receiving straight into a segment's pages could reach.
  std::printf("ratio raw TCP into a mapped file against raw TCP: %.0f MB/s / %.0f MB/s = %s\n", bench::median(mapped_mb),
              bench::median(raw_mb), bench::ratio_str(bench::median(mapped_mb) / bench::median(raw_mb)).c_str());
  std::printf("leader CPU per GB replicated: mirror %.2f s, raw TCP sender %.2f s\n", bench::median(mirror_cpu),
              bench::median(raw_cpu));
  fs::remove_all(root);
  return 0;
}
