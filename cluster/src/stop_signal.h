// A thread's stop request: a flag, and an eventfd the thread's poll()
// watches, so that request() wakes it at once instead of at its next
// timeout. The replication server and the mirror follower each have one.
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

}  // namespace ringbus::cluster
