// The control server under many concurrent clients (threads), with clients
// that vanish mid-request: every well-formed request gets its own answer,
// and stop() returns while connections are open. Runs under ThreadSanitizer.
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "control_socket.h"

namespace ringbus::control {
namespace {

class ControlServerStress : public ::testing::Test {
 protected:
  void SetUp() override {
    instance_ = "ctlstress-" + std::to_string(::getpid());
    std::filesystem::create_directories(instance_directory(instance_));
  }
  void TearDown() override { std::filesystem::remove_all(instance_directory(instance_)); }
  std::string instance_;
};

TEST_F(ControlServerStress, ManyClientsEachGetTheirOwnAnswers) {
  std::atomic<std::uint64_t> handled{0};
  auto server = ControlServer::start(socket_path(instance_), [&](const Json& req) {
    handled.fetch_add(1, std::memory_order_relaxed);
    if (req["op"] == "throw") throw std::runtime_error("boom");
    return Json{{"ok", true}, {"echo", req.value("n", -1)}};
  });
  ASSERT_TRUE(server) << server.error().message;
  constexpr int kClients = 8;
  constexpr int kRequests = 300;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      auto c = ControlClient::connect(instance_);
      if (!c) {
        failures.fetch_add(1);
        return;
      }
      for (int i = 0; i < kRequests; ++i) {
        const int n = t * kRequests + i;
        if (i % 50 == 7) {
          // Garbage and a throwing handler are answered with errors; the connection stays.
          auto g = c->call_raw("{{{");
          if (!g || g.value()["ok"] != false) failures.fetch_add(1);
          auto th = c->call("throw");
          if (th || th.error().message.find("boom") == std::string::npos) failures.fetch_add(1);
        }
        auto r = c->call("echo", Json{{"n", n}});
        if (!r || r.value()["echo"] != n) failures.fetch_add(1);
      }
    });
  }
  // Clients that connect, send half a request and vanish.
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto c = ControlClient::connect(instance_);
        if (!c) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(handled.load(), static_cast<std::uint64_t>(kClients * kRequests));
  // stop() with a connection still open.
  auto idle = ControlClient::connect(instance_);
  ASSERT_TRUE(idle);
  server.value()->stop();
  EXPECT_FALSE(std::filesystem::exists(socket_path(instance_)));
  auto after = idle->call("echo");
  EXPECT_FALSE(after);
}

}  // namespace
}  // namespace ringbus::control
