// The README's queue (point-to-point) example, compiled and run by CTest so
// the docs stay true: the members of one group share the records, each
// record goes to one member, and once acknowledged it is never delivered
// again.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>

#include <ringbus/broker.h>
#include <ringbus/group.h>
#include <ringbus/producer.h>

int main() {
  const std::string instance = "queue-" + std::to_string(::getpid());
  auto broker = ringbus::Broker::start({.instance = instance}).value();
  ringbus::TopicConfig topic;
  topic.name = "jobs";
  topic.partitions = 2;
  (void)broker.create_topic(topic).value();
  auto producer = ringbus::Producer::open(instance, "jobs").value();
  for (int i = 0; i < 20; ++i) (void)producer.publish("", "job-" + std::to_string(i));

  ringbus::GroupOptions options;
  options.settings.mode = ringbus::GroupMode::queue;
  options.settings.start = ringbus::StartPosition::Kind::earliest;
  options.settings.lease = std::chrono::seconds(30);  // not acknowledged by then: redelivered to another member
  options.settings.max_deliveries = 5;                 // then to the dead-letter topic, if one is set
  options.auto_ack = false;                            // acknowledge explicitly, once the job is done
  auto a = ringbus::GroupConsumer::join(instance, "jobs", "workers", options).value();
  auto b = ringbus::GroupConsumer::join(instance, "jobs", "workers", options).value();

  std::set<std::string> done;
  std::size_t twice = 0;
  auto work = [&](ringbus::GroupConsumer& member, const char* name) {
    return member.poll([&](const ringbus::Record& r) {
      std::printf("%s does %.*s (delivery %u)\n", name, static_cast<int>(r.value.size()), r.value.data(), r.deliveries);
      twice += !done.insert(std::string(r.value)).second;
      (void)member.ack(r.partition, r.offset);  // done: never delivered to the group again
    }).records;
  };
  while (done.size() < 20) {
    if (work(a, "a") + work(b, "b") == 0) (void)a.wait(std::chrono::milliseconds(10));
  }
  std::printf("%zu jobs done, %zu twice\n", done.size(), twice);
  return twice == 0 ? 0 : 1;
}
