// Child processes for the multi-process tests: fork a function, collect
// exit codes with a deadline, kill stragglers so a hung child never hangs CI.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace ringbus::test {

// Runs fn in a child process; the child exits with fn's return value.
inline pid_t spawn(const std::function<int()>& fn) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 99;
    try {
      code = fn();
    } catch (...) {
      code = 98;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

// Waits for the children; any still running at the deadline is killed and
// reported. Returns "" if every child exited 0, else what went wrong.
inline std::string wait_all(const std::vector<pid_t>& pids, std::chrono::seconds limit) {
  std::string problems;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::vector<bool> done(pids.size(), false);
  std::size_t remaining = pids.size();
  while (remaining > 0) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (done[i]) continue;
      int status = 0;
      const pid_t r = ::waitpid(pids[i], &status, WNOHANG);
      if (r == 0) continue;
      done[i] = true;
      --remaining;
      if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        problems += "child " + std::to_string(pids[i]) + " " +
                    (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                         : "exited " + std::to_string(WEXITSTATUS(status))) + "; ";
      }
    }
    if (remaining > 0 && std::chrono::steady_clock::now() > deadline) {
      for (std::size_t i = 0; i < pids.size(); ++i) {
        if (!done[i]) {
          ::kill(pids[i], SIGKILL);
          ::waitpid(pids[i], nullptr, 0);
          problems += "child " + std::to_string(pids[i]) + " hung and was killed; ";
        }
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return problems;
}

}  // namespace ringbus::test
