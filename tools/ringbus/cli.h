// The ringbus command line: what its subcommands share (tools/README.md).
#pragma once

#include <atomic>
#include <chrono>
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "control_protocol.h"
#include "ringbus/consumer.h"
#include "ringbus/group.h"
#include "ringbus/result.h"

namespace ringbus::cli {

// Exit codes scripts can rely on (tools/README.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;     // the broker or the library refused, I/O failed
inline constexpr int kExitUsage = 2;     // bad command line
inline constexpr int kExitNotFound = 3;  // no broker running, unknown topic
inline constexpr int kExitTimeout = 4;   // consume --timeout: no record came for that long

struct Global {
  std::string instance;  // resolved: --instance, else $RINGBUS_INSTANCE, else "default"
  std::chrono::milliseconds timeout{10000};  // control requests
};

// Set by SIGINT/SIGTERM: long-running commands stop at the next record.
extern std::atomic<bool> g_stop;

// Prints "ringbus: <message>" and returns the exit code for the error.
inline int fail(const Error& e) {
  std::fprintf(stderr, "ringbus: %s\n", e.message.c_str());
  return e.code == Errc::not_found ? kExitNotFound : kExitError;
}

// Durations with a unit: 500ms, 10s, 5min, 2h, 7d -> milliseconds.
inline CLI::AsNumberWithUnit duration_units() {
  return CLI::AsNumberWithUnit(std::map<std::string, std::int64_t>{{"ms", 1},
                                                                   {"s", 1000},
                                                                   {"min", 60'000},
                                                                   {"h", 3'600'000},
                                                                   {"d", 86'400'000}},
                               static_cast<CLI::AsNumberWithUnit::Options>(CLI::AsNumberWithUnit::CASE_SENSITIVE | CLI::AsNumberWithUnit::UNIT_REQUIRED),
                               "DURATION");
}

// Sends one control request to the broker; on failure prints the error,
// sets code and returns false.
bool call(const Global& g, std::string_view op, control::Json fields, control::Json& out, int& code);

// A source of records for consume and perf consume: a plain consumer, or a
// member of a group.
struct Source {
  // A plain consumer starting at co.start when `group` is empty, else a
  // member of `group` (a queue if `queue`); a group that does not exist yet
  // starts at earliest if co.start says so, else at latest.
  static Result<Source> open(const Global& g, const std::string& topic, const std::string& group, bool queue,
                             const ConsumerOptions& co, bool auto_ack);
  std::optional<Consumer> plain;
  std::optional<GroupConsumer> member;
  template <class F>
  PollResult poll(F&& f, std::size_t max) {
    return plain ? plain->poll(f, max) : member->poll(f, max);
  }
  WaitStatus wait(std::chrono::milliseconds t) { return plain ? plain->wait(t) : member->wait(t); }
};

// Each subcommand registers its options and a callback that runs it.
// `code` receives the exit code.
void add_topic_commands(CLI::App& app, const Global& g, int& code);
void add_produce_command(CLI::App& app, const Global& g, int& code);
void add_consume_command(CLI::App& app, const Global& g, int& code);
void add_stats_command(CLI::App& app, const Global& g, int& code);
void add_group_commands(CLI::App& app, const Global& g, int& code);
void add_cluster_commands(CLI::App& app, const Global& g, int& code);

// A UTC time, 2026-11-25T10:00:00Z (optionally .mmm before the Z) or
// @UNIX_MILLISECONDS, in milliseconds since the epoch; nullopt if neither.
std::optional<std::int64_t> parse_time_ms(const std::string& s);
void add_log_commands(CLI::App& app, int& code);
void add_perf_commands(CLI::App& app, const Global& g, int& code);

}  // namespace ringbus::cli
