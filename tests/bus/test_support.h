// Helpers shared by the bus tests: a broker on an instance of its own, so
// tests never see each other's topics (or those of a running demo).
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "ringbus/broker.h"
#include "ringbus/consumer.h"
#include "ringbus/producer.h"

namespace ringbus::test {

inline std::string unique_instance(const std::string& tag = "t") {
  static std::atomic<int> counter{0};
  return "test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// A tmpfs of `size` ("8m", "64m") mounted at `path` for the test's life
// (root only, which CI is: `error` says why it is not mounted).
struct Tmpfs {
  Tmpfs(std::filesystem::path at, const std::string& size) : path(std::move(at)) {
    if (::geteuid() != 0) {
      error = "mounting a tmpfs needs root (CI runs as root)";
      return;
    }
    std::filesystem::create_directories(path);
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0) {
      error = "mount tmpfs at " + path.string() + ": " + std::strerror(errno);
    }
  }
  ~Tmpfs() {
    if (error.empty()) ::umount2(path.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  bool mounted() const { return error.empty(); }

  std::filesystem::path path;
  std::string error;
};

inline TopicConfig topic(const std::string& name, std::uint32_t partitions = 1,
                         std::uint64_t ring_bytes = 64 * 1024, std::uint32_t max_record = 4096) {
  TopicConfig c;
  c.name = name;
  c.partitions = partitions;
  c.ring_bytes = ring_bytes;
  c.max_record_size = max_record;
  return c;
}

// A started broker with its instance name; the test fails at once if the
// broker cannot start.
struct BrokerFixture : ::testing::Test {
  std::string instance = unique_instance();
  Broker broker = start();

  Broker start() {
    auto b = Broker::start({instance});
    if (!b) {
      ADD_FAILURE() << b.error().message;
      std::abort();
    }
    return std::move(b.value());
  }
  void create(const TopicConfig& c) {
    auto r = broker.create_topic(c);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  Producer producer(const std::string& t, ProducerOptions o = {}) {
    auto p = Producer::open(instance, t, o);
    if (!p) {
      ADD_FAILURE() << p.error().message;
      std::abort();
    }
    return std::move(p.value());
  }
  Consumer consumer(const std::string& t, ConsumerOptions o = {}) {
    auto c = Consumer::open(instance, t, std::move(o));
    if (!c) {
      ADD_FAILURE() << c.error().message;
      std::abort();
    }
    return std::move(c.value());
  }
};

// Polls `done` every 10 ms until it is true (true) or `limit` passed (false).
template <class F>
bool eventually(F&& done, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

inline ConsumerOptions from_earliest(bool gating = false) {
  ConsumerOptions o;
  o.start = StartPosition::earliest();
  o.gating = gating;
  return o;
}

inline ProducerOptions exclusive_producer() {
  ProducerOptions o;
  o.exclusive = true;
  return o;
}

// Everything the consumer delivers now, as {offset, value}; polls must be ok.
inline std::vector<std::pair<std::uint64_t, std::string>> drain_values(Consumer& c) {
  std::vector<std::pair<std::uint64_t, std::string>> out;
  for (;;) {
    const PollResult r = c.poll([&](const Record& rec) { out.emplace_back(rec.offset, std::string(rec.value)); }, 4096);
    EXPECT_EQ(r.status, PollStatus::ok);
    if (r.records == 0) return out;
  }
}

// Waits for and reads until `n` records arrived or 30 s passed.
inline std::vector<std::pair<std::uint64_t, std::string>> read_n(Consumer& c, std::size_t n) {
  std::vector<std::pair<std::uint64_t, std::string>> got;
  (void)eventually([&] {
    (void)c.wait(std::chrono::milliseconds(5));
    for (auto& r : drain_values(c)) got.push_back(std::move(r));
    return got.size() >= n;
  });
  return got;
}

}  // namespace ringbus::test
