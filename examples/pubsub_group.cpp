// The README's publish-subscribe example, compiled and run by CTest so the
// docs stay true: two groups on one topic, each sees every record.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <ringbus/broker.h>
#include <ringbus/group.h>
#include <ringbus/producer.h>

int main() {
  const std::string instance = "pubsub-" + std::to_string(::getpid());
  auto broker = ringbus::Broker::start({.instance = instance}).value();
  ringbus::TopicConfig topic;
  topic.name = "prices";
  topic.partitions = 2;
  (void)broker.create_topic(topic).value();
  auto producer = ringbus::Producer::open(instance, "prices").value();
  for (int i = 0; i < 10; ++i) (void)producer.publish("ACME", std::to_string(100 + i));

  // Each group gets every record; inside a group the partitions are divided
  // among its members (in other processes, typically), and rebalanced when
  // members join, leave or die.
  ringbus::GroupOptions options;
  options.settings.start = ringbus::StartPosition::Kind::earliest;  // for a new group
  auto audit = ringbus::GroupConsumer::join(instance, "prices", "audit", options).value();
  auto charts = ringbus::GroupConsumer::join(instance, "prices", "charts", options).value();
  std::size_t audited = 0;
  std::size_t charted = 0;
  while (audited < 10 || charted < 10) {
    const std::size_t before = audited + charted;
    audited += audit.poll([](const ringbus::Record& r) {
      std::printf("audit  %u/%llu %.*s\n", r.partition, static_cast<unsigned long long>(r.offset),
                  static_cast<int>(r.value.size()), r.value.data());
    }).records;
    charted += charts.poll([](const ringbus::Record&) {}).records;
    if (audited + charted == before) (void)audit.wait(std::chrono::milliseconds(10));
  }
  // Positions are committed every second by poll(), at leave(), or now; a
  // member that joins later goes on from there.
  (void)audit.commit();
  std::printf("audit saw %zu records, charts saw %zu\n", audited, charted);
  return audited == 10 && charted == 10 ? 0 : 1;
}
