// A thread's stop request: a flag, and an eventfd the thread's poll()
// watches, so that request() wakes it at once instead of at its next
// timeout. The replication server and the mirror follower each have one.
// And a plain wake-up of the same kind (the replication server's "the
// logs moved").
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace ringbus::cluster {

class StopSignal {
 public:
  StopSignal() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~StopSignal() {
    if (fd_ >= 0) ::close(fd_);
  }
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // Readable (POLLIN) once stop is requested.
  int fd() const noexcept { return fd_; }
  bool requested() const noexcept { return stopped_.load(std::memory_order_acquire); }
  void request() noexcept {
    stopped_.store(true, std::memory_order_release);
    const std::uint64_t one = 1;
    (void)!::write(fd_, &one, sizeof one);
  }

 private:
  int fd_;
  std::atomic<bool> stopped_{false};
};

class WakeSignal {
 public:
  WakeSignal() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~WakeSignal() {
    if (fd_ >= 0) ::close(fd_);
  }
  WakeSignal(const WakeSignal&) = delete;
  WakeSignal& operator=(const WakeSignal&) = delete;

  // Readable (POLLIN) from notify() until drain().
  int fd() const noexcept { return fd_; }
  void notify() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(fd_, &one, sizeof one);
  }
  void drain() noexcept {
    std::uint64_t n = 0;
    (void)!::read(fd_, &n, sizeof n);
  }

 private:
  int fd_;
};

}  // namespace ringbus::cluster
