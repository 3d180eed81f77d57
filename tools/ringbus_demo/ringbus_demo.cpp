// ringbus-demo: an embedded broker with producers and consumers, showing what
// flowed and checking every record: the plain throughput demo (tools/demo
// runs the trucking pipeline, tools/trucking/).
//
// Producers publish stamped records (producer id, sequence number); every
// consumer is a gating subscriber that checks it received each record once,
// in order per producer. The exit code says whether the check held.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "ringbus/broker.h"
#include "ringbus/consumer.h"
#include "ringbus/producer.h"

namespace {

struct Options {
  unsigned producers = 2;
  unsigned consumers = 2;
  unsigned partitions = 2;
  double seconds = 5;
  std::size_t record_size = 128;
  unsigned batch = 16;
  std::uint64_t ring_bytes = 8 << 20;
  std::string instance = "demo-" + std::to_string(::getpid());
};

struct alignas(64) ConsumerStats {
  std::atomic<std::uint64_t> records{0};
  std::atomic<std::uint64_t> bytes{0};
  std::string error;
};

constexpr std::size_t kStamp = 12;  // u32 producer id + u64 sequence

int run(Options o) {
  // A batch is one claim, at most a quarter of the ring: fit it.
  const std::uint64_t frame = o.record_size + 64;  // header, key and alignment, roughly
  o.batch = static_cast<unsigned>(std::clamp<std::uint64_t>(o.ring_bytes / 4 / frame, 1, o.batch));
  auto broker = ringbus::Broker::start({o.instance});
  if (!broker) return fmt::print(stderr, "ringbus-demo: {}\n", broker.error().message), 1;
  ringbus::TopicConfig tc;
  tc.name = "demo";
  tc.partitions = o.partitions;
  tc.ring_bytes = o.ring_bytes;
  tc.max_record_size = static_cast<std::uint32_t>(std::max<std::size_t>(o.record_size + 64, 4096));  // + the key
  if (auto t = broker->create_topic(tc); !t) return fmt::print(stderr, "ringbus-demo: {}\n", t.error().message), 1;
  fmt::print("ringbus demo: instance '{}', topic 'demo' ({} partitions, {} MiB ring each)\n", o.instance,
             o.partitions, o.ring_bytes >> 20);
  fmt::print("{} producers -> {} gating consumers, {}-byte records in batches of {}, {} s ({} threads on {} cores)\n\n",
             o.producers, o.consumers, o.record_size, o.batch, o.seconds, o.producers + o.consumers,
             std::thread::hardware_concurrency());

  std::atomic<bool> stop{false};
  std::atomic<unsigned> producers_done{0};
  std::atomic<unsigned> producer_errors{0};
  std::vector<ConsumerStats> stats(o.consumers);
  std::vector<std::uint64_t> produced(o.producers, 0);
  std::vector<std::thread> threads;
  std::vector<ringbus::Consumer> consumers;
  for (unsigned c = 0; c < o.consumers; ++c) {
    ringbus::ConsumerOptions co;
    co.start = ringbus::StartPosition::earliest();
    co.gating = true;  // no loss: producers wait for the slowest consumer
    auto cons = ringbus::Consumer::open(o.instance, "demo", co);
    if (!cons) return fmt::print(stderr, "ringbus-demo: {}\n", cons.error().message), 1;
    consumers.push_back(std::move(cons.value()));
  }
  for (unsigned c = 0; c < o.consumers; ++c) {
    threads.emplace_back([&, c] {
      std::vector<std::uint64_t> next(o.producers, 0);
      ConsumerStats& st = stats[c];
      auto on_record = [&](const ringbus::Record& r) {
        std::uint32_t id = 0;
        std::uint64_t seq = 0;
        std::memcpy(&id, r.value.data(), 4);
        std::memcpy(&seq, r.value.data() + 4, 8);
        if (id >= next.size() || seq != next[id]) {
          if (st.error.empty()) {
            st.error = fmt::format("producer {} record {} arrived when {} was expected", id, seq,
                                   id < next.size() ? next[id] : 0);
          }
        } else {
          ++next[id];
        }
        st.bytes.fetch_add(r.value.size(), std::memory_order_relaxed);
        st.records.fetch_add(1, std::memory_order_relaxed);
      };
      for (;;) {
        const auto r = consumers[c].poll(on_record, 4096);
        if (r.records == 0) {
          if (producers_done.load() == o.producers) {
            // Producers are done: one more look, then stop when quiet.
            if (consumers[c].poll(on_record, 4096).records == 0) break;
          } else {
            (void)consumers[c].wait(std::chrono::milliseconds(10));
          }
        }
      }
    });
  }
  for (unsigned p = 0; p < o.producers; ++p) {
    threads.emplace_back([&, p] {
      auto prod = ringbus::Producer::open(o.instance, "demo").value();
      // One claim per batch: the records of a batch get consecutive offsets
      // and become visible together (Producer::publish_batch).
      std::vector<std::string> values(o.batch, std::string(std::max(o.record_size, kStamp), 'x'));
      std::vector<ringbus::Message> batch(o.batch);
      const std::string key = "producer-" + std::to_string(p);
      for (std::uint64_t seq = 0; !stop.load(std::memory_order_relaxed);) {
        for (unsigned i = 0; i < o.batch; ++i) {
          const std::uint64_t s = seq + i;
          std::memcpy(values[i].data(), &p, 4);
          std::memcpy(values[i].data() + 4, &s, 8);
          batch[i] = ringbus::Message{key, values[i]};
        }
        const auto r = prod.publish_batch(batch);
        if (r.ok()) {
          seq += o.batch;
          produced[p] = seq;
        } else if (r.status != ringbus::PublishStatus::timed_out) {
          fmt::print(stderr, "producer {}: {}\n", p, ringbus::to_string(r.status));
          producer_errors.fetch_add(1);
          break;
        }
      }
      producers_done.fetch_add(1);
    });
  }

  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t last_records = 0;
  std::uint64_t last_bytes = 0;
  auto last = t0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::duration<double>(o.seconds)) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const auto now = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(now - last).count();
    const std::uint64_t rec = stats[0].records.load();
    const std::uint64_t byt = stats[0].bytes.load();
    fmt::print("  {:5.1f} s  {:8.2f} M records/s  {:8.1f} MB/s  (per consumer)\n",
               std::chrono::duration<double>(now - t0).count(), (rec - last_records) / dt / 1e6,
               (byt - last_bytes) / dt / 1e6);
    last_records = rec;
    last_bytes = byt;
    last = now;
  }
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::uint64_t total = 0;
  for (const std::uint64_t n : produced) total += n;
  bool ok = producer_errors.load() == 0 && total > 0;
  fmt::print("\npublished {} records ({:.2f} M/s)\n", total, total / elapsed / 1e6);
  for (unsigned c = 0; c < o.consumers; ++c) {
    const bool good = stats[c].error.empty() && stats[c].records.load() == total;
    ok = ok && good;
    fmt::print("consumer {}: {} records checked, {}\n", c, stats[c].records.load(),
               good ? "every record once, in order per producer"
                    : (stats[c].error.empty() ? fmt::format("expected {}", total) : stats[c].error));
  }
  fmt::print("{}\n", ok ? "check passed" : "CHECK FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"ringbus-demo: an embedded ringbus broker with producers and checking consumers"};
  app.add_option("--producers", o.producers, "producer threads")->check(CLI::Range(1u, 64u))->capture_default_str();
  app.add_option("--consumers", o.consumers, "gating consumer threads")->check(CLI::Range(1u, 64u))->capture_default_str();
  app.add_option("--partitions", o.partitions, "partitions of the topic")->check(CLI::Range(1u, 1024u))->capture_default_str();
  app.add_option("--seconds", o.seconds, "how long producers publish")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  app.add_option("--record-size", o.record_size, "value bytes per record (at least 12)")->check(CLI::Range(12, 1 << 20))->capture_default_str();
  app.add_option("--batch", o.batch, "records per publish_batch call (1 = one record per call)")->check(CLI::Range(1u, 1024u))->capture_default_str();
  app.add_option("--ring-bytes", o.ring_bytes, "ring size per partition, a power of two")->capture_default_str();
  app.add_option("--instance", o.instance, "instance name (a fresh one per run by default)");
  CLI11_PARSE(app, argc, argv);
  return run(o);
}
