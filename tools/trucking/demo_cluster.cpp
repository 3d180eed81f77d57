#include "demo_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "ringbus/topic.h"
#include "trucking_run.h"

namespace ringbus::trucking {

namespace fs = std::filesystem;

namespace {

// `name` beside this program, in the build tree's `subdir` (../subdir/name),
// or on PATH; "" if nowhere.
std::string find_program(const std::string& name, const std::string& subdir) {
  const fs::path here = program_dir();
  for (const fs::path& p : {here / name, here.parent_path() / subdir / name}) {
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path p = fs::path(dir) / name;
    if (!dir.empty() && ::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

// A loopback port nothing listens on now (the kernel's choice).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

bool accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

// Calls `done` every 100 ms until it says true, for up to `timeout_s`.
template <class F>
bool wait_until(double timeout_s, F done) {
  const std::int64_t deadline = steady_ms() + static_cast<std::int64_t>(timeout_s * 1000);
  for (;;) {
    if (done()) return true;
    if (steady_ms() > deadline || stop_requested()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string read_all(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string tail_of(const std::string& path) {
  const std::string all = read_all(path);
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

}  // namespace

DemoCluster::DemoCluster(Processes& processes, std::string instance, std::string dir)
    : processes_(processes), instance_(std::move(instance)), dir_(std::move(dir)) {}

DemoCluster::~DemoCluster() {
  // A killed node leaves its instance's shared memory (a live one removes
  // its own when it stops, which Processes asks of it).
  for (int i = 0; i < 2; ++i) {
    if (node_pid_[i] != 0) continue;
    std::error_code ec;
    fs::remove_all(instance_directory(instance(static_cast<char>('a' + i))), ec);
  }
}

bool DemoCluster::start(const std::vector<Topic>& topics) {
  topics_ = topics;
  const std::string etcd = find_program("etcd", "etcd");
  ringbusd_path_ = find_program("ringbusd", "ringbusd");
  ringbus_path_ = find_program("ringbus", "ringbus");
  if (etcd.empty()) {
    std::fprintf(stderr, "ringbus-trucking-demo: --mirrors needs etcd (apt-get install etcd-server)\n");
    return false;
  }
  if (ringbusd_path_.empty() || ringbus_path_.empty()) {
    std::fprintf(stderr, "ringbus-trucking-demo: --mirrors needs ringbusd and ringbus, beside this program or on PATH\n");
    return false;
  }
  const int client = free_port();
  const int peer = free_port();
  const std::string client_url = fmt::format("http://127.0.0.1:{}", client);
  const std::string peer_url = fmt::format("http://127.0.0.1:{}", peer);
  const Child e = spawn_path(etcd,
                             {"--name", "demo", "--data-dir", dir_ + "/etcd", "--listen-client-urls", client_url,
                              "--advertise-client-urls", client_url, "--listen-peer-urls", peer_url,
                              "--initial-advertise-peer-urls", peer_url, "--initial-cluster", "demo=" + peer_url},
                             dir_ + "/etcd.log", dir_ + "/etcd.log");
  processes_.add(e.pid);
  if (e.pid == 0 || !wait_until(20, [&] { return accepts(client); })) {
    std::fprintf(stderr, "ringbus-trucking-demo: etcd did not start:\n%s\n", tail_of(dir_ + "/etcd.log").c_str());
    return false;
  }
  // The nodes prove to each other they belong (cluster/README.md); a
  // mirror leaves the in-sync set after 2 s without catching up.
  std::ofstream(dir_ + "/cluster.secret") << "trucking-demo-" << ::getpid() << '\n';
  std::ofstream(dir_ + "/node.toml") << "replica_max_lag_ms = 2000\n";
  for (const char node : {'a', 'b'}) {
    if (!start_node(node, client_url)) return false;
  }
  for (const Topic& t : topics_) {
    std::string out;
    if (ringbus('a', {"topic", "create", t.name, "--partitions", std::to_string(t.partitions), "--replicas", "2",
                      "--min-insync", "1", "--ring-bytes", "2MiB", "--max-record-size", "64KiB", "--durability",
                      "page_cache", "--segment-bytes", "64MiB"},
                &out) != 0) {
      std::fprintf(stderr, "ringbus-trucking-demo: cannot create topic %s on node a: %s\n", t.name.c_str(), out.c_str());
      return false;
    }
  }
  if (!wait_until(30, [&] { return in_sync(); })) {
    std::fprintf(stderr, "ringbus-trucking-demo: node b did not get in sync with a in every topic within 30 s\n");
    return false;
  }
  return wait_leading('a', 30);
}

bool DemoCluster::start_node(char node, const std::string& etcd_url) {
  const std::string name(1, node);
  const Child c = spawn_path(ringbusd_path_,
                             {"--config", dir_ + "/node.toml", "--instance", instance(node), "--data-dir", dir_ + "/" + name,
                              "--node", name, "--listen", "127.0.0.1:0", "--etcd", etcd_url, "--cluster", instance_,
                              "--cluster-secret-file", dir_ + "/cluster.secret", "--no-metrics"},
                             dir_ + "/node-" + name + ".log", dir_ + "/node-" + name + ".log");
  processes_.add(c.pid);
  node_pid_[node - 'a'] = c.pid;
  if (c.pid == 0 || !wait_until(30, [&] { return ringbus(node, {"cluster", "status"}) == 0; })) {
    std::fprintf(stderr, "ringbus-trucking-demo: node %c did not start:\n%s\n", node,
                 tail_of(dir_ + "/node-" + name + ".log").c_str());
    return false;
  }
  return true;
}

void DemoCluster::kill(char node) {
  pid_t& pid = node_pid_[node - 'a'];
  if (pid == 0) return;
  processes_.kill(pid);
  pid = 0;
}

int DemoCluster::ringbus(char node, std::vector<std::string> args, std::string* out) const {
  args.insert(args.begin(), {"--instance", instance(node)});
  const std::string file = dir_ + "/ringbus-cli.out";
  const Child c = spawn_path(ringbus_path_, std::move(args), file, file);
  const int code = c.pid == 0 ? -1 : wait_exit(c.pid, 30'000);
  if (out != nullptr) *out = read_all(file);
  return code;
}

bool DemoCluster::in_sync() const {
  std::string out;
  if (ringbus('a', {"cluster", "status", "--json"}, &out) != 0) return false;
  const nlohmann::json status = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (!status.is_object() || !status.contains("topics")) return false;
  std::size_t ready = 0;
  for (const nlohmann::json& t : status["topics"]) {
    if (t.value("leader", "") == "a" && t.contains("isr") && t["isr"].size() == 2) ++ready;
  }
  return ready == topics_.size();
}

bool DemoCluster::wait_leading(char node, double timeout_s) const {
  return wait_until(timeout_s, [&] {
    for (const Topic& t : topics_) {
      auto info = describe_topic(instance(node), t.name);
      if (!info || info->mirror) return false;
    }
    return true;
  });
}

}  // namespace ringbus::trucking
