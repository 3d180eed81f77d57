// The README's example, compiled and run by CTest so the docs stay true.
#include <cstdio>

#include <ringbus/broker.h>
#include <ringbus/consumer.h>
#include <ringbus/producer.h>

int main() {
  // An embedded broker owns /dev/shm/ringbus-example-<pid>/ until it is destroyed.
  const std::string instance = "example-" + std::to_string(::getpid());
  auto broker = ringbus::Broker::start({.instance = instance}).value();
  ringbus::TopicConfig topic;
  topic.name = "orders";
  topic.partitions = 4;
  (void)broker.create_topic(topic).value();

  // Any process on the host can do the rest, by instance and topic name.
  auto consumer = ringbus::Consumer::open(instance, "orders", {.start = ringbus::StartPosition::earliest()}).value();
  auto producer = ringbus::Producer::open(instance, "orders").value();

  const ringbus::PublishResult r = producer.publish("customer-17", R"({"item":"tea"})");
  if (!r.ok()) {
    std::fprintf(stderr, "publish: %s\n", ringbus::to_string(r.status));  // back_pressured, record_too_large, ...
    return 1;
  }
  // r.partition and r.offset say where the record went.

  (void)consumer.wait(std::chrono::seconds(1));
  const ringbus::PollResult got = consumer.poll([](const ringbus::Record& rec) {
    // rec.key, rec.value, rec.headers are views valid during this call.
    std::printf("%u/%llu %.*s\n", rec.partition, static_cast<unsigned long long>(rec.offset),
                static_cast<int>(rec.value.size()), rec.value.data());
  });
  return got.records == 1 ? 0 : 1;
}
