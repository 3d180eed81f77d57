// Runs a shell command for a test, and returns what it printed on standard
// output (a test adds 2>&1 for the rest), and its exit status.
#pragma once

#include <cstdio>
#include <string>

namespace ringbus::test {

inline std::string run_command(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) {
    if (status != nullptr) *status = -1;
    return out;
  }
  char buf[256];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int s = ::pclose(p);
  if (status != nullptr) *status = s;
  return out;
}

}  // namespace ringbus::test
