// What the trucking programs share to run as processes: clocks, Ctrl-C and
// SIGTERM handling, connecting again after the broker restarted, and the
// figures they read from shared memory.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>

#include "ringbus/group.h"
#include "ringbus/producer.h"

namespace ringbus::trucking {

std::int64_t steady_ms() noexcept;
std::int64_t realtime_ms() noexcept;
std::int64_t realtime_ns() noexcept;  // as record timestamps
void sleep_until_ms(std::int64_t steady_deadline_ms);

// SIGINT and SIGTERM set a flag the programs' loops look at.
void install_stop_handlers();
bool stop_requested() noexcept;

// True if a retry loop should stop on `e`: waiting cures neither a bad name,
// nor a group of the other mode, nor another layout version (the rest, no
// such topic yet or files being recreated, a restarting broker does); also
// once `deadline_ms` (steady) has passed or a stop was requested.
bool give_up(const Error& e, std::int64_t deadline_ms) noexcept;

// Calls `attempt` (which returns a Result) every 100 ms until it works, for
// up to timeout_s (0: once): the broker may be restarting. Prints
// "<program>: cannot <what>: <error>" and returns nullopt if it gives up.
template <class F>
auto retry(const std::string& program, const std::string& what, double timeout_s, F attempt)
    -> std::optional<std::remove_reference_t<decltype(attempt().value())>> {
  const std::int64_t deadline = steady_ms() + static_cast<std::int64_t>(timeout_s * 1000);
  for (;;) {
    auto r = attempt();
    if (r) return std::move(r.value());
    if (give_up(r.error(), deadline)) {
      std::fprintf(stderr, "%s: cannot %s: %s\n", program.c_str(), what.c_str(), r.error().message.c_str());
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// retry() of GroupConsumer::join and Producer::open.
std::optional<GroupConsumer> join_group(const std::string& program, const std::string& instance, const std::string& topic,
                                        const std::string& group, const GroupOptions& options, double timeout_s);
std::optional<Producer> open_producer(const std::string& program, const std::string& instance, const std::string& topic,
                                      double timeout_s);

// What a consumer received, for the demo's check that every record it was
// given is in the log at that offset (a broker that gave one offset to two
// records fails it): one line "topic,partition,offset,hash" per record, the
// hash being XXH64 of the value, in <dir>/received-<program>-<pid>.csv.
// Without a directory it records nothing.
class ReceivedRecords {
 public:
  ReceivedRecords(const std::string& dir, const char* program);
  void add(const char* topic, const Record& r);
  // Before acknowledging or committing what was added. False: the file
  // cannot be written (the caller says so and stops).
  bool flush();
  const std::string& path() const noexcept { return path_; }
  static std::uint64_t hash(std::string_view value) noexcept;

 private:
  std::string path_;
  std::ofstream file_;
};

// From the instance's shared memory (no broker round trip): the sum of a
// topic's partitions' end offsets (0 if it does not exist), and of a group's
// lag (nullopt if the group does not exist).
std::uint64_t topic_end(const std::string& instance, const char* topic);
std::optional<std::uint64_t> group_lag(const std::string& instance, const char* topic, const char* group);

}  // namespace ringbus::trucking
