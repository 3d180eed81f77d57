// A TCP proxy between two parties of a cluster test, that the test can cut:
// while partitioned it forwards nothing either way and accepts no one (what
// is sent waits in the kernel's buffers, as behind a dropped link; it flows
// again when the partition heals). The tests' own fault injector: this
// machine's kernel has no netem.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "peer_link.h"

namespace ringbus::test {

class TcpProxy {
 public:
  // Listens on a free loopback port and forwards to `upstream` (host:port).
  explicit TcpProxy(std::string upstream) : upstream_(std::move(upstream)) {
    auto l = cluster::listen_on("127.0.0.1:0");
    if (!l) std::abort();
    listener_ = l.value();
    thread_ = std::thread([this] { run(); });
  }
  ~TcpProxy() {
    stopping_ = true;
    thread_.join();
    for (auto& p : pairs_) {
      ::close(p.a);
      ::close(p.b);
    }
    ::close(listener_.fd);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(listener_.port); }
  void partition(bool on) { partitioned_ = on; }

 private:
  struct Pair {
    int a, b;  // the accepted side, the upstream side
  };
  static bool pump(int from, int to) {
    char buf[64 << 10];
    const ssize_t n = ::recv(from, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    for (ssize_t at = 0; at < n;) {
      const ssize_t w = ::send(to, buf + at, static_cast<std::size_t>(n - at), MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          pollfd p{to, POLLOUT, 0};
          ::poll(&p, 1, 100);
          continue;
        }
        return false;
      }
      at += w;
    }
    return true;
  }
  void run() {
    while (!stopping_) {
      if (partitioned_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      std::vector<pollfd> fds{{listener_.fd, POLLIN, 0}};
      for (const auto& p : pairs_) {
        fds.push_back({p.a, POLLIN, 0});
        fds.push_back({p.b, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
      if (partitioned_) continue;
      if (fds[0].revents & POLLIN) {
        const int a = ::accept4(listener_.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (a >= 0) {
          auto up = cluster::dial(upstream_, std::chrono::milliseconds(2000));
          if (up) {
            const int b = ::dup(up.value()->fd());
            pairs_.push_back({a, b});
          } else {
            ::close(a);
          }
        }
      }
      for (std::size_t i = 0; i < pairs_.size();) {
        const short ra = fds.size() > 1 + 2 * i ? fds[1 + 2 * i].revents : 0;
        const short rb = fds.size() > 2 + 2 * i ? fds[2 + 2 * i].revents : 0;
        bool ok = true;
        if (ra) ok = pump(pairs_[i].a, pairs_[i].b);
        if (ok && rb) ok = pump(pairs_[i].b, pairs_[i].a);
        if (!ok) {
          ::close(pairs_[i].a);
          ::close(pairs_[i].b);
          pairs_.erase(pairs_.begin() + static_cast<std::ptrdiff_t>(i));
          fds.erase(fds.begin() + 1 + static_cast<std::ptrdiff_t>(2 * i), fds.begin() + 3 + static_cast<std::ptrdiff_t>(2 * i));
          continue;
        }
        ++i;
      }
    }
  }

  std::string upstream_;
  cluster::Listener listener_;
  std::vector<Pair> pairs_;  // the proxy's thread only
  std::atomic<bool> partitioned_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace ringbus::test
