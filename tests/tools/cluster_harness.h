// The harness of the cluster fault tests: ringbusd nodes a, b and c against a
// real etcd, a producer on a node's host publishing numbered records with
// acks=all, a consumer on a host reading what it may (replicated records
// only, the default), and the checker. The checker reads a node's log and
// sorts what it sees into Jepsen's categories: every acknowledged record
// must be there at the offset it was given (lost: none), no record twice
// (duplicated: none), the producer's order kept (reordered: none), and
// nothing the consumer saw missing or moved (seen-then-lost: none).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

#include "../bus/test_support.h"
#include "../cluster/etcd_process.h"
#include "control_socket.h"
#include "ringbus/consumer.h"
#include "ringbus/producer.h"
#include "run_command.h"

namespace ringbus::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using control::ControlClient;
using control::Json;

inline std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// In a forked child: moves it into network namespace `name` (ip netns's
// /run/netns/NAME), or exits.
inline void enter_netns(const std::string& name) {
  const int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) ::_exit(126);
  ::close(fd);
}

// One ringbusd node: its instance, data directory and process.
struct Node {
  std::string name;
  std::string instance;
  std::string dir;
  std::string log;
  std::string listen = "127.0.0.1:0";
  std::string netns;  // the network namespace it runs in ("": the test's)
  std::string config;  // its TOML file
  pid_t pid = -1;

  void start(const std::string& etcd, const std::string& cluster) {
    const pid_t child = ::fork();
    if (child == 0) {
      if (!netns.empty()) enter_netns(netns);
      ::setenv("RINGBUS_INSTANCE", instance.c_str(), 1);
      ::setenv("RINGBUS_CLUSTER_SECRET", "failover-secret", 1);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(RINGBUSD_PATH, RINGBUSD_PATH, "--config", config.c_str(), "--data-dir", (dir + "/data").c_str(), "--node",
              name.c_str(), "--listen", listen.c_str(), "--etcd", etcd.c_str(), "--cluster", cluster.c_str(),
              "--no-metrics", "--log-level", "info", nullptr);
      ::_exit(127);
    }
    pid = child;
  }
  bool ready() const {
    return eventually([&] {
      auto c = ControlClient::connect(instance);
      return c && c->call("ping").ok();
    }, 10s);
  }
  void kill9() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  Result<Json> call(const std::string& op, Json fields = Json::object()) const {
    auto c = ControlClient::connect(instance);
    if (!c) return c.error();
    return c->call(op, std::move(fields));
  }
  // The cluster as this node sees it: the topic's leader ("" if none).
  std::string leader_of(const std::string& topic) const {
    auto r = call("cluster_status");
    if (!r) return "";
    for (const Json& t : (*r)["cluster"].value("topics", Json::array()))
      if (t["name"] == topic) return t.value("leader", std::string());
    return "";
  }
  std::vector<std::string> isr_of(const std::string& topic) const {
    auto r = call("cluster_status");
    if (!r) return {};
    for (const Json& t : (*r)["cluster"].value("topics", Json::array()))
      if (t["name"] == topic && t.contains("isr")) return t["isr"].get<std::vector<std::string>>();
    return {};
  }
};

// Record seq's value: "p-<seq>", then `pad` bytes (the checker reads the number).
inline std::string value(std::uint64_t seq, std::size_t pad = 0) {
  std::string v = "p-" + std::to_string(seq);
  if (pad > 0) v += "." + std::string(pad, 'x');
  return v;
}
inline std::uint64_t seq_of(std::string_view v) { return std::stoull(std::string(v.substr(2, v.find('.') - 2))); }

class ClusterHarness : public EtcdSuite {
 protected:
  void SetUp() override {
    EtcdSuite::SetUp();
    if (HasFatalFailure()) return;
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    root_ = "/var/tmp/ringbus-failover-" + std::to_string(::getpid()) + "-" + test;
    fs::remove_all(root_);
    for (const char* n : {"a", "b", "c"}) add_node(n);
    cluster_ = test;
  }
  // Node `n`'s instance, directory and settings (not started).
  Node& add_node(const std::string& n) {
    Node node;
    node.name = n;
    node.instance = "fo-" + std::to_string(::getpid()) + "-" + n;
    node.dir = root_ + "/" + n;
    node.log = node.dir + ".log";
    node.config = node.dir + ".toml";
    fs::create_directories(node.dir);
    std::ofstream(node.config) << "replica_max_lag_ms = " << max_lag_ms() << "\n";
    return nodes_[n] = node;
  }
  void TearDown() override {
    for (auto& [name, n] : nodes_) {
      if (n.pid > 0) {
        ::kill(n.pid, SIGCONT);
        ::kill(n.pid, SIGTERM);
        ::waitpid(n.pid, nullptr, 0);
      }
      if (HasFailure()) std::cerr << "---- node " << name << "'s log:\n" << read_file(n.log);
      std::error_code ec;
      fs::remove_all(instance_directory(n.instance), ec);
    }
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  // How long a mirror may lag before it leaves the in-sync set (the nodes'
  // replica_max_lag_ms).
  virtual int max_lag_ms() const { return 10'000; }
  Node& node(const std::string& n) { return nodes_.at(n); }
  void start(const std::string& n) {
    node(n).start(etcd_->endpoint(), cluster_);
    ASSERT_TRUE(node(n).ready()) << read_file(node(n).log);
  }

  // A producer on `n`'s host publishing value(0), value(1), ... each waited
  // for with acks=all (in groups of `group`), until stopped or refused.
  // A group refused for too few in-sync replicas is not acknowledged, and
  // it goes on.
  struct Producing {
    std::mutex mu;
    std::map<std::uint64_t, std::uint64_t> acked;  // seq -> offset
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> published{0};
    std::atomic<std::uint64_t> too_few{0};  // groups refused with not_enough_replicas
    std::string ended;  // why it stopped
    std::thread thread;
    ~Producing() { stop_and_join(); }
    void stop_and_join() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  };
  void produce(Producing& p, const std::string& on, std::uint64_t from, std::size_t group = 10, std::size_t pad = 0) {
    p.thread = std::thread([&p, instance = node(on).instance, from, group, pad] {
      auto producer = Producer::open(instance, "t");
      if (!producer) {
        p.ended = producer.error().message;
        return;
      }
      std::uint64_t seq = from;
      while (!p.stop.load()) {
        std::vector<std::pair<std::uint64_t, PublishResult>> sent;
        for (std::size_t i = 0; i < group; ++i, ++seq) {
          const PublishResult r = producer->publish("", value(seq, pad), {}, 0);
          if (!r.ok()) {
            p.ended = std::string("publish: ") + to_string(r.status);
            return;
          }
          sent.emplace_back(seq, r);
          p.published.store(seq + 1);
        }
        const PublishStatus s = producer->wait_replicated(sent.back().second, 2s);
        if (s == PublishStatus::timed_out) continue;  // not acknowledged: neither lost nor kept for sure
        if (s == PublishStatus::not_enough_replicas) {
          ++p.too_few;
          std::this_thread::sleep_for(10ms);
          continue;
        }
        if (s != PublishStatus::ok) {
          p.ended = std::string("wait_replicated: ") + to_string(s);
          return;
        }
        std::lock_guard lock(p.mu);
        for (const auto& [q, r] : sent) p.acked[q] = r.offset;
      }
      p.ended = "stopped";
    });
  }

  // A consumer on `on`'s host reading t from its start in the default mode
  // (replicated records only), until stopped or the topic goes from there.
  struct Watching {
    std::mutex mu;
    std::map<std::uint64_t, std::uint64_t> seen;  // seq -> offset
    std::atomic<bool> stop{false};
    std::thread thread;
    ~Watching() { stop_and_join(); }
    void stop_and_join() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  };
  void watch(Watching& w, const std::string& on) {
    w.thread = std::thread([&w, instance = node(on).instance] {
      ConsumerOptions o;
      o.start = StartPosition::earliest();
      auto c = Consumer::open(instance, "t", o);
      if (!c) {
        ADD_FAILURE() << c.error().message;
        return;
      }
      while (!w.stop.load()) {
        const PollResult r = c->poll([&](const Record& rec) {
          std::lock_guard lock(w.mu);
          w.seen[seq_of(rec.value)] = rec.offset;
        });
        if (r.status == PollStatus::topic_deleted) return;  // its node stepped down
        if (r.records == 0) (void)c->wait(10ms);
      }
    });
  }

  // The checker: reads partition 0 of `t` on `n` from its start and checks
  // what the producer was told, and what the watcher saw, against it.
  void check(const std::string& n, Producing& p, std::uint64_t min_acked, Watching* w = nullptr) {
    std::map<std::uint64_t, std::uint64_t> acked;
    {
      std::lock_guard lock(p.mu);
      acked = p.acked;
    }
    ASSERT_GE(acked.size(), min_acked) << "the producer stopped early: " << p.ended;
    ConsumerOptions o;
    o.start = StartPosition::earliest();
    auto c = Consumer::open(node(n).instance, "t", o);
    ASSERT_TRUE(c) << c.error().message;
    std::map<std::uint64_t, std::uint64_t> seen;  // seq -> offset
    std::uint64_t duplicated = 0, reordered = 0, last_seq = 0, next_offset = 0;
    bool any = false;
    // It reads only replicated records (the default): a new leader's high
    // watermark moves once its in-sync set is settled (a dead member
    // removed), so it reads on until it has every acknowledged offset, or
    // 20 s pass, and then until nothing more comes for a moment.
    const std::uint64_t acked_end = acked.empty() ? 0 : std::max_element(acked.begin(), acked.end(), [](auto& x, auto& y) {
                                                          return x.second < y.second;
                                                        })->second + 1;
    const auto until = std::chrono::steady_clock::now() + 20s;
    for (int idle = 0; (next_offset < acked_end || idle < 50) && std::chrono::steady_clock::now() < until;) {
      const PollResult r = c->poll([&](const Record& rec) {
        EXPECT_EQ(rec.offset, next_offset) << "offsets are dense";
        next_offset = rec.offset + 1;
        const std::uint64_t seq = seq_of(rec.value);
        if (!seen.emplace(seq, rec.offset).second) ++duplicated;
        if (any && seq <= last_seq) ++reordered;
        last_seq = seq;
        any = true;
      });
      ASSERT_EQ(r.status, PollStatus::ok) << to_string(r.status) << " reading node " << n << " at offset " << next_offset;
      if (r.records == 0) {
        ++idle;
        (void)c->wait(10ms);
      } else {
        idle = 0;
      }
    }
    std::uint64_t lost = 0, moved = 0;
    for (const auto& [seq, offset] : acked) {
      const auto it = seen.find(seq);
      if (it == seen.end()) {
        if (lost++ < 5) ADD_FAILURE() << "lost: record " << seq << ", acknowledged at offset " << offset;
      } else if (it->second != offset) {
        if (moved++ < 5) ADD_FAILURE() << "record " << seq << " acknowledged at offset " << offset << " is at " << it->second;
      }
    }
    EXPECT_EQ(lost, 0u) << "acknowledged records missing from the new leader's log";
    std::uint64_t seen_then_lost = 0;
    if (w != nullptr) {
      std::lock_guard lock(w->mu);
      EXPECT_FALSE(w->seen.empty()) << "the watcher saw nothing";
      for (const auto& [seq, offset] : w->seen) {
        const auto it = seen.find(seq);
        if ((it == seen.end() || it->second != offset) && seen_then_lost++ < 5) {
          ADD_FAILURE() << "seen then lost: record " << seq << " at offset " << offset << " on the old leader";
        }
      }
    }
    EXPECT_EQ(seen_then_lost, 0u);
    EXPECT_EQ(moved, 0u);
    EXPECT_EQ(duplicated, 0u);
    EXPECT_EQ(reordered, 0u);
  }

  // Nodes a, b and c, and topic t (one partition) led by a, replicated on
  // all three with min_insync 2, all in sync.
  void start_cluster() {
    for (const char* n : {"a", "b", "c"}) {
      start(n);
      if (HasFatalFailure()) return;
    }
    Json topic{{"name", "t"}, {"partitions", 1}, {"ring_bytes", 1 << 20}, {"max_record_size", 4096},
               {"durability", "page_cache"}, {"segment_bytes", 1 << 20}};
    auto r = node("a").call("create_topic", Json{{"topic", topic}, {"replicas", 3}, {"min_insync", 2}});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ((*r)["replicas"].size(), 3u);
    ASSERT_TRUE(eventually([&] { return node("a").isr_of("t").size() == 3; }));
  }
  // The cluster, a producer on a's host (and a consumer there, if `w`), and
  // `n` records acknowledged.
  void start_under_load(Producing& p, Watching* w, std::size_t n) {
    start_cluster();
    if (HasFatalFailure()) return;
    produce(p, "a", 0);
    if (w != nullptr) watch(*w, "a");
    ASSERT_TRUE(acknowledged(p, n)) << p.ended;
  }
  // t's in-sync set as node `n` sees it, in any order.
  std::set<std::string> in_sync(const std::string& n) const {
    const std::vector<std::string> isr = nodes_.at(n).isr_of("t");
    return {isr.begin(), isr.end()};
  }
  static bool acknowledged(Producing& p, std::size_t n) {
    return eventually([&] {
      std::lock_guard lock(p.mu);
      return p.acked.size() >= n;
    });
  }
  // The node, one of `candidates`, that leads t now (as `asked` sees it),
  // once its broker serves t; "" if none does within the wait.
  std::string new_leader(const std::string& asked, const std::set<std::string>& candidates) {
    std::string leader;
    const bool found = eventually([&] {
      leader = node(asked).leader_of("t");
      if (!candidates.contains(leader)) return false;
      auto t = node(leader).call("describe_topic", {{"name", "t"}});
      return t.ok() && !(*t)["topic"].value("mirror", false);
    });
    return found ? leader : "";
  }

  std::string cluster_;
  std::string root_;
  std::map<std::string, Node> nodes_;
};

}  // namespace ringbus::test
