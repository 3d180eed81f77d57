// ringbus-log-bench: the commit log's benchmarks, each against a baseline
// measured in the same run on the same file system (ARCHITECTURE.md, "Conventions";
// bench/README.md says what each case does).
//
//   flush    sustained flush of 1 KiB records until durable (interval
//            policy), io_uring and pwrite backends, against a raw sequential
//            write of the same number of bytes (1 MiB pwrites, fdatasync
//            every 100 ms and at the end): the disk's limit.
//   produce  producer throughput into the ring while the flusher runs,
//            against the same topic without a commit log, at a paced rate
//            the disk keeps up with (bursts of 1 MiB).
//   durable  publish + wait_durable latency with the every_ack policy,
//            against a bare 4 KiB pwrite + fdatasync on the same file system.
//   read     a consumer catching up from offset 0 of a log on disk (the
//            same poll() as on the ring), against a raw sequential read of
//            the segment files; warm (page cache) and, as root, cold.
//   open     open (clean and after a crash) and seek (by offset, by time)
//            in logs of 1,000 and 10,000 segments, against listing the
//            directory; and 10,000 against 1,000.
//   codec    CPU only: encoding ring frames into batches of 1 MiB, Kafka's
//            record batch v2 against the RBB1 batch the log writes today
//            (a copy of the frames) and against a bare copy of the same
//            bytes; and decoding them again (CRC, every record handed to a
//            callback), against the same copy. 64 B and 1 KiB records.
//
// Nothing here passes or fails: "goal ...: met/MISSED" is information. Runs
// that fail a check (a record missing, out of order, not durable) are
// reported INVALID and left out of the medians.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>

#include "batch_codec.h"
#include "record_batch.h"
#include "bench_options.h"
#include "bench_util.h"
#include "file_io.h"
#include "log_reader.h"
#include "partition_log.h"
#include "ringbus/broker.h"
#include "ringbus/consumer.h"
#include "ringbus/producer.h"
#include "segment_files.h"

namespace {

namespace fs = std::filesystem;
using namespace ringbus;
using namespace ringbus::bench;

constexpr std::uint64_t kMiB = 1ULL << 20;
constexpr std::size_t kRecord = 1024;              // value bytes of the durable and read cases (flush: --flush-sizes)
constexpr std::uint64_t kRingBytes = 64 * kMiB;    // the topics' rings (the default)
constexpr std::size_t kChunk = kMiB;               // the flusher's batch target and the reader's read size
constexpr std::int64_t kSyncIntervalNs = 100'000'000;  // the interval policy's default

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_signal(int) { g_interrupted = 1; }
bool g_verbose = false;

struct Options {
  std::string dir = "/var/tmp/ringbus-log-bench";
  int reps = 3;
  std::uint64_t flush_mib = 1024;
  double produce_seconds = 1.0;
  double rate_mb = 100;
  int samples = 1000;
  std::uint64_t read_mib = 1024;
  bool cold = true;
  std::vector<std::uint32_t> segment_counts = {1000, 10000};
  std::vector<std::size_t> flush_sizes = {64, 1024};
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ringbus-log-bench: %s\n", what.c_str());
  std::exit(1);
}

template <class T>
T must(Result<T> r, const std::string& what) {
  if (!r) die(what + ": " + r.error().message);
  if constexpr (!std::is_void_v<T>) return std::move(r).value();
}

double seconds(std::int64_t ns) { return static_cast<double>(ns) / 1e9; }

std::string instance_name() { return "logbench-" + std::to_string(::getpid()); }

Broker start_broker(const std::string& data_dir, IoBackend backend = IoBackend::io_uring) {
  BrokerOptions o;
  o.instance = instance_name();
  o.data_dir = data_dir;
  o.io_backend = backend;
  o.logger = [](const char* level, const std::string& m) {
    if (g_verbose || std::strcmp(level, "info") != 0) std::fprintf(stderr, "  [broker %s] %s\n", level, m.c_str());
  };
  return must(Broker::start(o), "starting a broker on " + (data_dir.empty() ? "no data directory" : data_dir));
}

TopicConfig topic_config(const std::string& name, Durability d) {
  TopicConfig c;
  c.name = name;
  c.ring_bytes = kRingBytes;
  c.max_record_size = 4096;
  c.log.durability = d;
  return c;
}

// The segment files of a partition, oldest first (named and listed as the log does).
std::vector<std::string> segment_files(const std::string& partition_dir) {
  auto fio = log::make_pwrite_io();
  std::vector<std::string> v;
  for (const std::uint64_t base : must(log::list_segments(*fio, partition_dir), "listing " + partition_dir)) {
    v.push_back(log::segment_path(partition_dir, base, log::kLogExt));
  }
  return v;
}

// The bytes of a partition's segment files (what the flusher wrote).
std::uint64_t log_bytes(const std::string& partition_dir) {
  std::uint64_t n = 0;
  for (const std::string& path : segment_files(partition_dir)) n += fs::file_size(path);
  return n;
}


// Publishes n values of `size` bytes flat out, each starting with its
// sequence number (its offset in a fresh topic), with the library's blocking
// publish(): a producer held back by the disk waits as users' producers do
// (spin, yield, then sleep). Returns the last result; `error` says why it
// stopped early.
PublishResult publish_sequence(Producer& p, std::uint64_t n, std::string& error, std::size_t size = kRecord) {
  std::string value(size, 'v');
  PublishResult last;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::memcpy(value.data(), &i, sizeof i);
    const PublishResult r = p.publish({}, value);
    if (!r.ok()) {
      error = std::string("publish: ") + to_string(r.status);
      break;
    }
    last = r;
  }
  return last;
}

// Pins the calling thread to a CPU for its lifetime, then restores the mask
// (threads a broker starts later must not inherit the pin).
class ScopedPin {
 public:
  explicit ScopedPin(int cpu) {
    sched_getaffinity(0, sizeof old_, &old_);
    pin_to_cpu(cpu);
  }
  ~ScopedPin() { sched_setaffinity(0, sizeof old_, &old_); }
  ScopedPin(const ScopedPin&) = delete;
  ScopedPin& operator=(const ScopedPin&) = delete;

 private:
  cpu_set_t old_{};
};

// Lets the previous case's writes and discards finish (sync(), then a
// second of quiet) before the next case is timed.
void settle() {
  ::sync();
  ::sleep(1);
}

bool can_drop_caches() { return ::access("/proc/sys/vm/drop_caches", W_OK) == 0; }

void drop_caches() {
  ::sync();
  FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w");
  if (f == nullptr) die("cannot write /proc/sys/vm/drop_caches");
  std::fputs("3\n", f);
  std::fclose(f);
}

struct Run {
  bool ok = true;
  std::string error;
  double value = 0;  // bytes/s, records/s or seconds, as the case says
  double records_per_s = 0;
  std::uint64_t bytes = 0;
};

void invalid(Run& r, const std::string& why) {
  if (r.ok) r.error = why;
  r.ok = false;
}

std::vector<double> values(const std::vector<Run>& runs) {
  std::vector<double> v;
  for (const Run& r : runs) {
    if (r.ok) v.push_back(r.value);
  }
  return v;
}

std::vector<double> paired(const std::vector<Run>& a, const std::vector<Run>& b) {
  std::vector<double> v;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i].ok && b[i].ok && b[i].value > 0) v.push_back(a[i].value / b[i].value);
  }
  return v;
}

std::vector<std::string> g_goals;

// "ratio flush 1KiB: ringbus io_uring 280 MB/s / raw sequential write 290 MB/s = 0.97x
//  (per-run 0.90x..1.01x, median 0.97x; goal >= 0.90x: met (per-run median))"
void print_ratio(const std::string& what, const std::string& a_name, const std::vector<Run>& a,
                 const std::string& b_name, const std::vector<Run>& b, const char* unit, double scale, double goal) {
  const std::vector<double> av = values(a);
  const std::vector<double> bv = values(b);
  if (av.empty() || bv.empty()) {
    std::printf("ratio %s: %s / %s: no valid runs\n", what.c_str(), a_name.c_str(), b_name.c_str());
    return;
  }
  const double x = median(av);
  const double y = median(bv);
  const char* f = x * scale >= 100 ? "%.0f" : "%.2f";
  const std::string line = "ratio " + what + ": " + a_name + " " + fmt(f, x * scale) + " " + unit + " / " + b_name +
                           " " + fmt(f, y * scale) + " " + unit + " = " + ratio_str(x / y);
  // Goals are judged on the median of the per-run ratios: the cases of one
  // repetition run back to back, so each pair sees the machine in the same
  // state. On a disk whose speed flips between two modes every minute or so
  // (bench/RESULTS.md, "The flush goal") the two medians can come from
  // different modes, and their ratio then measures the disk.
  const std::vector<double> pr = paired(a, b);
  std::string extra = per_run(pr);
  if (!pr.empty()) extra += ", median " + ratio_str(median(pr));
  if (goal > 0 && !pr.empty()) {
    const std::string g = goal_str(median(pr), goal) + " (per-run median)";
    extra += "; " + g;
    g_goals.push_back(line + " (per-run median " + ratio_str(median(pr)) + "; " + g + ")");
  }
  std::printf("%s (%s)\n", line.c_str(), extra.c_str());
}

void report_run(const char* name, const Run& r, const char* unit, double scale) {
  if (!r.ok) {
    std::printf("  %-34s INVALID: %s\n", name, r.error.c_str());
  } else if (g_verbose) {
    std::printf("  %-34s %.2f %s\n", name, r.value * scale, unit);
  }
}

// ---------------------------------------------------------------------------
// flush: records (64 B, 1 KiB) published flat out until all of them are durable.

// The flush cases keep their files until the whole flush benchmark ends
// (flush_dir): see bench_flush.
std::string flush_dir(const Options& o) { return o.dir + "/flush"; }

std::string fresh_name(const Options& o, const char* what) {
  static int n = 0;
  return flush_dir(o) + "/" + what + "-" + std::to_string(++n);
}

Run flush_ringbus(const Options& o, IoBackend backend, std::size_t size) {
  const std::string data = fresh_name(o, "ringbus");
  Run run;
  {
    Broker broker = start_broker(data, backend);
    must(broker.create_topic(topic_config("flush", Durability::interval)), "creating topic flush");
    Producer p = must(Producer::open(broker.instance(), "flush", producer_options()), "opening a producer");
    const std::uint64_t n = o.flush_mib * kMiB / size;
    std::string error;
    const std::int64_t t0 = now_ns();
    const PublishResult last = publish_sequence(p, n, error, size);
    if (!error.empty()) invalid(run, error);
    const PublishStatus d = p.wait_durable(last, std::chrono::minutes(2));
    const std::int64_t t1 = now_ns();
    if (d != PublishStatus::ok) invalid(run, std::string("wait_durable: ") + to_string(d));
    const TopicInfo info = must(broker.describe_topic("flush"), "describing topic flush");
    const PartitionInfo& pi = info.partition_info.at(0);
    if (pi.written_offset != n || pi.durable_offset != n) {
      invalid(run, "written " + std::to_string(pi.written_offset) + ", durable " + std::to_string(pi.durable_offset) +
                       ", expected " + std::to_string(n));
    }
    run.bytes = log_bytes(data + "/flush/0");
    run.value = static_cast<double>(run.bytes) / seconds(t1 - t0);
    run.records_per_s = static_cast<double>(n) / seconds(t1 - t0);
  }
  return run;
}

// The same bytes with the same open flags, in the flusher's batch size, with
// the interval policy's syncs. The best a plain program does with them: one
// thread writes while another calls fdatasync every 100 ms, so that the disk
// is busy while the page cache fills (a single thread that stops writing
// for each sync reaches about 40% of this on this machine).
Run raw_write(const Options& o, std::uint64_t bytes) {
  const std::string path = fresh_name(o, "raw-write");
  Run run;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) die("open " + path + ": " + std::strerror(errno));
  (void)::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes));  // as segments are preallocated
  std::vector<char> chunk(kChunk, 'v');
  std::atomic<bool> written{false};
  const std::int64_t t0 = now_ns();
  std::thread syncer([&] {
    while (!written.load(std::memory_order_acquire)) {
      for (int ms = 0; ms < kSyncIntervalNs / 1'000'000 && !written.load(std::memory_order_acquire); ++ms) ::usleep(1000);
      if (::fdatasync(fd) != 0) die("fdatasync " + path + ": " + std::strerror(errno));
    }
  });
  for (std::uint64_t pos = 0; pos < bytes;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, bytes - pos));
    const ssize_t w = ::pwrite(fd, chunk.data(), n, static_cast<off_t>(pos));
    if (w <= 0) die("pwrite " + path + ": " + std::strerror(errno));
    pos += static_cast<std::uint64_t>(w);
  }
  written.store(true, std::memory_order_release);
  syncer.join();
  if (::fdatasync(fd) != 0) die("fdatasync " + path + ": " + std::strerror(errno));
  const std::int64_t t1 = now_ns();
  ::close(fd);
  run.bytes = bytes;
  run.value = static_cast<double>(bytes) / seconds(t1 - t0);
  return run;
}

// The device's own limit: O_DIRECT writes of 1 MiB (no page cache), one
// fdatasync at the end for the file's size. Information, not the goal's
// baseline (other flags).
Run raw_direct_write(const Options& o, std::uint64_t bytes) {
  const std::string path = fresh_name(o, "raw-direct");
  Run run;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0640);
  if (fd < 0) {
    run.ok = false;
    run.error = "O_DIRECT is not supported here: " + std::string(std::strerror(errno));
    return run;
  }
  (void)::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes));
  void* p = nullptr;
  if (::posix_memalign(&p, 4096, kChunk) != 0) die("posix_memalign");
  std::unique_ptr<void, decltype(&std::free)> chunk(p, &std::free);
  std::memset(p, 'v', kChunk);
  const std::uint64_t total = (bytes + kChunk - 1) / kChunk * kChunk;  // whole aligned chunks
  const std::int64_t t0 = now_ns();
  for (std::uint64_t pos = 0; pos < total; pos += kChunk) {
    if (::pwrite(fd, p, kChunk, static_cast<off_t>(pos)) != static_cast<ssize_t>(kChunk)) {
      die("O_DIRECT pwrite " + path + ": " + std::strerror(errno));
    }
  }
  if (::fdatasync(fd) != 0) die("fdatasync " + path + ": " + std::strerror(errno));
  const std::int64_t t1 = now_ns();
  ::close(fd);
  run.bytes = total;
  run.value = static_cast<double>(total) / seconds(t1 - t0);
  return run;
}

void bench_flush(const Options& o, std::size_t size) {
  const std::string label = size >= 1024 ? std::to_string(size / 1024) + "KiB" : std::to_string(size) + "B";
  std::printf("\n== flush: %llu MiB of %s records until durable (interval 100 ms) ==\n",
              static_cast<unsigned long long>(o.flush_mib), label.c_str());
  std::vector<Run> uring, pwrite, raw, direct;
  // Four cases per repetition, each ~flush_mib (plus headers), all kept
  // until the end of the case.
  const std::uint64_t need = static_cast<std::uint64_t>(o.reps) * 4 * o.flush_mib * kMiB / 100 * 130;
  if (const std::uint64_t avail = fs::space(o.dir).available; avail < need) {
    die("the flush case needs ~" + fmt("%.1f", static_cast<double>(need) / (1 << 30)) + " GiB free in " + o.dir +
        ", there are " + fmt("%.1f", static_cast<double>(avail) / (1 << 30)) + " GiB (see --reps, --flush-mib, --dir)");
  }
  fs::create_directories(flush_dir(o));
  const std::uint64_t estimate = o.flush_mib * kMiB * (size + 12) / size;  // values + record headers, until measured
  for (int rep = 0; rep < o.reps && g_interrupted == 0; ++rep) {
    // The order rotates: the disk's speed drifts, so no case always goes
    // first or after the same one. Files are deleted only at the end: on a
    // file system mounted with `discard` (this VM's), a deletion discards
    // the blocks, and a VM disk is then 2-3x slower writing to them again;
    // whichever case came next would pay for it.
    for (int k = 0; k < 4; ++k) {
      settle();
      switch ((k + rep) % 4) {
        case 0:
          uring.push_back(flush_ringbus(o, IoBackend::io_uring, size));
          report_run("ringbus io_uring", uring.back(), "MB/s", 1e-6);
          break;
        case 1:
          raw.push_back(raw_write(o, uring.empty() || uring.back().bytes == 0 ? estimate : uring.back().bytes));
          report_run("raw sequential write", raw.back(), "MB/s", 1e-6);
          break;
        case 2:
          direct.push_back(raw_direct_write(o, uring.empty() || uring.back().bytes == 0 ? estimate : uring.back().bytes));
          report_run("raw O_DIRECT write", direct.back(), "MB/s", 1e-6);
          break;
        case 3:
          pwrite.push_back(flush_ringbus(o, IoBackend::pwrite, size));
          report_run("ringbus pwrite", pwrite.back(), "MB/s", 1e-6);
          break;
      }
    }
  }
  if (!uring.empty() && uring.front().ok) {
    const Run& r = uring.front();
    std::printf("records: %.2f Mrec/s of %s (%.0f MB/s of values); the log holds %.1f%% more bytes than the values"
                " (record and batch headers)\n",
                r.records_per_s * 1e-6, label.c_str(), r.records_per_s * static_cast<double>(size) * 1e-6,
                100.0 * (static_cast<double>(r.bytes) / static_cast<double>(o.flush_mib * kMiB) - 1));
  }
  fs::remove_all(flush_dir(o));
  // The log's bytes per second against the raw write of as many bytes.
  print_ratio("flush " + label, "ringbus io_uring", uring, "raw sequential write", raw, "MB/s", 1e-6, size >= 1024 ? 0.9 : 0);
  print_ratio("flush " + label, "ringbus io_uring", uring, "ringbus pwrite", pwrite, "MB/s", 1e-6, 0);
  print_ratio("flush " + label, "ringbus io_uring", uring, "raw O_DIRECT write (the device)", direct, "MB/s", 1e-6, 0);
}

// ---------------------------------------------------------------------------
// produce: paced bursts; the rate while publishing, with and without the log.

Run produce_paced(const Options& o, std::size_t value_size, bool with_log) {
  const std::string data = with_log ? o.dir + "/produce" : "";
  if (with_log) fs::remove_all(data);
  Run run;
  {
    // The broker's threads (the flusher) start pinned to CPU 1, the producer
    // runs on CPU 0: each on its own core, as on a host with cores to spare.
    std::optional<Broker> broker;
    {
      ScopedPin flusher_cpu(1);
      broker.emplace(start_broker(data));
    }
    must(broker->create_topic(topic_config("produce", Durability::page_cache)), "creating topic produce");
    Producer p = must(Producer::open(broker->instance(), "produce", producer_options()), "opening a producer");
    ScopedPin pin(0);
    const std::size_t burst = kMiB / value_size;
    const auto period_ns = static_cast<std::int64_t>(static_cast<double>(kMiB) / (o.rate_mb * 1e6) * 1e9);
    std::string value(value_size, 'p');
    std::uint64_t seq = 0;
    std::uint64_t stalls = 0;
    std::int64_t busy = 0;
    PublishResult last;
    const std::int64_t end = now_ns() + static_cast<std::int64_t>(o.produce_seconds * 1e9);
    std::int64_t next = now_ns();
    for (int b = 0; now_ns() < end && run.ok; ++b) {
      while (now_ns() < next) {
        const std::int64_t wait = next - now_ns();
        if (wait > 100'000) ::usleep(static_cast<useconds_t>((wait - 50'000) / 1000));
      }
      next += period_ns;
      const std::int64_t t0 = now_ns();
      for (std::size_t k = 0; k < burst && run.ok;) {
        std::memcpy(value.data(), &seq, sizeof seq);
        const PublishResult r = p.try_publish({}, value);
        if (r.ok()) {
          last = r;
          ++seq;
          ++k;
        } else if (r.status == PublishStatus::back_pressured) {
          ++stalls;
          cpu_relax();
        } else {
          invalid(run, std::string("publish: ") + to_string(r.status));
        }
      }
      if (b > 0) busy += now_ns() - t0;  // the first burst warms up
    }
    if (with_log) {
      const PublishStatus d = p.wait_durable(last, std::chrono::seconds(30));
      if (d != PublishStatus::ok) invalid(run, std::string("wait_durable: ") + to_string(d));
    }
    run.value = static_cast<double>(seq - burst) / seconds(busy);
    run.bytes = stalls;
    if (stalls > 0 && g_verbose) std::printf("  (%llu back-pressured attempts)\n", static_cast<unsigned long long>(stalls));
  }
  if (with_log) fs::remove_all(data);
  return run;
}

void bench_produce(const Options& o) {
  std::printf("\n== produce: bursts of 1 MiB at %.0f MB/s for %.1f s, producer on CPU 0, flusher on CPU 1; rate while publishing ==\n",
              o.rate_mb, o.produce_seconds);
  for (const std::size_t size : {std::size_t{64}, std::size_t{1024}}) {
    std::vector<Run> with, without;
    for (int rep = 0; rep < o.reps && g_interrupted == 0; ++rep) {
      for (int k = 0; k < 2; ++k) {  // the order alternates
        if ((k + rep) % 2 == 0) {
          with.push_back(produce_paced(o, size, true));
          report_run("with the flusher", with.back(), "Mrec/s", 1e-6);
        } else {
          without.push_back(produce_paced(o, size, false));
          report_run("without a commit log", without.back(), "Mrec/s", 1e-6);
        }
      }
    }
    std::uint64_t stalls = 0;
    for (const Run& r : with) stalls += r.bytes;
    print_ratio("producer " + std::to_string(size) + "B paced", "with flusher", with, "without", without, "Mrec/s",
                1e-6, 0.9);
    std::printf("  back-pressured attempts with the flusher, all runs: %llu (0: the flusher kept up)\n",
                static_cast<unsigned long long>(stalls));
  }
}

// ---------------------------------------------------------------------------
// durable: publish + wait_durable with every_ack, against write + fdatasync.

std::vector<double> durable_ringbus(const Options& o, Run& run) {
  const std::string data = o.dir + "/durable";
  fs::remove_all(data);
  std::vector<double> lat;
  {
    Broker broker = start_broker(data);
    must(broker.create_topic(topic_config("durable", Durability::every_ack)), "creating topic durable");
    Producer p = must(Producer::open(broker.instance(), "durable", producer_options()), "opening a producer");
    std::string value(kRecord, 'd');
    for (int i = -50; i < o.samples && run.ok; ++i) {  // 50 of warm-up
      const std::int64_t t0 = now_ns();
      const PublishResult r = p.publish({}, value);
      const PublishStatus d = r.ok() ? p.wait_durable(r, std::chrono::seconds(5)) : r.status;
      const std::int64_t t1 = now_ns();
      if (d != PublishStatus::ok) invalid(run, std::string("publish/wait_durable: ") + to_string(d));
      if (i >= 0) lat.push_back(static_cast<double>(t1 - t0));
    }
  }
  fs::remove_all(data);
  return lat;
}

std::vector<double> bare_fdatasync(const Options& o) {
  const std::string path = o.dir + "/raw-sync";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) die("open " + path + ": " + std::strerror(errno));
  (void)::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>((o.samples + 50) * 4096));
  std::vector<char> block(4096, 'b');
  std::vector<double> lat;
  for (int i = -50; i < o.samples; ++i) {
    const std::int64_t t0 = now_ns();
    if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>((i + 50) * 4096)) != 4096 || ::fdatasync(fd) != 0) {
      die("write + fdatasync " + path + ": " + std::strerror(errno));
    }
    const std::int64_t t1 = now_ns();
    if (i >= 0) lat.push_back(static_cast<double>(t1 - t0));
  }
  ::close(fd);
  ::unlink(path.c_str());
  return lat;
}

void bench_durable(const Options& o) {
  std::printf("\n== durable: publish of 1 KiB + wait_durable (every_ack), %d samples per repetition ==\n", o.samples);
  std::vector<double> p50, p99, b50, b99;
  for (int rep = 0; rep < o.reps && g_interrupted == 0; ++rep) {
    Run run;
    const std::vector<double> a = durable_ringbus(o, run);
    const std::vector<double> b = bare_fdatasync(o);
    if (!run.ok) {
      report_run("durable publish", run, "", 0);
      continue;
    }
    p50.push_back(quantile(a, 0.5));
    p99.push_back(quantile(a, 0.99));
    b50.push_back(quantile(b, 0.5));
    b99.push_back(quantile(b, 0.99));
    if (g_verbose) {
      std::printf("  run %d: p50 %.0f us p99 %.0f us max %.0f us; bare p50 %.0f us p99 %.0f us\n", rep + 1,
                  p50.back() / 1e3, p99.back() / 1e3, quantile(a, 1) / 1e3, b50.back() / 1e3, b99.back() / 1e3);
    }
  }
  if (p50.empty()) return;
  auto line = [&](const char* q, const std::vector<double>& x, const std::vector<double>& y) {
    std::vector<double> r;
    for (std::size_t i = 0; i < x.size(); ++i) r.push_back(x[i] / y[i]);
    std::printf("latency durable %s %.0f us (bare 4 KiB write + fdatasync %s %.0f us, %s, %s)\n", q, median(x) / 1e3, q,
                median(y) / 1e3, ratio_str(median(x) / median(y)).c_str(), per_run(r).c_str());
  };
  line("p50", p50, b50);
  line("p99", p99, b99);
}

// ---------------------------------------------------------------------------
// read: catch-up from offset 0 of a log on disk.

struct ReadLog {
  std::string data;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
};

ReadLog write_read_log(const Options& o) {
  ReadLog log{o.dir + "/read", o.read_mib * kMiB / kRecord, 0};
  fs::remove_all(log.data);
  Broker broker = start_broker(log.data);
  must(broker.create_topic(topic_config("read", Durability::page_cache)), "creating topic read");
  Producer p = must(Producer::open(broker.instance(), "read", producer_options()), "opening a producer");
  std::string error;
  const PublishResult last = publish_sequence(p, log.records, error);
  if (!error.empty()) die(error);
  if (p.wait_durable(last, std::chrono::minutes(2)) != PublishStatus::ok) die("the read log did not reach the disk");
  broker.close();  // clean: the next broker opens it without a scan
  log.bytes = log_bytes(log.data + "/read/0");
  return log;
}

Run read_ringbus(const ReadLog& log, bool cold) {
  Run run;
  Broker broker = start_broker(log.data);  // recovers the topic; its ring starts at the log's end
  ConsumerOptions co;
  co.start = StartPosition::earliest();
  co.idle = IdleStrategy::busy_spin;
  Consumer c = must(Consumer::open(broker.instance(), "read", co), "opening a consumer");
  if (cold) drop_caches();
  std::vector<char> sink(kRecord);
  std::uint64_t expected = 0;
  const std::int64_t t0 = now_ns();
  while (expected < log.records && run.ok) {
    const PollResult r = c.poll([&](const Record& rec) {
      std::uint64_t seq = 0;
      if (rec.value.size() == kRecord) std::memcpy(&seq, rec.value.data(), sizeof seq);
      if (rec.offset != expected || seq != expected) {
        invalid(run, "record at offset " + std::to_string(rec.offset) + " (sequence " + std::to_string(seq) +
                         "), expected " + std::to_string(expected));
      }
      std::memcpy(sink.data(), rec.value.data(), std::min(rec.value.size(), sink.size()));
      escape(sink.data());
      ++expected;
    });
    if (r.status != PollStatus::ok) invalid(run, std::string("poll: ") + to_string(r.status));
  }
  const std::int64_t t1 = now_ns();
  run.bytes = log.bytes;
  run.value = static_cast<double>(log.bytes) / seconds(t1 - t0);
  run.records_per_s = static_cast<double>(log.records) / seconds(t1 - t0);
  return run;
}

Run raw_read(const ReadLog& log, bool cold) {
  if (cold) drop_caches();
  Run run;
  std::vector<char> buf(kChunk);
  std::uint64_t total = 0;
  const std::int64_t t0 = now_ns();
  for (const std::string& path : segment_files(log.data + "/read/0")) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open " + path + ": " + std::strerror(errno));
    for (std::uint64_t pos = 0;;) {
      const ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(pos));
      if (n < 0) die("pread " + path + ": " + std::strerror(errno));
      if (n == 0) break;
      escape(buf.data());
      pos += static_cast<std::uint64_t>(n);
      total += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
  }
  const std::int64_t t1 = now_ns();
  run.bytes = total;
  run.value = static_cast<double>(total) / seconds(t1 - t0);
  return run;
}

void bench_read(const Options& o) {
  const bool cold = o.cold && can_drop_caches();
  std::printf("\n== read: a consumer from offset 0 of %llu MiB of 1 KiB records on disk, against a raw read (1 MiB preads) ==\n",
              static_cast<unsigned long long>(o.read_mib));
  if (o.cold && !cold) std::printf("(cold-cache runs need root to write /proc/sys/vm/drop_caches: skipped)\n");
  const ReadLog log = write_read_log(o);
  for (const bool c : {false, true}) {
    if (c && !cold) continue;
    std::vector<Run> subject, raw;
    for (int rep = 0; rep < o.reps && g_interrupted == 0; ++rep) {
      subject.push_back(read_ringbus(log, c));
      report_run("ringbus consumer", subject.back(), "MB/s", 1e-6);
      raw.push_back(raw_read(log, c));
      report_run("raw sequential read", raw.back(), "MB/s", 1e-6);
    }
    std::vector<double> recs;
    for (const Run& r : subject) {
      if (r.ok) recs.push_back(r.records_per_s);
    }
    std::printf("catch-up %s: %.2f Mrec/s (%.0f MB/s of values)\n", c ? "cold" : "warm", median(recs) * 1e-6,
                median(recs) * kRecord * 1e-6);
    print_ratio(std::string("catch-up read ") + (c ? "cold" : "warm"), "ringbus consumer", subject,
                "raw sequential read", raw, "MB/s", 1e-6, 0);
  }
  fs::remove_all(log.data);
}

// ---------------------------------------------------------------------------
// open: logs of many small segments.

struct SegmentLog {
  std::string dir;
  std::uint64_t end = 0;
  std::int64_t first_ts = 0;
  std::uint64_t bytes = 0;
};

// Small segments, rolled by hand; nothing preallocated or retired.
io::LogSettings segment_log_settings() {
  io::LogSettings settings;
  settings.segment_bytes = kMiB;
  settings.preallocate = false;
  settings.retention_age_ns = 0;
  return settings;
}

// `count` segments of 8 batches of 4 records of 200 bytes (~7 KiB each, a
// few index entries each), written through PartitionLog as the flusher
// writes them, then closed cleanly.
SegmentLog make_segment_log(const Options& o, std::uint32_t count) {
  SegmentLog s{o.dir + "/open-" + std::to_string(count) + "/0", 0, 1'700'000'000'000'000'000LL, 0};
  fs::remove_all(s.dir);
  auto fio = log::make_pwrite_io();
  auto log = must(io::PartitionLog::open(*fio, s.dir, segment_log_settings(), 0, nullptr), "creating a log in " + s.dir);
  log::v2::BatchBuilder b;
  const std::string value(200, 's');
  for (std::uint32_t seg = 0; seg < count; ++seg) {
    if (seg > 0) must(log->roll(s.first_ts), "rolling a segment");
    for (int batch = 0; batch < 8; ++batch) {
      b.reset(s.end);
      // Record o: first_ts + o milliseconds (Kafka's unit).
      for (int r = 0; r < 4; ++r, ++s.end) b.append(s.end, s.first_ts / 1'000'000 + static_cast<std::int64_t>(s.end), "", value);
      const std::span<const std::byte> bytes = b.finish();
      const io::PartitionLog::Placement at = log->append(bytes);
      must(fio->write_now(at.file, at.position, bytes), "writing a batch");
    }
  }
  must(log->close_clean(), "closing the log");
  s.bytes = log_bytes(s.dir);
  return s;
}

double time_open(const SegmentLog& s, bool crash, io::RecoveryReport& report) {
  auto fio = log::make_pwrite_io();
  if (crash) fs::remove(s.dir + "/" + io::kCleanMarkerName);
  const std::int64_t t0 = now_ns();
  auto log = must(io::PartitionLog::open(*fio, s.dir, segment_log_settings(), 0, &report), "opening " + s.dir);
  const std::int64_t t1 = now_ns();
  if (log->end_offset() != s.end) die("the log reopened at " + std::to_string(log->end_offset()) + ", not " + std::to_string(s.end));
  must(log->close_clean(), "closing " + s.dir);
  return static_cast<double>(t1 - t0);
}

struct OpenFigures {
  double list = 0, open_clean = 0, open_crash = 0, seek_first = 0, seek = 0, seek_p99 = 0, seek_time = 0;
  std::uint64_t scanned = 0;
};

OpenFigures bench_segments(const Options& o, const SegmentLog& s) {
  std::vector<double> list, clean, crash, first, seeks, times;
  std::uint64_t scanned = 0;
  std::mt19937_64 rng(42);
  auto fio = log::make_pwrite_io();
  for (int rep = 0; rep < std::max(o.reps, 5); ++rep) {
    const std::int64_t t0 = now_ns();
    auto names = must(fio->list(s.dir), "listing " + s.dir);
    list.push_back(static_cast<double>(now_ns() - t0));
    io::RecoveryReport report;
    clean.push_back(time_open(s, false, report));
    if (!report.clean || report.scanned_bytes != 0) die("a clean open scanned data");
    crash.push_back(time_open(s, true, report));
    if (report.clean) die("an open without the clean marker took the clean path");
    scanned = report.scanned_bytes;
  }
  for (int i = 0; i < 50; ++i) {
    log::LogReader r(*fio, s.dir);
    const std::uint64_t offset = rng() % s.end;
    const std::int64_t t0 = now_ns();
    if (r.seek(offset) != log::ReadStatus::batch) die("seek: " + r.error());
    first.push_back(static_cast<double>(now_ns() - t0));
  }
  log::LogReader r(*fio, s.dir);
  log::DecodedBatch batch;
  for (int i = 0; i < 2000; ++i) {
    const std::uint64_t offset = rng() % s.end;
    const std::int64_t t0 = now_ns();
    if (r.seek(offset) != log::ReadStatus::batch) die("seek: " + r.error());
    seeks.push_back(static_cast<double>(now_ns() - t0));
    // Check the seek: the next batch holds the offset.
    if (r.next(UINT64_MAX, batch) != log::ReadStatus::batch || batch.header.base_offset > offset ||
        batch.header.base_offset + batch.header.offset_span <= offset) {
      die("seek to " + std::to_string(offset) + " did not land on its batch: " + r.error());
    }
  }
  for (int i = 0; i < 500; ++i) {
    const std::uint64_t target = rng() % s.end;
    std::uint64_t found = 0;
    const std::int64_t t0 = now_ns();
    if (r.seek_time((s.first_ts / 1'000'000 + static_cast<std::int64_t>(target)) * 1'000'000, UINT64_MAX, &found) !=
        log::ReadStatus::batch) {
      die("seek_time: " + r.error());
    }
    times.push_back(static_cast<double>(now_ns() - t0));
    if (found != target) die("seek_time found " + std::to_string(found) + ", not " + std::to_string(target));
  }
  OpenFigures f;
  f.list = median(list);
  f.open_clean = median(clean);
  f.open_crash = median(crash);
  f.seek_first = median(first);
  f.seek = median(seeks);
  f.seek_p99 = quantile(seeks, 0.99);
  f.seek_time = median(times);
  f.scanned = scanned;
  return f;
}

void bench_open(const Options& o) {
  std::printf("\n== open and seek: logs of many small segments (8 batches of 4 records of 200 B each) ==\n");
  std::vector<std::pair<std::uint32_t, OpenFigures>> figs;
  for (const std::uint32_t count : o.segment_counts) {
    if (g_interrupted != 0) break;
    const std::int64_t t0 = now_ns();
    const SegmentLog s = make_segment_log(o, count);
    std::printf("%u segments, %.1f MB, %llu records (written in %.1f s)\n", count, static_cast<double>(s.bytes) / 1e6,
                static_cast<unsigned long long>(s.end), seconds(now_ns() - t0));
    const OpenFigures f = bench_segments(o, s);
    std::printf("  list the directory   %9.0f us   (the baseline: any open must learn the names)\n", f.list / 1e3);
    std::printf("  open, clean          %9.0f us   (%s the listing; reads no data)\n", f.open_clean / 1e3,
                ratio_str(f.open_clean / f.list).c_str());
    std::printf("  open after a crash   %9.0f us   (%s the listing; checked %llu bytes of the last segment's tail)\n",
                f.open_crash / 1e3, ratio_str(f.open_crash / f.list).c_str(), static_cast<unsigned long long>(f.scanned));
    std::printf("  seek, new reader     %9.1f us   (lists the directory once)\n", f.seek_first / 1e3);
    std::printf("  seek by offset       %9.1f us   (p99 %.1f us)\n", f.seek / 1e3, f.seek_p99 / 1e3);
    std::printf("  seek by time         %9.1f us\n", f.seek_time / 1e3);
    figs.emplace_back(count, f);
    fs::remove_all(fs::path(s.dir).parent_path());
  }
  if (figs.size() >= 2) {
    const auto& [n0, a] = figs.front();
    const auto& [n1, b] = figs.back();
    std::printf("ratio %u/%u segments (%.0fx the segments): list %s, open clean %s, open after a crash %s, "
                "seek by offset %s, seek by time %s\n",
                n1, n0, static_cast<double>(n1) / n0, ratio_str(b.list / a.list).c_str(),
                ratio_str(b.open_clean / a.open_clean).c_str(), ratio_str(b.open_crash / a.open_crash).c_str(),
                ratio_str(b.seek / a.seek).c_str(), ratio_str(b.seek_time / a.seek_time).c_str());
  }
}

// ---------------------------------------------------------------------------
// codec: batches built from ring frames and read back, in memory.

// Runs fn over the same input until ~0.3 s have passed; bytes/s of `bytes` per call.
template <class F>
double throughput(std::uint64_t bytes, F&& fn) {
  std::uint64_t calls = 0;
  const std::int64_t t0 = now_ns();
  std::int64_t t = t0;
  while (t - t0 < 300'000'000) {
    fn();
    ++calls;
    t = now_ns();
  }
  return static_cast<double>(bytes * calls) / seconds(t - t0);
}

void bench_codec(const Options& o) {
  for (const std::size_t value_size : {std::size_t{64}, std::size_t{1024}}) {
    // 1 MiB of ring frames (what the flusher copies), from the RBB1 builder.
    const std::string value(value_size, 'v');
    log::BatchBuilder frames_of;
    frames_of.reset(0);
    std::uint32_t n = 0;
    while (frames_of.size() < kMiB) {
      frames_of.append_record(n, 1'700'000'000'000'000'000 + n, "key-" + std::to_string(n % 1000), value);
      ++n;
    }
    const auto whole = frames_of.finish();
    const std::vector<std::byte> frames(whole.begin() + sizeof(log::BatchHeader), whole.end());
    std::vector<std::byte> copy(frames.size());
    log::BatchBuilder old_builder;
    log::v2::BatchBuilder new_builder;
    std::vector<Run> raw_enc, old_enc, new_enc, raw_dec, old_dec, new_dec;
    std::vector<std::byte> old_batch, new_batch, scratch;
    for (int rep = 0; rep < o.reps && g_interrupted == 0; ++rep) {
      Run r;
      r.value = throughput(frames.size(), [&] { std::memcpy(copy.data(), frames.data(), frames.size()); });
      raw_enc.push_back(r);
      r.value = throughput(frames.size(), [&] {
        old_builder.reset(0);
        old_builder.append(frames, n, n);
        old_batch.assign(old_builder.finish().begin(), old_builder.finish().end());
      });
      old_enc.push_back(r);
      r.value = throughput(frames.size(), [&] {
        new_builder.reset(0);
        std::size_t delivered = 0;
        detail::deliver_frames(frames.data(), n, 0, 0, delivered, [&](const Record& rec) {
          new_builder.append(rec.offset, rec.timestamp_ms, rec.key, rec.value);
        });
        new_batch.assign(new_builder.finish().begin(), new_builder.finish().end());
      });
      new_enc.push_back(r);
      // Decoding: CRC and every record to a callback that touches its value.
      std::uint64_t sink = 0;
      r.value = throughput(frames.size(), [&] { std::memcpy(copy.data(), frames.data(), frames.size()); });
      raw_dec.push_back(r);
      r.value = throughput(frames.size(), [&] {
        const log::DecodedBatch d = log::decode_batch(old_batch);
        log::for_each_record(d, 0, [&](const Record& rec) { sink += rec.value.size(); });
      });
      old_dec.push_back(r);
      r.value = throughput(frames.size(), [&] {
        const log::v2::DecodedBatch d = log::v2::decode_batch(new_batch, scratch);
        log::v2::for_each_record(d, [&](const log::v2::BatchRecord& rec) { sink += rec.value.size(); });
      });
      new_dec.push_back(r);
      if (sink == 0) die("codec: decoded nothing");
    }
    const std::string size = value_size == 64 ? "64B" : "1KiB";
    std::printf("codec %s: %u records a batch; v2 batch %zu bytes, RBB1 batch %zu bytes (of frames %zu)\n",
                size.c_str(), n, new_batch.size(), old_batch.size(), frames.size());
    print_ratio("encode " + size, "v2", new_enc, "a copy of the frames", raw_enc, "MB/s", 1e-6, 0);
    print_ratio("encode " + size, "RBB1", old_enc, "a copy of the frames", raw_enc, "MB/s", 1e-6, 0);
    print_ratio("encode " + size, "v2", new_enc, "RBB1", old_enc, "MB/s", 1e-6, 0);
    print_ratio("decode " + size, "v2", new_dec, "a copy of the frames", raw_dec, "MB/s", 1e-6, 0);
    print_ratio("decode " + size, "RBB1", old_dec, "a copy of the frames", raw_dec, "MB/s", 1e-6, 0);
    print_ratio("decode " + size, "v2", new_dec, "RBB1", old_dec, "MB/s", 1e-6, 0);
  }
}

std::string filesystem_of(const std::string& dir) {
  struct statfs st {};
  if (::statfs(dir.c_str(), &st) != 0) return "?";
  switch (st.f_type) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs (memory: not a disk!)";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "file system 0x%lx", static_cast<unsigned long>(st.f_type));
      return buf;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string> cases;
  CLI::App app{"ringbus-log-bench: the commit log's throughput, latency, catch-up reads, open and seek, each against "
               "a baseline on the same file system in the same run (bench/README.md)"};
  app.add_option("cases", cases, "which: flush, produce, durable, read, open, codec (default: all)")
      ->check(CLI::IsMember({"flush", "produce", "durable", "read", "open", "codec"}));
  app.add_option("--dir", o.dir, "a directory on the disk to measure (created; what the runs write is removed)")
      ->capture_default_str();
  app.add_option("--reps", o.reps, "repetitions of each case")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--flush-mib", o.flush_mib, "MiB of values per flush run")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--flush-sizes", o.flush_sizes, "record value sizes of the flush case, bytes")
      ->delimiter(',')->capture_default_str()->check(CLI::Range(16, 1 << 20));
  app.add_option("--produce-seconds", o.produce_seconds, "seconds per produce run")->capture_default_str()
      ->check(CLI::Range(0.1, 600.0));
  app.add_option("--rate", o.rate_mb, "MB/s the paced producer offers (below the disk's speed)")->capture_default_str()
      ->check(CLI::Range(1.0, 100000.0));
  app.add_option("--samples", o.samples, "durable publishes per repetition")->capture_default_str()
      ->check(CLI::Range(10, 10'000'000));
  app.add_option("--read-mib", o.read_mib, "MiB of log the consumer catches up on")->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--segments", o.segment_counts, "segment counts of the open case")->delimiter(',')->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_flag("!--no-cold", o.cold, "skip the cold-cache reads (they drop the page cache; root only)");
  app.add_flag("-v,--verbose", g_verbose, "print every run");
  CLI11_PARSE(app, argc, argv);
  if (cases.empty()) cases = {"flush", "produce", "durable", "read", "open", "codec"};

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) die("cannot create " + o.dir + ": " + ec.message());
  o.dir = fs::canonical(o.dir).string() + "/run-" + std::to_string(::getpid());
  fs::create_directories(o.dir);

  std::printf("ringbus-log-bench: %s, %ld CPUs; %s on %s; load average %s\n", cpu_model().c_str(),
              ::sysconf(_SC_NPROCESSORS_ONLN), o.dir.c_str(), filesystem_of(o.dir).c_str(),
              read_first_line("/proc/loadavg").c_str());
  std::printf("%d repetitions; medians; per-run = min..max of the ratios within each repetition\n", o.reps);
  for (const std::string& c : cases) {
    if (g_interrupted != 0) break;
    if (c == "flush") {
      for (const std::size_t size : o.flush_sizes) bench_flush(o, size);
    }
    if (c == "produce") bench_produce(o);
    if (c == "durable") bench_durable(o);
    if (c == "read") bench_read(o);
    if (c == "open") bench_open(o);
    if (c == "codec") bench_codec(o);
  }
  fs::remove_all(o.dir);
  if (!g_goals.empty()) {
    std::printf("\n== goals ==\n");
    for (const std::string& g : g_goals) std::printf("%s\n", g.c_str());
  }
  std::printf("load average at the end %s\n", read_first_line("/proc/loadavg").c_str());
  return g_interrupted != 0 ? 130 : 0;
}
