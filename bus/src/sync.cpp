#include "sync.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <vector>

namespace ringbus::detail {

namespace {

timespec to_timespec(std::chrono::nanoseconds d) {
  const auto ns = d.count() < 0 ? 0 : d.count();
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                std::chrono::nanoseconds timeout) noexcept {
  // Not FUTEX_PRIVATE_FLAG: the word lives in a mapping shared by processes.
  timespec ts = to_timespec(timeout);
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wait_any(std::span<std::atomic<std::uint32_t>* const> words,
                    std::span<const std::uint32_t> expected,
                    std::chrono::nanoseconds timeout) noexcept {
  if (words.empty()) return;
  if (words.size() == 1) return futex_wait(words[0], expected[0], timeout);
#ifdef SYS_futex_waitv
  static std::atomic<bool> unsupported{false};
  if (!unsupported.load(std::memory_order_relaxed) && words.size() <= 128) {
    std::vector<futex_waitv> waiters(words.size());
    for (std::size_t i = 0; i < words.size(); ++i) {
      waiters[i] = futex_waitv{expected[i], reinterpret_cast<std::uintptr_t>(words[i]),
                               FUTEX_32, 0};
    }
    // futex_waitv takes an absolute CLOCK_MONOTONIC deadline.
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const std::int64_t now_ns = now.tv_sec * 1'000'000'000LL + now.tv_nsec;
    const std::int64_t deadline_ns = timeout.count() > INT64_MAX - now_ns ? INT64_MAX : now_ns + timeout.count();
    timespec deadline{static_cast<time_t>(deadline_ns / 1'000'000'000),
                      static_cast<long>(deadline_ns % 1'000'000'000)};
    const long rc = syscall(SYS_futex_waitv, waiters.data(), waiters.size(), 0, &deadline,
                            CLOCK_MONOTONIC);
    if (rc >= 0 || errno != ENOSYS) return;
    unsupported.store(true, std::memory_order_relaxed);
  }
#endif
  // Old kernel: wait on the first word for a short while; the caller loops
  // and re-checks every partition, so a wake-up elsewhere costs at most this.
  futex_wait(words[0], expected[0], std::min<std::chrono::nanoseconds>(timeout, std::chrono::milliseconds(1)));
}

void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

bool register_heavy_fence() noexcept {
  // Once per process (a registration lasts as long as the process).
  static const bool registered =
      syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
  return registered;
}

void heavy_fence() noexcept {
  // Fails only where no owner could register either (such owners fence
  // each commit): then there is nothing to order.
  (void)syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
}

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

bool process_is_dead(std::int32_t pid) noexcept {
  if (pid <= 0) return false;
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

bool lock_is_held(const char* path) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock fl{};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  const int rc = ::fcntl(fd, F_OFD_GETLK, &fl);
  ::close(fd);
  return rc == 0 && fl.l_type != F_UNLCK;
}

}  // namespace ringbus::detail
