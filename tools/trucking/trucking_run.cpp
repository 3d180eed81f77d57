#include "trucking_run.h"

#include <csignal>
#include <cstdio>
#include <thread>

namespace ringbus::trucking {

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

std::int64_t steady_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::int64_t realtime_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t realtime_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void sleep_until_ms(std::int64_t deadline) {
  const std::int64_t left = deadline - steady_ms();
  if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(left));
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() noexcept { return g_stop != 0; }

std::optional<GroupConsumer> join_group(const std::string& program, const std::string& instance, const std::string& topic,
                                        const std::string& group, const GroupOptions& options, double timeout_s) {
  const std::int64_t deadline = steady_ms() + static_cast<std::int64_t>(timeout_s * 1000);
  for (;;) {
    auto m = GroupConsumer::join(instance, topic, group, options);
    if (m) return std::move(m.value());
    // A bad name, a group of the other mode, another layout version: waiting
    // cures none of these. The rest (no such topic yet, files being
    // recreated) a restarting broker does.
    const bool hopeless = m.error().code == Errc::invalid_argument || m.error().code == Errc::version_mismatch;
    if (hopeless || steady_ms() > deadline || stop_requested()) {
      std::fprintf(stderr, "%s: cannot join group '%s' of topic '%s': %s\n", program.c_str(), group.c_str(), topic.c_str(),
                   m.error().message.c_str());
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace ringbus::trucking
