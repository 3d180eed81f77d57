// ringbus perf produce|consume|roundtrip: load generators and meters on a
// topic of a running broker, like Kafka's kafka-producer-perf-test and
// kafka-consumer-perf-test: a live progress line on stderr each second, then
// records/s, MB/s and latency percentiles. They use the same client library
// as any program (no broker on the data path).
#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "cli.h"
#include "ringbus/consumer.h"
#include "ringbus/group.h"
#include "ringbus/producer.h"

namespace ringbus::cli {

namespace {

std::int64_t realtime_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Latency samples in nanoseconds (every record up to a cap, then every k-th).
class Latencies {
 public:
  void add(std::int64_t ns) {
    if (++seen_ % stride_ != 0) return;
    samples_.push_back(ns);
    if (samples_.size() >= kCap) {
      // Keep every other sample and halve the rate: bounded memory, still uniform.
      std::vector<std::int64_t> half;
      for (std::size_t i = 0; i < samples_.size(); i += 2) half.push_back(samples_[i]);
      samples_ = std::move(half);
      stride_ *= 2;
    }
  }
  std::string summary() {
    if (samples_.empty()) return "no samples";
    std::sort(samples_.begin(), samples_.end());
    auto q = [&](double p) {
      return samples_[std::min(samples_.size() - 1, static_cast<std::size_t>(p * static_cast<double>(samples_.size())))];
    };
    return fmt::format("p50 {:.1f} us, p99 {:.1f} us, p99.9 {:.1f} us, max {:.1f} us", q(0.5) / 1e3, q(0.99) / 1e3,
                       q(0.999) / 1e3, static_cast<double>(samples_.back()) / 1e3);
  }

 private:
  static constexpr std::size_t kCap = 1 << 22;
  std::vector<std::int64_t> samples_;
  std::uint64_t seen_ = 0;
  std::uint64_t stride_ = 1;
};

// Prints "N records, X rec/s, Y MB/s" to stderr once a second. Bytes are
// the records' values.
class Progress {
 public:
  explicit Progress(const char* what) : what_(what), start_(steady_ns()), last_(start_) {}
  void tick(std::uint64_t n, std::uint64_t bytes) {
    const std::int64_t now = steady_ns();
    if (now - last_ < 1'000'000'000) return;
    const double s = static_cast<double>(now - last_) / 1e9;
    std::fprintf(stderr, "%s: %llu records, %.0f records/s, %.1f MB/s\n", what_, static_cast<unsigned long long>(n),
                 static_cast<double>(n - last_n_) / s, static_cast<double>(bytes - last_bytes_) / s / 1e6);
    last_ = now;
    last_n_ = n;
    last_bytes_ = bytes;
  }
  void done(std::uint64_t n, std::uint64_t bytes, Latencies& lat, const char* latency_name) {
    const double s = static_cast<double>(steady_ns() - start_) / 1e9;
    fmt::print("{}: {} records in {:.2f} s: {:.0f} records/s, {:.1f} MB/s ({} bytes each); {}: {}\n", what_, n, s,
               static_cast<double>(n) / s, static_cast<double>(bytes) / s / 1e6, n == 0 ? 0 : bytes / n, latency_name,
               lat.summary());
  }

 private:
  const char* what_;
  std::int64_t start_;
  std::int64_t last_;
  std::uint64_t last_n_ = 0;
  std::uint64_t last_bytes_ = 0;
};

struct PerfOptions {
  std::string topic;
  std::uint64_t records = 1'000'000;
  std::uint32_t record_size = 100;
  std::uint32_t batch = 1;
  double rate = 0;  // records/s, 0: as fast as it goes
  std::string from = "latest";
  std::string group;
  bool queue = false;
  std::int64_t timeout_ms = 10000;
  bool exclusive = false;  // ProducerOptions::exclusive
};

ProducerOptions producer_options(const PerfOptions& o) {
  ProducerOptions po;
  po.exclusive = o.exclusive;
  return po;
}

// Paces to `rate` records/s (sleeping only when ahead by more than 1 ms).
void pace(double rate, std::int64_t start, std::uint64_t sent) {
  if (rate <= 0) return;
  const auto due = start + static_cast<std::int64_t>(static_cast<double>(sent) * 1e9 / rate);
  const std::int64_t ahead = due - steady_ns();
  if (ahead > 1'000'000) std::this_thread::sleep_for(std::chrono::nanoseconds(ahead));
}

int produce(const Global& g, const PerfOptions& o) {
  auto p = Producer::open(g.instance, o.topic, producer_options(o));
  if (!p) return fail(p.error());
  const std::string value(o.record_size, 'x');
  std::vector<Message> batch(o.batch, Message{{}, value});
  Latencies lat;
  Progress progress("produce");
  const std::int64_t start = steady_ns();
  std::uint64_t n = 0;
  while (n < o.records && !g_stop.load(std::memory_order_relaxed)) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(o.batch, o.records - n));
    pace(o.rate, start, n);
    const std::int64_t t0 = steady_ns();
    const PublishResult r = k == 1 ? p->publish({}, value) : p->publish_batch(std::span(batch.data(), k));
    lat.add(steady_ns() - t0);
    if (!r.ok()) {
      std::fprintf(stderr, "ringbus: publish failed after %llu records: %s\n", static_cast<unsigned long long>(n),
                   to_string(r.status));
      return r.status == PublishStatus::topic_deleted ? kExitNotFound : kExitError;
    }
    n += k;
    progress.tick(n, n * o.record_size);
  }
  progress.done(n, n * o.record_size, lat, o.batch == 1 ? "publish call" : "publish_batch call");
  return kExitOk;
}

int consume(const Global& g, const PerfOptions& o) {
  ConsumerOptions co;
  co.start = o.from == "earliest" ? StartPosition::earliest() : StartPosition::latest();
  auto source = Source::open(g, o.topic, o.group, o.queue, co, /*auto_ack=*/true);
  if (!source) return fail(source.error());
  Source& c = source.value();
  Latencies lat;
  Progress progress("consume");
  std::uint64_t n = 0;
  std::int64_t idle_since = steady_ns();
  // What the handler does per record is what this meter costs: one pointer
  // to one struct, one add, one well-predicted branch. The age is taken once
  // per poll, of the first record it hands over (the oldest), so the clock
  // is read once per batch: reading it for one record in 32 cost a fifth of
  // the throughput (bench/RESULTS.md).
  struct Tally {
    std::uint64_t bytes = 0;
    std::int64_t first_ts = 0;
  } t;
  auto handler = [&t](const Record& r) {
    if (t.first_ts == 0) t.first_ts = r.publish_ns;
    t.bytes += r.value.size();
  };
  std::uint64_t& bytes = t.bytes;
  while (n < o.records && !g_stop.load(std::memory_order_relaxed)) {
    t.first_ts = 0;
    // Asks for no more than is left (a batch read from disk may still hold more).
    const PollResult r = c.poll(handler, static_cast<std::size_t>(std::min<std::uint64_t>(4096, o.records - n)));
    if (r.status == PollStatus::topic_deleted) return kExitNotFound;
    if (r.records != 0) {
      n += r.records;
      lat.add(realtime_ns() - t.first_ts);
      idle_since = steady_ns();
      progress.tick(n, bytes);
      continue;
    }
    if (steady_ns() - idle_since > o.timeout_ms * 1'000'000) {
      std::fprintf(stderr, "ringbus: no record for %lld ms (after %llu records)\n", static_cast<long long>(o.timeout_ms),
                   static_cast<unsigned long long>(n));
      progress.done(n, bytes, lat, "age at receipt (of each poll's first record)");
      return kExitTimeout;
    }
    (void)c.wait(std::chrono::milliseconds(100));
  }
  if (c.member) c.member->leave();
  progress.done(n, bytes, lat, "age at receipt (of each poll's first record)");
  return kExitOk;
}

// One producer thread and one consumer in this process: the time from the
// publish call to the handler, CLOCK_REALTIME on both sides of the same host.
int roundtrip(const Global& g, const PerfOptions& o) {
  ConsumerOptions co;
  co.start = StartPosition::latest();
  co.idle = IdleStrategy::busy_spin;
  auto c = Consumer::open(g.instance, o.topic, co);
  if (!c) return fail(c.error());
  auto p = Producer::open(g.instance, o.topic, producer_options(o));
  if (!p) return fail(p.error());
  std::atomic<bool> failed{false};
  std::thread producer([&] {
    std::string value(o.record_size, 'x');
    const std::int64_t start = steady_ns();
    for (std::uint64_t i = 0; i < o.records && !g_stop.load(std::memory_order_relaxed); ++i) {
      pace(o.rate, start, i);
      const std::int64_t t = realtime_ns();
      std::memcpy(value.data(), &t, std::min<std::size_t>(sizeof t, value.size()));
      if (!p->publish({}, value).ok()) {
        failed = true;
        return;
      }
    }
  });
  Latencies lat;
  Progress progress("roundtrip");
  std::uint64_t n = 0;
  std::int64_t idle_since = steady_ns();
  while (n < o.records && !failed.load() && !g_stop.load(std::memory_order_relaxed)) {
    const PollResult r = c->poll([&](const Record& rec) {
      std::int64_t sent = rec.publish_ns;
      if (rec.value.size() >= sizeof sent) std::memcpy(&sent, rec.value.data(), sizeof sent);
      lat.add(realtime_ns() - sent);
      ++n;
    });
    if (r.records != 0) {
      idle_since = steady_ns();
      progress.tick(n, n * o.record_size);
    } else if (steady_ns() - idle_since > o.timeout_ms * 1'000'000) {
      break;
    }
  }
  g_stop = true;  // ends the producer if we stopped early
  producer.join();
  if (failed.load() || n < o.records) {
    std::fprintf(stderr, "ringbus: the round trip stopped after %llu of %llu records%s\n", static_cast<unsigned long long>(n),
                 static_cast<unsigned long long>(o.records), failed.load() ? " (publish failed)" : "");
    progress.done(n, n * o.record_size, lat, "publish to handler");
    return kExitError;
  }
  progress.done(n, n * o.record_size, lat, "publish to handler");
  return kExitOk;
}

}  // namespace

void add_perf_commands(CLI::App& app, const Global& g, int& code) {
  CLI::App* perf = app.add_subcommand("perf", "load and measure: produce, consume, round trip");
  perf->require_subcommand(1);
  perf->footer(
      "Each prints a progress line on stderr every second, then one summary line on stdout:\n"
      "records/s, MB/s and latency percentiles.");
  auto o = std::make_shared<PerfOptions>();
  auto common = [&](CLI::App* c) {
    c->add_option("TOPIC", o->topic, "topic")->required();
    c->add_option("--records,-n", o->records, "how many records")->capture_default_str()->check(CLI::PositiveNumber);
  };
  CLI::App* produce_cmd = perf->add_subcommand("produce", "publish records as fast as possible (or at --rate)");
  produce_cmd->footer(
      "Latency: the time of each publish call.\nExamples:\n"
      "  ringbus perf produce orders --records 10000000 --record-size 64 --batch 64\n"
      "  ringbus perf produce orders --records 100000 --rate 10000");
  common(produce_cmd);
  produce_cmd->add_option("--record-size", o->record_size, "value bytes")->capture_default_str();
  produce_cmd->add_option("--batch", o->batch, "records per publish_batch call (1: publish)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  produce_cmd->add_option("--rate", o->rate, "at most this many records per second")->check(CLI::PositiveNumber);
  produce_cmd->add_flag("--exclusive", o->exclusive,
                        "own the topic's partitions while it runs (ProducerOptions::exclusive: no other producer)");
  produce_cmd->callback([&g, &code, o] { code = produce(g, *o); });

  CLI::App* consume_cmd = perf->add_subcommand("consume", "read records as fast as they come");
  consume_cmd->footer(
      "Latency: each record's age when it arrives (now - its publish timestamp).\nExamples:\n"
      "  ringbus perf consume orders --records 10000000 --from earliest\n"
      "  ringbus perf consume jobs --records 100000 --group workers --queue");
  common(consume_cmd);
  consume_cmd->add_option("--from", o->from, "earliest or latest (default)")->check(CLI::IsMember({"earliest", "latest"}));
  consume_cmd->add_option("--group,-g", o->group, "read as a member of this consumer group");
  consume_cmd->add_flag("--queue", o->queue, "the group is a queue");
  consume_cmd->add_option("--timeout", o->timeout_ms, "give up (exit 4) after this long without a record (default 10s)")
      ->transform(duration_units());
  consume_cmd->callback([&g, &code, o] { code = consume(g, *o); });

  CLI::App* rt = perf->add_subcommand("roundtrip", "one producer and one consumer: latency from publish to handler");
  rt->footer(
      "Paced with --rate (default 100000/s) so the figure is latency, not queueing.\nExample:\n"
      "  ringbus perf roundtrip orders --records 1000000 --rate 200000 --record-size 64");
  common(rt);
  rt->add_option("--record-size", o->record_size, "value bytes (at least 8: the send time rides in it)")->capture_default_str();
  rt->add_option("--rate", o->rate, "records per second (default 100000)")->check(CLI::PositiveNumber);
  rt->add_flag("--exclusive", o->exclusive, "the producer owns the topic's partitions (ProducerOptions::exclusive)");
  rt->callback([&g, &code, o] {
    if (o->rate <= 0) o->rate = 100'000;
    o->record_size = std::max<std::uint32_t>(o->record_size, 8);
    code = roundtrip(g, *o);
  });
}

}  // namespace ringbus::cli
