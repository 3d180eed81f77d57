// ringbus-truck-alerts: one worker of the alerting pool. A member of the
// queue group "alerts" on trucking_data_truck: the members share the events
// record by record, and each violation is handled by one of them. Handling
// here is appending "truck_id,tick,event_type,deliveries" to this worker's
// file (--out DIR: DIR/alerts-<pid>.csv), and only then acknowledging: a
// worker that dies before has its records redelivered to the others.
//
// After a broker crash a violation can come twice: the simulator publishes
// again what the broker had not acknowledged, and the group may deliver
// again what was acknowledged but not yet durably committed (at least once).
// Those show as lines with the same truck and tick; the checks count them.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "ringbus/group.h"
#include "ringbus/topic.h"
#include "trucking_events.h"
#include "trucking_run.h"

namespace ringbus::trucking {
namespace {

constexpr const char* kProgram = "ringbus-truck-alerts";

struct Options {
  std::string instance = default_instance();
  std::string group = "alerts";
  std::string out = ".";
  double reconnect_timeout = 30;
  std::string received;  // directory for received-<program>-<pid>.csv (the demo's check)
};

int run(const Options& o) {
  const std::string path = o.out + "/alerts-" + std::to_string(::getpid()) + ".csv";
  std::ofstream file(path, std::ios::app);
  if (!file) {
    std::fprintf(stderr, "%s: cannot write %s\n", kProgram, path.c_str());
    return 1;
  }
  ReceivedRecords received(o.received, "alerts");
  GroupOptions g;
  g.settings.mode = GroupMode::queue;
  g.settings.start = StartPosition::Kind::earliest;
  g.auto_ack = false;
  std::optional<GroupConsumer> member = join_group(kProgram, o.instance, kTruckTopic, o.group, g, o.reconnect_timeout);
  if (!member) return 1;
  std::uint64_t records = 0;
  std::uint64_t handled = 0;
  std::uint64_t bad = 0;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> to_ack;
  int idle_polls = 0;
  for (;;) {
    to_ack.clear();
    const PollResult r = member->poll([&](const Record& rec) {
      ++records;
      to_ack.emplace_back(rec.partition, rec.offset);
      received.add(kTruckTopic, rec);
      auto e = parse_truck_event(rec.value);
      if (!e) {
        if (bad++ < 10) std::fprintf(stderr, "%s: skipped a malformed record: %s\n", kProgram, e.error().message.c_str());
        return;
      }
      if (!is_violation(e->type)) return;
      file << e->truck_id << ',' << e->tick << ',' << to_string(e->type) << ',' << rec.deliveries << '\n';
      ++handled;
    });
    if (r.status == PollStatus::topic_deleted) {
      std::fprintf(stderr, "%s: the broker went away; joining again\n", kProgram);
      member.reset();
      member = join_group(kProgram, o.instance, kTruckTopic, o.group, g, o.reconnect_timeout);
      if (!member) return 1;
      continue;
    }
    // Handled means written: flush, then acknowledge. A file that cannot be
    // written acknowledges nothing (the records go to the other workers).
    if (!to_ack.empty()) {
      if (!file.flush() || !received.flush()) {
        std::fprintf(stderr, "%s: cannot write %s; leaving the group\n", kProgram, file ? received.path().c_str() : path.c_str());
        return 1;
      }
      for (const auto& [partition, offset] : to_ack) (void)member->ack(partition, offset);
    }
    if (stop_requested()) {
      idle_polls = r.records == 0 ? idle_polls + 1 : 0;
      if (idle_polls >= 2) break;
      if (r.records == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    if (r.records == 0) (void)member->wait(std::chrono::milliseconds(50));
  }
  (void)member->commit(true);
  member->leave();
  fmt::print("truck-alerts[{}]: {} records, {} violations handled ({})\n", ::getpid(), records, handled, path);
  return 0;
}

}  // namespace
}  // namespace ringbus::trucking

int main(int argc, char** argv) {
  using namespace ringbus::trucking;
  Options o;
  CLI::App app{"ringbus-truck-alerts: a worker of the alerting pool, a queue group on trucking_data_truck (README, \"The trucking pipeline\")"};
  app.footer(
      "Start several: the group's members share the records, each violation goes to one of them.\n"
      "Runs until Ctrl-C or SIGTERM, then finishes what it holds and exits. Example:\n"
      "  for i in 1 2 3; do ringbus-truck-alerts --out /tmp/alerts & done");
  app.add_option("--instance", o.instance, "the broker's instance (default $RINGBUS_INSTANCE or \"default\")");
  app.add_option("--group", o.group, "the queue group")->capture_default_str();
  app.add_option("--out", o.out, "directory for this worker's alerts-<pid>.csv")->check(CLI::ExistingDirectory)->capture_default_str();
  app.add_option("--reconnect-timeout", o.reconnect_timeout, "seconds to wait for a broker that went away")->capture_default_str();
  app.add_option("--received", o.received, "record what was received (topic, partition, offset, hash) in DIR/received-alerts-<pid>.csv")
      ->check(CLI::ExistingDirectory);
  CLI11_PARSE(app, argc, argv);
  install_stop_handlers();
  return run(o);
}
