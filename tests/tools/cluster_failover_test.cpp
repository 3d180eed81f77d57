// Faults of a cluster of ringbusd processes on loopback, against a real
// etcd: kill -9 of the leader under load, and SIGSTOP of the leader past its
// lease then SIGCONT. A producer on the leader's host publishes numbered
// records with acks=all; after the failover the checker reads the new
// leader's log and sorts what it sees into Jepsen's categories: every
// acknowledged record must be there at the offset it was given (lost: none),
// no record twice (duplicated: none), the producer's order kept (reordered:
// none), and nothing a consumer on the old leader's host saw (reading only
// replicated records, the default) missing or moved (seen-then-lost: none).
// The old leader comes back as a mirror and catches up.
#include <fcntl.h>
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
#include <thread>

#include "../bus/test_support.h"
#include "../cluster/etcd_process.h"
#include "control_socket.h"
#include "ringbus/consumer.h"
#include "ringbus/producer.h"

namespace ringbus::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using control::ControlClient;
using control::Json;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// One ringbusd node: its instance, data directory and process.
struct Node {
  std::string name;
  std::string instance;
  std::string dir;
  std::string log;
  pid_t pid = -1;

  void start(const std::string& etcd, const std::string& cluster) {
    const pid_t child = ::fork();
    if (child == 0) {
      ::setenv("RINGBUS_INSTANCE", instance.c_str(), 1);
      ::setenv("RINGBUS_CLUSTER_SECRET", "failover-secret", 1);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(RINGBUSD_PATH, RINGBUSD_PATH, "--data-dir", (dir + "/data").c_str(), "--node", name.c_str(), "--listen",
              "127.0.0.1:0", "--etcd", etcd.c_str(), "--cluster", cluster.c_str(), "--no-metrics", "--log-level", "info",
              nullptr);
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

std::string value(std::uint64_t seq) { return "p-" + std::to_string(seq); }

class ClusterFailover : public EtcdSuite {
 protected:
  void SetUp() override {
    EtcdSuite::SetUp();
    if (HasFatalFailure()) return;
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    root_ = "/var/tmp/ringbus-failover-" + std::to_string(::getpid()) + "-" + test;
    fs::remove_all(root_);
    for (const char* n : {"a", "b", "c"}) {
      Node node;
      node.name = n;
      node.instance = "fo-" + std::to_string(::getpid()) + "-" + n;
      node.dir = root_ + "/" + n;
      node.log = node.dir + ".log";
      fs::create_directories(node.dir);
      nodes_[n] = node;
    }
    cluster_ = test;
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
  Node& node(const std::string& n) { return nodes_.at(n); }
  void start(const std::string& n) {
    node(n).start(etcd_->endpoint(), cluster_);
    ASSERT_TRUE(node(n).ready()) << read_file(node(n).log);
  }

  // A producer on `n`'s host publishing value(0), value(1), ... each waited
  // for with acks=all (in groups of `group`), until stopped or refused.
  struct Producing {
    std::mutex mu;
    std::map<std::uint64_t, std::uint64_t> acked;  // seq -> offset
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> published{0};
    std::string ended;  // why it stopped
    std::thread thread;
  };
  void produce(Producing& p, const std::string& on, std::uint64_t from, std::size_t group = 10) {
    p.thread = std::thread([&p, instance = node(on).instance, from, group] {
      auto producer = Producer::open(instance, "t");
      if (!producer) {
        p.ended = producer.error().message;
        return;
      }
      std::uint64_t seq = from;
      while (!p.stop.load()) {
        std::vector<std::pair<std::uint64_t, PublishResult>> sent;
        for (std::size_t i = 0; i < group; ++i, ++seq) {
          const PublishResult r = producer->publish("", value(seq), {}, 0);
          if (!r.ok()) {
            p.ended = std::string("publish: ") + to_string(r.status);
            return;
          }
          sent.emplace_back(seq, r);
          p.published.store(seq + 1);
        }
        const PublishStatus s = producer->wait_replicated(sent.back().second, 2s);
        if (s == PublishStatus::timed_out) continue;  // not acknowledged: neither lost nor kept for sure
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
          w.seen[std::stoull(std::string(rec.value.substr(2)))] = rec.offset;
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
        const std::uint64_t seq = std::stoull(std::string(rec.value.substr(2)));
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

TEST_F(ClusterFailover, KillNineOfTheLeaderUnderLoadLosesNoAcknowledgedRecord) {
  start_cluster();
  if (HasFatalFailure()) return;
  Producing p;
  produce(p, "a", 0);
  Watching w;
  watch(w, "a");
  ASSERT_TRUE(acknowledged(p, 500)) << p.ended;
  node("a").kill9();
  p.stop = w.stop = true;
  p.thread.join();
  w.thread.join();
  // A mirror in sync takes over.
  const std::string leader = new_leader("b", {"b", "c"});
  ASSERT_NE(leader, "");
  check(leader, p, 500, &w);
  // It goes on taking acks=all writes, and the old leader comes back as a
  // mirror and rejoins the in-sync set.
  Producing more;
  produce(more, leader, p.published.load() + 1000);
  ASSERT_TRUE(acknowledged(more, 100)) << more.ended;
  start("a");
  ASSERT_TRUE(eventually([&] { return node(leader).isr_of("t").size() == 3; }));
  more.stop = true;
  more.thread.join();
  for (auto& [seq, offset] : more.acked) p.acked[seq] = offset;
  check(leader, p, 600);
}

TEST_F(ClusterFailover, ALeaderStoppedPastItsLeaseAcknowledgesNothingAfterItWasFenced) {
  start_cluster();
  if (HasFatalFailure()) return;
  Producing p;
  produce(p, "a", 0);
  Watching w;
  watch(w, "a");
  ASSERT_TRUE(acknowledged(p, 300)) << p.ended;
  // Stopped past its lease's TTL: another node is elected meanwhile.
  ::kill(node("a").pid, SIGSTOP);
  const std::string leader = new_leader("b", {"b", "c"});
  std::this_thread::sleep_for(1s);
  ::kill(node("a").pid, SIGCONT);
  ASSERT_NE(leader, "");
  // The old leader, running again, finds itself fenced and steps down; the
  // producer on its host is refused (topic_deleted) or times out, and
  // whatever it was told before holds on the new leader.
  ASSERT_TRUE(eventually([&] {
    auto t = node("a").call("describe_topic", {{"name", "t"}});
    return !t.ok() || (*t)["topic"].value("mirror", false);  // released, then (perhaps) served as a mirror's copy
  }));
  p.stop = w.stop = true;
  p.thread.join();
  w.thread.join();
  EXPECT_TRUE(read_file(node("a").log).find("stops leading topic 't'") != std::string::npos);
  check(leader, p, 300, &w);
  // And it follows the new leader as a mirror, back in the in-sync set.
  ASSERT_TRUE(eventually([&] { return node(leader).isr_of("t").size() == 3; }));
}

// Two failovers in quick succession: the leader is killed, and the one that
// takes over is killed as soon as it leads; the third node, in sync, leads
// with everything that was acknowledged.
TEST_F(ClusterFailover, TwoFailoversInQuickSuccessionLoseNoAcknowledgedRecord) {
  start_cluster();
  if (HasFatalFailure()) return;
  Producing p;
  produce(p, "a", 0);
  ASSERT_TRUE(acknowledged(p, 300)) << p.ended;
  node("a").kill9();
  p.stop = true;
  p.thread.join();
  const std::string second = new_leader("b", {"b", "c"});
  ASSERT_NE(second, "");
  const std::string third = second == "b" ? "c" : "b";
  node(second).kill9();
  ASSERT_EQ(new_leader(third, {third}), third);
  check(third, p, 300);
}

}  // namespace
}  // namespace ringbus::test
