// ringbus-truck-dashboard: the live view. A member of the publish-subscribe
// group "dashboard" on trucking_driver_stats and trucking_pipeline; redraws
// in place (or, when stdout is not a terminal, prints a plain frame every few
// seconds): records/s per topic and consumer lag (read from the topics' and
// groups' shared memory, no broker round trip), the analytics job's end-to-
// end latency, and the drivers with the most violations.
//
// On exit it prints how many records it received from each topic.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
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

constexpr const char* kProgram = "ringbus-truck-dashboard";

struct Options {
  std::string instance = default_instance();
  std::string group = "dashboard";
  double refresh = 0.5;
  std::size_t rows = 12;
  double reconnect_timeout = 30;
  std::string received;  // directory for received-<program>-<pid>.csv (the demo's check)
};

std::string lag(const std::string& instance, const char* topic, const char* group) {
  const auto n = group_lag(instance, topic, group);
  return n ? std::to_string(*n) : "-";
}

class Dashboard {
 public:
  explicit Dashboard(const Options& o) : o_(o), tty_(::isatty(STDOUT_FILENO) == 1), received_(o.received, "dashboard") {}

  int run() {
    if (!connect()) return 1;
    std::int64_t next_draw = steady_ms();
    for (;;) {
      const PollResult a = stats_->poll([&](const Record& r) { on_stats(r); }, 4096);
      const PollResult b = pipeline_->poll([&](const Record& r) { on_pipeline(r); }, 4096);
      if (a.status == PollStatus::topic_deleted || b.status == PollStatus::topic_deleted) {
        stats_.reset();
        pipeline_.reset();
        if (!connect()) return 1;
        continue;
      }
      if (steady_ms() >= next_draw) {
        draw();
        next_draw = steady_ms() + static_cast<std::int64_t>((tty_ ? o_.refresh : 5.0) * 1000);
      }
      if (stop_requested()) {
        if (a.records + b.records == 0) break;
        continue;
      }
      if (a.records + b.records == 0) (void)stats_->wait(std::chrono::milliseconds(50));
    }
    (void)stats_->commit(true);
    (void)pipeline_->commit(true);
    if (!received_.flush()) {
      std::fprintf(stderr, "%s: cannot write %s\n", kProgram, received_.path().c_str());
      return 1;
    }
    fmt::print("truck-dashboard: {} driver stats records, {} pipeline records received\n", stats_records_,
               pipeline_records_);
    return 0;
  }

 private:
  bool connect() {
    GroupOptions g;
    g.settings.start = StartPosition::Kind::earliest;
    stats_ = join_group(kProgram, o_.instance, kDriverStatsTopic, o_.group, g, o_.reconnect_timeout);
    pipeline_ = join_group(kProgram, o_.instance, kPipelineTopic, o_.group, g, o_.reconnect_timeout);
    return stats_ && pipeline_;
  }

  void on_stats(const Record& r) {
    ++stats_records_;
    received_.add(kDriverStatsTopic, r);
    auto s = parse_driver_stats(r.value);
    if (s) drivers_[s->driver_id] = std::move(s.value());
  }

  void on_pipeline(const Record& r) {
    ++pipeline_records_;
    received_.add(kPipelineTopic, r);
    auto p = parse_pipeline_stats(r.value);
    if (p) pipeline_stats_ = p.value();
  }

  void draw() {
    const std::int64_t now = steady_ms();
    const double s = last_draw_ == 0 ? 1 : static_cast<double>(now - last_draw_) / 1000;
    std::string out;
    if (tty_) out += "\x1b[H\x1b[2J";  // home, clear: redraw in place
    out += fmt::format("ringbus trucking pipeline (instance {})\n\n", o_.instance);
    out += fmt::format("{:<24} {:>12} {:>10}   {}\n", "topic", "records", "per s", "lag (group)");
    const char* topics[] = {kTruckTopic, kTrafficTopic, kDriverStatsTopic, kPipelineTopic};
    for (std::size_t i = 0; i < std::size(topics); ++i) {
      const std::uint64_t end = topic_end(o_.instance, topics[i]);
      const double rate = last_draw_ == 0 ? 0 : static_cast<double>(end - std::min(end, last_end_[i])) / s;
      last_end_[i] = end;
      std::string lags;
      if (i < 2) lags = lag(o_.instance, topics[i], "analytics") + " (analytics)";
      if (i == 0) lags += "  " + lag(o_.instance, topics[i], "alerts") + " (alerts)";
      if (i >= 2) lags = lag(o_.instance, topics[i], o_.group.c_str()) + " (" + o_.group + ")";
      out += fmt::format("{:<24} {:>12} {:>10.0f}   {}\n", topics[i], end, rate, lags);
    }
    last_draw_ = now;
    const PipelineStats& p = pipeline_stats_;
    out += fmt::format("\nanalytics: {} truck events ({:.0f}/s), {} traffic events, {} duplicates dropped; "
                       "end-to-end latency p50 {:.0f} us, p99 {:.0f} us, max {:.0f} us\n\n",
                       p.truck_events, p.truck_per_second, p.traffic_events, p.duplicates, p.latency_p50_us,
                       p.latency_p99_us, p.latency_max_us);
    std::vector<const DriverStats*> rows;
    for (const auto& kv : drivers_) rows.push_back(&kv.second);
    std::sort(rows.begin(), rows.end(), [](const DriverStats* a, const DriverStats* b) {
      return a->violations_per_1000() != b->violations_per_1000() ? a->violations_per_1000() > b->violations_per_1000()
                                                                  : a->driver_id < b->driver_id;
    });
    out += fmt::format("{:>6} {:<20} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8}   {}\n", "driver", "name", "events", "km/h",
                       "viol/1000", "low", "medium", "high", "(violations/1000 by congestion)");
    for (std::size_t i = 0; i < rows.size() && i < o_.rows; ++i) {
      const DriverStats& d = *rows[i];
      out += fmt::format("{:>6} {:<20} {:>8} {:>7.1f} {:>9.1f} {:>8.1f} {:>8.1f} {:>8.1f}\n", d.driver_id, d.driver_name,
                         d.events, d.average_speed(), d.violations_per_1000(), d.band_rate(0), d.band_rate(1),
                         d.band_rate(2));
    }
    if (rows.size() > o_.rows) out += fmt::format("... and {} more drivers\n", rows.size() - o_.rows);
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
  }

  const Options& o_;
  bool tty_;
  ReceivedRecords received_;
  std::optional<GroupConsumer> stats_;
  std::optional<GroupConsumer> pipeline_;
  std::map<std::uint32_t, DriverStats> drivers_;
  PipelineStats pipeline_stats_;
  std::uint64_t stats_records_ = 0;
  std::uint64_t pipeline_records_ = 0;
  std::int64_t last_draw_ = 0;
  std::uint64_t last_end_[4] = {};
};

}  // namespace
}  // namespace ringbus::trucking

int main(int argc, char** argv) {
  using namespace ringbus::trucking;
  Options o;
  CLI::App app{"ringbus-truck-dashboard: the trucking pipeline's live view (README, \"The trucking pipeline\")"};
  app.footer("Runs until Ctrl-C or SIGTERM. Example:\n  ringbus-truck-dashboard --rows 20");
  app.add_option("--instance", o.instance, "the broker's instance (default $RINGBUS_INSTANCE or \"default\")");
  app.add_option("--group", o.group, "the consumer group")->capture_default_str();
  app.add_option("--refresh", o.refresh, "seconds between redraws on a terminal")->check(CLI::Range(0.05, 60.0))->capture_default_str();
  app.add_option("--rows", o.rows, "drivers shown (most violations per 1,000 events first)")->capture_default_str();
  app.add_option("--reconnect-timeout", o.reconnect_timeout, "seconds to wait for a broker that went away")->capture_default_str();
  app.add_option("--received", o.received, "record what was received (topic, partition, offset, hash) in DIR/received-dashboard-<pid>.csv")
      ->check(CLI::ExistingDirectory);
  CLI11_PARSE(app, argc, argv);
  install_stop_handlers();
  Dashboard d(o);
  return d.run();
}
