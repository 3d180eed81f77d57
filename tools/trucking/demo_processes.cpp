#include "demo_processes.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "trucking_run.h"

extern char** environ;

namespace ringbus::trucking {

std::string program_dir() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string();
}

Child spawn_path(const std::string& path, std::vector<std::string> args, const std::string& stdout_file,
                 const std::string& stderr_file) {
  args.insert(args.begin(), path);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!stdout_file.empty()) {
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  if (!stderr_file.empty() && stderr_file == stdout_file) {
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  } else if (!stderr_file.empty()) {
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = 0;
  if (posix_spawn(&pid, path.c_str(), &fa, &attr, argv.data(), environ) != 0) pid = 0;
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  return Child{std::filesystem::path(path).filename().string(), pid};
}

Child spawn(const std::string& program, std::vector<std::string> args, const std::string& stdout_file) {
  return spawn_path(program_dir() + "/" + program, std::move(args), stdout_file);
}

int wait_exit(pid_t pid, std::int64_t timeout_ms) {
  const std::int64_t deadline = steady_ms() + timeout_ms;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -1;
    if (steady_ms() > deadline) {
      std::fprintf(stderr, "ringbus-trucking-demo: pid %d did not exit in time; killing it\n", static_cast<int>(pid));
      ::kill(pid, SIGKILL);
      if (::waitpid(pid, &status, 0) != pid) return -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int Processes::reap(pid_t pid, std::int64_t timeout_ms) {
  std::erase(pids, pid);
  return wait_exit(pid, timeout_ms);
}

void Processes::kill(pid_t pid) {
  ::kill(pid, SIGKILL);
  (void)reap(pid, 10'000);
}

Processes::~Processes() {
  for (const pid_t p : pids) ::kill(p, SIGTERM);
  for (const pid_t p : pids) (void)wait_exit(p, 5'000);
}

}  // namespace ringbus::trucking
