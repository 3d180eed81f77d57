// A real etcd for the cluster tests: Debian's etcd-server, started on free
// ports of an address of this host (loopback unless asked) with a data
// directory of its own, stopped (and its
// directory removed) when the object goes. tools/check installs the package;
// without it, start() says so.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "etcd_client.h"

namespace ringbus::test {

class EtcdProcess {
 public:
  // Starts etcd and waits until it answers; nullptr and `error` if it cannot.
  static std::unique_ptr<EtcdProcess> start(std::string* error, const std::string& host = "127.0.0.1") {
    std::string why;
    for (int attempt = 0; attempt < 3; ++attempt) {  // a port taken between pick and bind: again
      auto p = std::unique_ptr<EtcdProcess>(new EtcdProcess(host));
      if (p->launch(&why)) return p;
    }
    *error = why;
    return nullptr;
  }
  ~EtcdProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& endpoint() const { return endpoint_; }
  // SIGSTOP / SIGCONT: an etcd that is there but answers nobody. kill()
  // returns before etcd's threads have stopped (one on another core can still
  // answer a request), so wait until the whole process has: a child's group
  // stop is reported to waitpid(WUNTRACED) only once every thread took part.
  void pause() {
    ::kill(pid_, SIGSTOP);
    int status = 0;
    while (::waitpid(pid_, &status, WUNTRACED) < 0 && errno == EINTR) {
    }
  }
  void resume() {
    ::kill(pid_, SIGCONT);
    int status = 0;
    while (::waitpid(pid_, &status, WCONTINUED) < 0 && errno == EINTR) {
    }
  }

 private:
  explicit EtcdProcess(std::string host) : host_(std::move(host)) {}

  int free_port() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, host_.c_str(), &a.sin_addr);
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    ::close(fd);
    return port;
  }

  std::string log_tail() const {
    std::ifstream in(dir_ + "/etcd.log");
    std::stringstream s;
    s << in.rdbuf();
    const std::string all = s.str();
    return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
  }

  bool launch(std::string* why) {
    char tmpl[] = "/tmp/ringbus-etcd-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      *why = "mkdtemp failed";
      return false;
    }
    dir_ = tmpl;
    const int client = free_port(), peer = free_port();
    endpoint_ = "http://" + host_ + ":" + std::to_string(client);
    const std::string peer_url = "http://" + host_ + ":" + std::to_string(peer);
    const std::string data = dir_ + "/data", log = dir_ + "/etcd.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execlp("etcd", "etcd", "--name", "test", "--data-dir", data.c_str(), "--listen-client-urls",
               endpoint_.c_str(), "--advertise-client-urls", endpoint_.c_str(), "--listen-peer-urls",
               peer_url.c_str(), "--initial-advertise-peer-urls", peer_url.c_str(), "--initial-cluster",
               ("test=" + peer_url).c_str(), nullptr);
      ::_exit(127);
    }
    auto client_or = cluster::EtcdClient::create({{endpoint_}, std::chrono::milliseconds(500)});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        *why = WIFEXITED(status) && WEXITSTATUS(status) == 127
                   ? "etcd is not installed (Debian's etcd-server; tools/check installs it)"
                   : "etcd exited at start: " + log_tail();
        return false;
      }
      if ((*client_or)->get("ready").ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    *why = "etcd did not answer within 20 s: " + log_tail();
    return false;
  }

  const std::string host_;
  pid_t pid_ = -1;
  std::string dir_;
  std::string endpoint_;
};

// A suite whose tests share one etcd (started once per test process), each
// test under keys of its own (prefix()).
class EtcdSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { etcd_ = EtcdProcess::start(&why_); }
  static void TearDownTestSuite() { etcd_.reset(); }
  void SetUp() override { ASSERT_NE(etcd_, nullptr) << why_; }
  static std::string prefix() {
    return std::string("/test/") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
  }
  static inline std::unique_ptr<EtcdProcess> etcd_;
  static inline std::string why_;
};

}  // namespace ringbus::test
