// A fixed workload for counting instructions per published record under
// callgrind (bench/README.md): one producer publishes N records of 64 bytes,
// one per try_publish, into a topic of an embedded broker, with a
// consumer (non-gating, or gating with --gating) reading them every 1024 records, as a hot path
// does. Counting instructions (not time) is what compares two builds
// exactly on a noisy machine.
//
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out
//       build/release/bench/ringbus-publish-loop --records 1000000
//   callgrind_annotate /tmp/cg.out | head
#include <unistd.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "ringbus/broker.h"
#include "ringbus/consumer.h"
#include "ringbus/producer.h"

int main(int argc, char** argv) {
  CLI::App app{"ringbus-publish-loop: N single-record publishes, for callgrind"};
  std::uint64_t records = 1'000'000;
  bool exclusive = false;
  bool gating = false;
  app.add_option("--records", records, "records to publish (default 1000000)");
  app.add_flag("--exclusive", exclusive, "publish as the partition's exclusive owner (ProducerOptions::exclusive)");
  app.add_flag("--gating", gating, "read with a gating consumer (as ringbus-bench does) instead of a non-gating one");
  CLI11_PARSE(app, argc, argv);
  using namespace ringbus;
  const std::string instance = "publish-loop-" + std::to_string(::getpid());
  auto broker = Broker::start({instance});
  if (!broker) return 1;
  TopicConfig c;
  c.name = "loop";
  c.ring_bytes = 1 << 20;
  c.max_record_size = 1024;
  if (auto t = broker->create_topic(c); !t) {
    std::fprintf(stderr, "%s\n", t.error().message.c_str());
    return 1;
  }
  ProducerOptions po;
  po.exclusive = exclusive;
  ConsumerOptions co;
  co.gating = gating;
  auto p = Producer::open(instance, "loop", po);
  auto consumer = Consumer::open(instance, "loop", co);
  if (!p || !consumer) return 1;
  const std::string value(64, 'v');
  std::uint64_t read = 0;
  for (std::uint64_t i = 0; i < records; ++i) {
    if (!p->try_publish("", value).ok()) return 2;
    if ((i & 1023) == 1023) (void)consumer->poll([&](const Record&) { ++read; });
  }
  std::printf("published %llu, read %llu\n", static_cast<unsigned long long>(records), static_cast<unsigned long long>(read));
  return 0;
}
