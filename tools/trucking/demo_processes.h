// The trucking demo's child processes: starting a program with its output
// in a file, waiting for its exit with a deadline, and a set that is
// stopped on any way out, so that nothing is left holding an instance.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ringbus::trucking {

struct Child {
  std::string name;
  pid_t pid = 0;
};

// The directory of this program's binary (the demo starts its siblings).
std::string program_dir();

// Starts the program at `path` with `args`, in a process group of its own
// (Ctrl-C at the terminal is for the demo, which stops things in order);
// its stdout goes to `stdout_file` unless that is empty (then the
// terminal's), its stderr to `stderr_file` likewise (appended to, or with
// stdout when they are the same). pid 0 if it could not.
Child spawn_path(const std::string& path, std::vector<std::string> args, const std::string& stdout_file,
                 const std::string& stderr_file = "");
// spawn_path() of a sibling of this binary.
Child spawn(const std::string& program, std::vector<std::string> args, const std::string& stdout_file);

// Its exit code (128 + signal if killed; -1 if it cannot be waited for);
// SIGKILLed once `timeout_ms` passes.
int wait_exit(pid_t pid, std::int64_t timeout_ms);

// Every process the demo started and has not reaped: on any way out they
// get SIGTERM, then SIGKILL.
struct Processes {
  std::vector<pid_t> pids;
  Processes() = default;
  Processes(const Processes&) = delete;
  Processes& operator=(const Processes&) = delete;
  void add(pid_t pid) {
    if (pid > 0) pids.push_back(pid);
  }
  int reap(pid_t pid, std::int64_t timeout_ms);
  // SIGKILL, then reap.
  void kill(pid_t pid);
  ~Processes();
};

}  // namespace ringbus::trucking
