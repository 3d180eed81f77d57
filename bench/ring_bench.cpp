// Micro-benchmarks of ringbus (Google Benchmark), each next to the baseline
// it is compared with; the ratios are printed after the table.
//
//   single thread, no cross-core traffic: what one record costs to publish
//   and poll (copy API, batch API, zero-copy claim) against the same work
//   through boost::lockfree::spsc_queue and a bare memcpy in and out;
//
//   the claim word under contention: the library's own 16-byte CAS claim
//   (sync.h: load_pair + cas16 on {position, next offset}) and a whole
//   Producer::try_claim + commit, with 1 and 2 threads, against a plain
//   8-byte fetch_add on a shared counter (the contention baseline); and the
//   same claim while another core only reads the claim word, which is what
//   a caught-up consumer does on every empty poll.
//
// Runs are kept short (--benchmark_min_time is set per benchmark); for
// steadier figures pass --benchmark_repetitions=5. Nothing here is a test.
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/lockfree/spsc_queue.hpp>

#include "bench_options.h"
#include "ringbus/broker.h"
#include "ringbus/consumer.h"
#include "ringbus/producer.h"
#include "sync.h"  // internal: the claim protocol's cas16 / load_pair

namespace {

constexpr std::uint64_t kRingBytes = 1ULL << 22;
constexpr int kPerIteration = 64;  // records published, then polled, per iteration
constexpr double kMinTime = 0.2;   // seconds per benchmark: keep the whole run short

ringbus::Broker* g_broker = nullptr;
std::string g_instance;
int g_topic_serial = 0;

std::string create_topic() {
  ringbus::TopicConfig tc;
  tc.name = "rb" + std::to_string(++g_topic_serial);
  tc.partitions = 1;
  tc.ring_bytes = kRingBytes;
  tc.max_record_size = 4096;
  if (auto r = g_broker->create_topic(tc); !r) {
    std::fprintf(stderr, "create_topic: %s\n", r.error().message.c_str());
    std::abort();
  }
  return tc.name;
}

using ringbus::bench::gating_options;
using ringbus::bench::producer_options;

// Pins each benchmark thread to its own CPU for the run, then puts the old
// mask back (thread 0 is Google Benchmark's main thread).
class PinForRun {
 public:
  explicit PinForRun(int thread_index) {
    ok_ = sched_getaffinity(0, sizeof old_, &old_) == 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(thread_index % static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)), &set);
    (void)sched_setaffinity(0, sizeof set, &set);
  }
  ~PinForRun() {
    if (ok_) (void)sched_setaffinity(0, sizeof old_, &old_);
  }

 private:
  cpu_set_t old_{};
  bool ok_ = false;
};

// ---------------------------------------------------------------------------
// Single thread: publish kPerIteration records, then poll them back. The
// consumer is gating and copies each value out (as the whole-program runs).

// What every single-thread ringbus case shares: a fresh topic, a gating
// consumer and a producer on it, and a poll that copies each value out.
struct SingleThreadCase {
  std::size_t size;
  std::string topic = create_topic();
  ringbus::Consumer cons = ringbus::Consumer::open(g_instance, topic, gating_options()).value();
  ringbus::Producer prod = ringbus::Producer::open(g_instance, topic, producer_options()).value();
  std::vector<char> sink = std::vector<char>(4096);
  std::uint64_t records = 0;

  explicit SingleThreadCase(const benchmark::State& state) : size(static_cast<std::size_t>(state.range(0))) {}

  // Polls back the kPerIteration records just published.
  void poll_back(benchmark::State& state) {
    const ringbus::PollResult r = cons.poll(
        [&](const ringbus::Record& rec) {
          std::memcpy(sink.data(), rec.value.data(), rec.value.size());
          benchmark::DoNotOptimize(sink.data());
          ++records;
        },
        kPerIteration);
    if (r.records != kPerIteration) state.SkipWithError("poll came up short");
  }
  void finish(benchmark::State& state) {
    state.SetItemsProcessed(static_cast<std::int64_t>(records));
    state.SetBytesProcessed(static_cast<std::int64_t>(records * size));
    (void)g_broker->delete_topic(topic);
  }
};

void BM_RingbusPublishPoll(benchmark::State& state) {
  SingleThreadCase c(state);
  const std::vector<char> value(c.size, 'x');
  for (auto _ : state) {
    for (int i = 0; i < kPerIteration; ++i) {
      if (!c.prod.try_publish({}, std::string_view(value.data(), c.size)).ok()) state.SkipWithError("publish failed");
    }
    c.poll_back(state);
  }
  c.finish(state);
}

void BM_RingbusPublishBatchPoll(benchmark::State& state) {
  SingleThreadCase c(state);
  constexpr int kBatch = 32;
  const std::vector<char> values(c.size * kBatch, 'x');
  std::vector<ringbus::Message> msgs(kBatch);
  for (int i = 0; i < kBatch; ++i) msgs[i].value = std::string_view(values.data() + i * c.size, c.size);
  for (auto _ : state) {
    for (int i = 0; i < kPerIteration / kBatch; ++i) {
      if (!c.prod.try_publish_batch(msgs).ok()) state.SkipWithError("publish failed");
    }
    c.poll_back(state);
  }
  c.finish(state);
}

// Zero-copy publish: claim, write the value in place, commit.
void BM_RingbusClaimCommitPoll(benchmark::State& state) {
  SingleThreadCase c(state);
  const std::vector<char> value(c.size, 'x');
  for (auto _ : state) {
    for (int i = 0; i < kPerIteration; ++i) {
      ringbus::Claim claim = c.prod.try_claim(c.size);
      if (!claim.ok()) state.SkipWithError("claim failed");
      std::memcpy(claim.value().data(), value.data(), c.size);
      if (!claim.commit().ok()) state.SkipWithError("commit failed");
    }
    c.poll_back(state);
  }
  c.finish(state);
}

// Baseline: the same push-then-pop through boost::lockfree::spsc_queue of a
// fixed 64-byte struct, ring-sized.
struct Rec64 {
  std::uint64_t seq;
  char fill[56];
};
static_assert(sizeof(Rec64) == 64);

void BM_SpscQueuePushPop(benchmark::State& state) {
  boost::lockfree::spsc_queue<Rec64> q(kRingBytes / sizeof(Rec64));
  Rec64 rec{};
  Rec64 out[kPerIteration];
  std::uint64_t n = 0;
  for (auto _ : state) {
    for (int i = 0; i < kPerIteration; ++i) {
      rec.seq = n + static_cast<std::uint64_t>(i);
      if (!q.push(rec)) state.SkipWithError("push failed");
    }
    if (q.pop(out, kPerIteration) != kPerIteration) state.SkipWithError("pop came up short");
    benchmark::DoNotOptimize(out);
    n += kPerIteration;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
  state.SetBytesProcessed(static_cast<std::int64_t>(n * sizeof(Rec64)));
}

// Baseline: only the copies, into a ring-sized buffer and out again.
void BM_BareCopyInOut(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::vector<char> ring(kRingBytes);
  std::vector<char> src(size, 'x');
  std::vector<char> dst(size);
  std::uint64_t pos = 0;
  std::uint64_t n = 0;
  for (auto _ : state) {
    const std::uint64_t start = pos;
    for (int i = 0; i < kPerIteration; ++i, pos += size) {
      std::memcpy(ring.data() + (pos & (kRingBytes - 1)), src.data(), size);
    }
    benchmark::ClobberMemory();
    for (std::uint64_t p = start; p < pos; p += size) {
      std::memcpy(dst.data(), ring.data() + (p & (kRingBytes - 1)), size);
      benchmark::DoNotOptimize(dst.data());
    }
    n += kPerIteration;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
  state.SetBytesProcessed(static_cast<std::int64_t>(n * size));
}

// ---------------------------------------------------------------------------
// The claim word under contention. Each shared word sits alone on its own
// 128 bytes, as in the partition header.

struct alignas(128) ClaimWord {
  std::uint64_t w[2] = {0, 0};  // {position, next offset}
};
struct alignas(128) Counter {
  std::atomic<std::uint64_t> v{0};
};
ClaimWord g_claim;
Counter g_counter;

// The contention baseline: one locked 8-byte add per claim.
void BM_FetchAdd(benchmark::State& state) {
  PinForRun pin(state.thread_index());
  for (auto _ : state) benchmark::DoNotOptimize(g_counter.v.fetch_add(64, std::memory_order_relaxed));
  state.SetItemsProcessed(state.iterations());
}

// The library's claim protocol on its own: read the pair, cmpxchg16b
// {position + 64, offset + 1}, retry on failure (partition_ring.cpp claim()).
void BM_Cas16Claim(benchmark::State& state) {
  PinForRun pin(state.thread_index());
  std::uint64_t retries = 0;
  for (auto _ : state) {
    ringbus::detail::Pair cur = ringbus::detail::load_pair(g_claim.w);
    while (!ringbus::detail::cas16(g_claim.w, cur, {cur.first + 64, cur.second + 1})) ++retries;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["retries/claim"] = benchmark::Counter(static_cast<double>(retries) /
                                                       static_cast<double>(std::max<benchmark::IterationCount>(
                                                           1, state.iterations())),
                                                       benchmark::Counter::kAvgThreads);
}

// A whole zero-copy claim + commit through Producer (no gating consumer, so
// the ring never back-pressures; each thread has its own Producer).
//
// failed_commits counts commits that came back claim_revoked. With no
// gating reader nothing stops one producer from lapping the commit entries
// (ring_bytes / 32 offsets) while the other is stalled between claim and
// commit (8-16 ms stalls happen on this VM); see bench/RESULTS.md, "Library
// bugs". It is counted, not fatal: it is the library's failure, not the
// benchmark's.
std::string g_claim_topic;

void BM_ProducerClaimCommit(benchmark::State& state) {
  PinForRun pin(state.thread_index());
  auto prod = ringbus::Producer::open(g_instance, g_claim_topic, producer_options()).value();
  std::uint64_t failed = 0;
  for (auto _ : state) {
    ringbus::Claim c = prod.try_claim(32);
    benchmark::DoNotOptimize(c.value().data());
    failed += !c.commit().ok();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["failed_commits"] = benchmark::Counter(static_cast<double>(failed));
}

// The claim while another core only reads the claim word, as a gating
// consumer that has caught up does on every empty poll (step() -> tail()).
// The reader is a plain thread on the second CPU, not a benchmark thread:
// only the claims are timed and counted.
template <class Read>
class ReaderOnCpu1 {
 public:
  explicit ReaderOnCpu1(Read read)
      : thread_([this, read] {
          PinForRun pin(1);
          while (!stop_.load(std::memory_order_relaxed)) read();
        }) {}
  ~ReaderOnCpu1() {
    stop_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void BM_Cas16ClaimWithReader(benchmark::State& state) {
  PinForRun pin(0);
  ReaderOnCpu1 reader([] { benchmark::DoNotOptimize(ringbus::detail::load_pair(g_claim.w)); });
  for (auto _ : state) {
    ringbus::detail::Pair cur = ringbus::detail::load_pair(g_claim.w);
    while (!ringbus::detail::cas16(g_claim.w, cur, {cur.first + 64, cur.second + 1})) {
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_FetchAddWithReader(benchmark::State& state) {
  PinForRun pin(0);
  ReaderOnCpu1 reader([] { benchmark::DoNotOptimize(g_counter.v.load(std::memory_order_acquire)); });
  for (auto _ : state) benchmark::DoNotOptimize(g_counter.v.fetch_add(64, std::memory_order_relaxed));
  state.SetItemsProcessed(state.iterations());
}

const std::vector<std::int64_t> kSizes{32, 64, 256, 1024, 4096};

BENCHMARK(BM_RingbusPublishPoll)->ArgName("bytes")->ArgsProduct({kSizes})->MinTime(kMinTime);
BENCHMARK(BM_RingbusPublishBatchPoll)->ArgName("bytes")->ArgsProduct({kSizes})->MinTime(kMinTime);
BENCHMARK(BM_RingbusClaimCommitPoll)->ArgName("bytes")->ArgsProduct({kSizes})->MinTime(kMinTime);
BENCHMARK(BM_SpscQueuePushPop)->MinTime(kMinTime);
BENCHMARK(BM_BareCopyInOut)->ArgName("bytes")->ArgsProduct({kSizes})->MinTime(kMinTime);
BENCHMARK(BM_FetchAdd)->Threads(1)->Threads(2)->UseRealTime()->MinTime(kMinTime);
BENCHMARK(BM_Cas16Claim)->Threads(1)->Threads(2)->UseRealTime()->MinTime(kMinTime);
BENCHMARK(BM_ProducerClaimCommit)->Threads(1)->Threads(2)->UseRealTime()->MinTime(kMinTime);
BENCHMARK(BM_Cas16ClaimWithReader)->UseRealTime()->MinTime(kMinTime);
BENCHMARK(BM_FetchAddWithReader)->UseRealTime()->MinTime(kMinTime);

// ---------------------------------------------------------------------------
// Ratios: the console table as usual, and items/s kept by name so that each
// figure can be printed against its baseline of the same run. With
// repetitions, the median aggregate is used.

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  RatioReporter() : ConsoleReporter(isatty(STDOUT_FILENO) != 0 ? OO_ColorTabular : OO_Tabular) {}

  // "BM_Cas16Claim/threads:2", "BM_RingbusPublishPoll/bytes:64": the name
  // without min_time and real_time, which do not tell runs apart here.
  static std::string key(const Run& r) {
    std::string k = r.run_name.function_name;
    if (!r.run_name.args.empty()) k += "/" + r.run_name.args;
    if (!r.run_name.threads.empty()) k += "/" + r.run_name.threads;
    return k;
  }

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      const auto it = r.counters.find("items_per_second");
      if (it == r.counters.end()) continue;
      const bool aggregate = r.run_type == Run::RT_Aggregate;
      if (aggregate && r.aggregate_name != "median") continue;
      const std::string name = key(r);
      if (!aggregate && medians_.count(name) != 0) continue;  // keep the median once it is there
      (aggregate ? medians_ : rates_)[name] = it->second.value;
    }
  }
  double rate(const std::string& name) const {
    if (const auto it = medians_.find(name); it != medians_.end()) return it->second;
    const auto it = rates_.find(name);
    return it == rates_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, double> rates_;
  std::map<std::string, double> medians_;
};

void print_ratio(const RatioReporter& rep, const std::string& what, const std::string& a, const std::string& b,
                 const char* a_label, const char* b_label) {
  const double x = rep.rate(a);
  const double y = rep.rate(b);
  if (x == 0 || y == 0) return;  // filtered out or failed
  std::printf("ratio %s: %s %.1f Mrec/s / %s %.1f Mrec/s = %.2fx\n", what.c_str(), a_label, x / 1e6, b_label, y / 1e6,
              x / y);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  g_instance = "ringbench-" + std::to_string(::getpid());
  auto broker = ringbus::Broker::start({.instance = g_instance});
  if (!broker) {
    std::fprintf(stderr, "Broker::start: %s\n", broker.error().message.c_str());
    return 1;
  }
  g_broker = &broker.value();
  g_claim_topic = create_topic();

  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  std::printf("\nratios (same run; single-thread figures have no cross-core traffic):\n");
  for (const std::int64_t s : kSizes) {
    const std::string n = std::to_string(s);
    print_ratio(reporter, n + "B publish+poll", "BM_RingbusPublishPoll/bytes:" + n, "BM_SpscQueuePushPop",
                "ringbus try_publish", "spsc_queue(64B)");
    print_ratio(reporter, n + "B publish+poll", "BM_RingbusPublishPoll/bytes:" + n, "BM_BareCopyInOut/bytes:" + n,
                "ringbus try_publish", "bare copy in+out");
    print_ratio(reporter, n + "B publish+poll", "BM_RingbusPublishBatchPoll/bytes:" + n,
                "BM_BareCopyInOut/bytes:" + n, "ringbus batch32", "bare copy in+out");
    print_ratio(reporter, n + "B publish+poll", "BM_RingbusClaimCommitPoll/bytes:" + n,
                "BM_BareCopyInOut/bytes:" + n, "ringbus try_claim+commit", "bare copy in+out");
  }
  for (const char* t : {"1", "2"}) {
    const std::string th = std::string("/threads:") + t;
    print_ratio(reporter, std::string("claim, ") + t + " thread(s)", "BM_Cas16Claim" + th, "BM_FetchAdd" + th,
                "cas16 claim", "fetch_add");
    print_ratio(reporter, std::string("claim, ") + t + " thread(s)", "BM_ProducerClaimCommit" + th,
                "BM_FetchAdd" + th, "Producer try_claim+commit", "fetch_add");
  }
  print_ratio(reporter, "claim while another core reads the word", "BM_Cas16ClaimWithReader",
              "BM_Cas16Claim/threads:1", "cas16 claim + reader", "cas16 claim alone");
  print_ratio(reporter, "fetch_add while another core reads the word", "BM_FetchAddWithReader",
              "BM_FetchAdd/threads:1", "fetch_add + reader", "fetch_add alone");
  benchmark::Shutdown();
  return 0;
}
