// ringbus-cluster-bench: a cluster of three ringbusd processes and an etcd
// on this machine (loopback), measured from a producer on the leader's host:
//
// - producer throughput on a topic with two mirrors against the same on a
//   topic without any, same run (the mirrors must not slow the local path);
// - acks=all latency (publish one record, wait_replicated) against the
//   issue's baseline: a bare TCP round trip between two processes on
//   loopback whose far side writes 4 KiB to a file beside the logs and
//   fdatasyncs it before it answers; and, beside it, acks=local (publish,
//   wait_durable) on the same topic, interleaved. The topic is page_cache:
//   mirrors acknowledge on write, as Kafka's followers do; the baseline's
//   sync costs what --dir's file system makes it cost (next to nothing on
//   tmpfs);
// - failover: the leader killed with SIGKILL, until a mirror serves the
//   topic and takes a record (the lease's TTL is the floor).
//
// Not a test: nothing here passes or fails on timing (bench/README.md).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "control_socket.h"
#include "ringbus/producer.h"

namespace {

namespace fs = std::filesystem;
using namespace ringbus;
using control::ControlClient;
using control::Json;
using bench::now_ns;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

pid_t spawn(const std::vector<std::string>& args, const std::string& log, const std::vector<std::string>& env) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

std::string read_tail(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  const std::string all = s.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

template <class F>
bool poll_until(F&& done, double seconds) {
  const std::int64_t until = now_ns() + static_cast<std::int64_t>(seconds * 1e9);
  while (!done()) {
    if (now_ns() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

struct Node {
  std::string name;
  std::string instance;
  pid_t pid = -1;
  Result<Json> call(const std::string& op, Json fields = Json::object()) const {
    auto c = ControlClient::connect(instance);
    if (!c) return c.error();
    return c->call(op, std::move(fields));
  }
};

struct Options {
  std::string ringbusd = RINGBUSD_PATH;
  std::string etcd = "etcd";
  std::string dir = "/dev/shm";
  std::uint64_t records = 2'000'000;
  std::uint32_t record_bytes = 1024;
  std::uint32_t latency_samples = 2000;
  int runs = 5;
};

class Cluster {
 public:
  explicit Cluster(const Options& o) : o_(o) {
    root_ = o.dir + "/ringbus-cluster-bench-" + std::to_string(::getpid());
    fs::create_directories(root_);
    const int client = free_port(), peer = free_port();
    etcd_url_ = "http://127.0.0.1:" + std::to_string(client);
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    etcd_ = spawn({o.etcd, "--name", "bench", "--data-dir", root_ + "/etcd", "--listen-client-urls", etcd_url_,
                   "--advertise-client-urls", etcd_url_, "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls",
                   peer_url, "--initial-cluster", "bench=" + peer_url},
                  root_ + "/etcd.log", {});
    etcd_ready_ = poll_until([&] {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<std::uint16_t>(client));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      ::close(fd);
      return up;
    }, 20);
    for (const char* n : {"a", "b", "c"}) {
      Node node{n, "cbench-" + std::to_string(::getpid()) + "-" + n};
      nodes_.push_back(node);
      start(nodes_.back());
    }
  }
  ~Cluster() {
    for (Node& n : nodes_) kill(n);
    if (etcd_ > 0) {
      ::kill(etcd_, SIGKILL);
      ::waitpid(etcd_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(root_, ec);
    for (Node& n : nodes_) fs::remove_all(instance_directory(n.instance), ec);
  }
  void start(Node& n) {
    n.pid = spawn({o_.ringbusd, "--data-dir", root_ + "/" + n.name, "--node", n.name, "--listen", "127.0.0.1:0", "--etcd",
                   etcd_url_, "--no-metrics"},
                  root_ + "/" + n.name + ".log", {"RINGBUS_INSTANCE=" + n.instance, "RINGBUS_CLUSTER_SECRET=bench"});
  }
  bool ready() {
    if (!etcd_ready_) {
      std::fprintf(stderr, "etcd did not start: %s\n", read_tail(root_ + "/etcd.log").c_str());
      return false;
    }
    for (Node& n : nodes_) {
      if (!poll_until([&] { return n.call("ping").ok(); }, 20)) {
        std::fprintf(stderr, "node %s did not start: %s\n", n.name.c_str(), read_tail(root_ + "/" + n.name + ".log").c_str());
        return false;
      }
    }
    return true;
  }
  static void kill(Node& n) {
    if (n.pid <= 0) return;
    ::kill(n.pid, SIGKILL);
    ::waitpid(n.pid, nullptr, 0);
    n.pid = -1;
  }
  Node& node(const std::string& name) {
    for (Node& n : nodes_)
      if (n.name == name) return n;
    std::abort();
  }
  std::vector<Node>& nodes() { return nodes_; }

 private:
  Options o_;
  std::string root_;
  std::string etcd_url_;
  pid_t etcd_ = -1;
  bool etcd_ready_ = false;
  std::vector<Node> nodes_;
};

bool create(const Node& on, const std::string& name, std::uint32_t replicas, std::uint32_t min_insync) {
  Json topic{{"name", name}, {"partitions", 1}, {"ring_bytes", 64 << 20}, {"durability", "page_cache"}};
  auto r = on.call("create_topic", Json{{"topic", topic}, {"replicas", replicas}, {"min_insync", min_insync}});
  if (!r) std::fprintf(stderr, "create_topic %s: %s\n", name.c_str(), r.error().message.c_str());
  return r.ok();
}

// Publishes `records` records as fast as the ring takes them, then waits
// for the last to be durable here (acks=local): MB/s of values.
double produce(const Node& on, const std::string& topic, const Options& o) {
  auto p = Producer::open(on.instance, topic);
  if (!p) return 0;
  const std::string value(o.record_bytes, 'v');
  const std::int64_t t0 = now_ns();
  PublishResult r;
  for (std::uint64_t i = 0; i < o.records; ++i) {
    r = p->publish("", value, {}, 0);
    if (!r.ok()) {
      std::fprintf(stderr, "publish: %s\n", to_string(r.status));
      return 0;
    }
  }
  if (p->wait_durable(r, std::chrono::seconds(60)) != PublishStatus::ok) return 0;
  const double seconds = static_cast<double>(now_ns() - t0) / 1e9;
  return static_cast<double>(o.records) * o.record_bytes / seconds / 1e6;
}

// The baseline of acks=all's latency: `samples` round trips of 64 bytes
// to a child process over loopback TCP, which writes 4 KiB to a file in
// `dir` and fdatasyncs it before answering. Microseconds each; empty if
// the child could not be set up.
std::vector<double> tcp_fdatasync_round_trips(const std::string& dir, std::uint32_t samples) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return {};
  }
  const std::string file = dir + "/cluster-bench-fdatasync-" + std::to_string(::getpid());
  const pid_t child = ::fork();
  if (child == 0) {
    const int c = ::accept(listener, nullptr, nullptr);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char in[64];
    const std::string page(4096, 'p');
    std::uint64_t at = 0;
    while (c >= 0 && fd >= 0 && ::recv(c, in, sizeof in, MSG_WAITALL) == static_cast<ssize_t>(sizeof in)) {
      if (::pwrite(fd, page.data(), page.size(), static_cast<off_t>(at)) != static_cast<ssize_t>(page.size()) ||
          ::fdatasync(fd) != 0) {
        break;
      }
      at += page.size();
      if (::send(c, in, 8, 0) != 8) break;
    }
    ::_exit(0);
  }
  ::close(listener);
  std::vector<double> us;
  const int c = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (child > 0 && ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    char out[64] = {};
    char back[8];
    for (std::uint32_t i = 0; i < samples; ++i) {
      const std::int64_t t0 = now_ns();
      if (::send(c, out, sizeof out, 0) != static_cast<ssize_t>(sizeof out) ||
          ::recv(c, back, sizeof back, MSG_WAITALL) != static_cast<ssize_t>(sizeof back)) {
        us.clear();
        break;
      }
      us.push_back(static_cast<double>(now_ns() - t0) / 1e3);
    }
  }
  ::close(c);
  if (child > 0) ::waitpid(child, nullptr, 0);
  std::error_code ec;
  fs::remove(file, ec);
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"ringbus-cluster-bench: three ringbusd nodes and an etcd on this machine; producer throughput with two "
               "mirrors, acks=all latency and failover time, each against its baseline in the same run"};
  app.add_option("--ringbusd", o.ringbusd, "the ringbusd to run")->capture_default_str();
  app.add_option("--etcd", o.etcd, "the etcd to run (Debian's etcd-server)")->capture_default_str();
  app.add_option("--dir", o.dir, "where the nodes' logs go (tmpfs keeps the disk out of it)")->capture_default_str();
  app.add_option("--records", o.records, "records per throughput run")->capture_default_str();
  app.add_option("--record-bytes", o.record_bytes, "value size")->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--latency-samples", o.latency_samples, "round trips per acks mode")->capture_default_str();
  app.add_option("--runs", o.runs, "throughput repetitions (medians)")->check(CLI::Range(1, 100))->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::printf("machine: %s, %u cpus; logs on %s\n", bench::cpu_model().c_str(), std::thread::hardware_concurrency(),
              o.dir.c_str());
  Cluster cluster(o);
  if (!cluster.ready()) return 1;
  Node& a = cluster.node("a");
  if (!create(a, "solo", 1, 1) || !create(a, "mirrored", 3, 2)) return 1;
  const bool in_sync = poll_until([&] {
    auto r = a.call("cluster_status");
    if (!r) return false;
    for (const Json& t : (*r)["cluster"]["topics"])
      if (t["name"] == "mirrored" && t.contains("isr") && t["isr"].size() == 3) return true;
    return false;
  }, 20);
  if (!in_sync) {
    std::fprintf(stderr, "the mirrors did not join the in-sync set\n");
    return 1;
  }

  // 1. Throughput: interleaved, no mirrors then two.
  std::vector<double> solo, mirrored;
  for (int run = 0; run < o.runs; ++run) {
    solo.push_back(produce(a, "solo", o));
    mirrored.push_back(produce(a, "mirrored", o));
    std::printf("run %d: producer %u B records: no mirrors %.0f MB/s, two mirrors %.0f MB/s\n", run + 1, o.record_bytes,
                solo.back(), mirrored.back());
  }
  const double s = bench::median(solo), m = bench::median(mirrored);
  std::printf("ratio producer with 2 mirrors %uB: %.0f MB/s / no mirrors %.0f MB/s = %.2fx (goal >= 0.90x: %s)\n",
              o.record_bytes, m, s, s > 0 ? m / s : 0, s > 0 && m / s >= 0.9 ? "met" : "MISSED");

  // 2. acks latency: one 64 B record, interleaved local / all.
  {
    auto p = Producer::open(a.instance, "mirrored");
    if (!p) return 1;
    const std::string value(64, 'l');
    std::vector<double> local, all;
    for (std::uint32_t i = 0; i < o.latency_samples; ++i) {
      for (int mode = 0; mode < 2; ++mode) {
        const std::int64_t t0 = now_ns();
        const PublishResult r = p->publish("", value, {}, 0);
        const PublishStatus st = mode == 0 ? p->wait_durable(r, std::chrono::seconds(10))
                                           : p->wait_replicated(r, std::chrono::seconds(10));
        if (!r.ok() || st != PublishStatus::ok) {
          std::fprintf(stderr, "acks=%s: %s\n", mode == 0 ? "local" : "all", to_string(st));
          return 1;
        }
        (mode == 0 ? local : all).push_back(static_cast<double>(now_ns() - t0) / 1e3);
      }
    }
    const std::vector<double> bare = tcp_fdatasync_round_trips(o.dir, o.latency_samples);
    if (bare.empty()) {
      std::fprintf(stderr, "the baseline's TCP round trips failed\n");
      return 1;
    }
    const double l50 = bench::quantile(local, 0.5), a50 = bench::quantile(all, 0.5), b50 = bench::quantile(bare, 0.5);
    std::printf("acks=local: p50 %.1f us, p99 %.1f us; acks=all: p50 %.1f us, p99 %.1f us; TCP round trip + fdatasync "
                "4 KiB: p50 %.1f us, p99 %.1f us (%u samples each)\n",
                l50, bench::quantile(local, 0.99), a50, bench::quantile(all, 0.99), b50, bench::quantile(bare, 0.99),
                o.latency_samples);
    std::printf("ratio acks=all p50 64B: %.1f us / TCP round trip + fdatasync 4 KiB p50 %.1f us = %.2fx (goal <= 1.50x: %s)\n",
                a50, b50, a50 / b50, a50 / b50 <= 1.5 ? "met" : "MISSED");
    std::printf("ratio acks=all p50 64B against acks=local: %.1f us / %.1f us = %.2fx\n", a50, l50, a50 / l50);
  }

  // 3. Failover: SIGKILL the leader; until a mirror serves the topic and a
  // record published there is durable on the in-sync set again.
  {
    const std::int64_t t0 = now_ns();
    Cluster::kill(a);
    std::string leader;
    const bool taken = poll_until([&] {
      for (Node& n : cluster.nodes()) {
        if (n.pid <= 0) continue;
        if (!n.call("describe_topic", {{"name", "mirrored"}}).ok()) continue;
        auto p = Producer::open(n.instance, "mirrored");
        if (!p) continue;
        const PublishResult r = p->publish("", "after", {}, 0);
        if (r.ok() && p->wait_durable(r, std::chrono::seconds(5)) == PublishStatus::ok) {
          leader = n.name;
          return true;
        }
      }
      return false;
    }, 30);
    const double seconds = static_cast<double>(now_ns() - t0) / 1e9;
    if (!taken) {
      std::printf("failover: no mirror took over within 30 s\n");
      return 1;
    }
    std::printf("failover after SIGKILL of the leader: node %s serves the topic after %.2f s (lease TTL 2 s; goal < 3 s: %s)\n",
                leader.c_str(), seconds, seconds < 3 ? "met" : "MISSED");
  }
  return 0;
}
