// Small helpers both benchmark runners use: the clock, pinning, the machine's
// description, medians and the formatting of ratio lines.
#pragma once

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace ringbus::bench {

inline std::int64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO on this machine (clocksource tsc)
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

// Waiting for the other side: pause-spin while each side has its own core;
// yield after a while when more threads than cores share them (then spinning
// only burns the time slice the other side needs).
class Backoff {
 public:
  explicit Backoff(bool yield_when_idle) : yield_(yield_when_idle) {}
  void reset() noexcept { spins_ = 0; }
  void wait() noexcept {
    if (yield_ && ++spins_ > 64) {
      sched_yield();
    } else {
      cpu_relax();
    }
  }

 private:
  bool yield_;
  std::uint32_t spins_ = 0;
};

// Keeps the compiler from dropping a copy whose result nobody reads.
inline void escape(const void* p) noexcept { asm volatile("" : : "g"(p) : "memory"); }

// Pins the calling thread (for a forked child: the whole process).
inline bool pin_to_cpu(int cpu) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

inline std::string read_first_line(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

inline std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "?";
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The q-quantile (0..1) of samples, nearest rank.
inline double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

inline std::string ratio_str(double r) { return fmt(r >= 10 ? "%.1fx" : "%.2fx", r); }

// "per-run 0.91x..0.97x" of ratios taken within each repetition.
inline std::string per_run(const std::vector<double>& ratios) {
  if (ratios.empty()) return "per-run -";
  return "per-run " + ratio_str(*std::min_element(ratios.begin(), ratios.end())) + ".." +
         ratio_str(*std::max_element(ratios.begin(), ratios.end()));
}

// "goal >= 0.90x: met"
inline std::string goal_str(double ratio, double goal) {
  return "goal >= " + fmt(goal >= 1 ? "%.0fx" : "%.2fx", goal) + ": " + (ratio >= goal ? "met" : "MISSED");
}

}  // namespace ringbus::bench
