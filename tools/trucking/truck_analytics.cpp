// ringbus-truck-analytics: the analytics job. A member of the publish-
// subscribe group "analytics" on trucking_data_truck and on
// trucking_data_traffic; joins each truck event with its route's congestion
// at the event's tick, keeps per-driver statistics (trucking_events.h,
// DriverStats), and every interval publishes the drivers that changed to
// trucking_driver_stats and its own figures (rates, end-to-end latency) to
// trucking_pipeline.
//
// Exactly the produced events count: copies republished after a broker crash
// are dropped by (truck, tick) (a truck's events come in tick order on one
// partition). A truck event whose congestion has not arrived yet waits for it.
// On SIGTERM it reads what is left, publishes everything once more, commits
// durably and exits.
//
// Run one member per group: the join and the duplicate filter are state of
// this process (a second member would hold some routes' congestion while the
// other waits for it). A job started where the group has committed
// positions (restarted, or on a new leader's host after a failover) first
// rebuilds that state from the topics' earliest records up to them, then
// goes on from them as the group's member.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "ringbus/consumer.h"
#include "ringbus/group.h"
#include "ringbus/producer.h"
#include "ringbus/topic.h"
#include "trucking_events.h"
#include "trucking_run.h"

namespace ringbus::trucking {
namespace {

constexpr const char* kProgram = "ringbus-truck-analytics";
constexpr std::uint64_t kMaxTickJump = 1 << 20;

struct Options {
  std::string instance = default_instance();
  std::string group = "analytics";
  double interval = 1;
  double reconnect_timeout = 30;
  std::string received;  // directory for received-<program>-<pid>.csv (the demo's check)
};

class Analytics {
 public:
  explicit Analytics(const Options& o) : o_(o), received_(o.received, "analytics") {}

  int run() {
    if (!rebuild()) return 1;
    if (!connect()) return 1;
    std::int64_t next_publish = steady_ms() + interval_ms();
    int idle_polls = 0;
    for (;;) {
      const std::size_t got = poll_once();
      if (got == SIZE_MAX) {
        if (!reconnect()) return 1;
        continue;
      }
      if (steady_ms() >= next_publish) {
        publish(false);
        next_publish = steady_ms() + interval_ms();
      }
      if (stop_requested()) {
        // Drain: stop once two polls in a row found nothing.
        idle_polls = got == 0 ? idle_polls + 1 : 0;
        if (idle_polls >= 2) break;
        if (got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      if (got == 0) (void)truck_->wait(std::chrono::milliseconds(5));
    }
    publish(true);
    const bool committed = truck_->commit(true).ok() && traffic_->commit(true).ok();
    std::size_t waiting = 0;
    for (const auto& w : waiting_) waiting += w.second.size();
    fmt::print("truck-analytics: {} truck events and {} traffic events applied, {} duplicates dropped, {} drivers, {} "
               "waiting for congestion\n",
               truck_events_, traffic_events_, duplicates_, drivers_.size(), waiting);
    if (!received_.flush()) {
      std::fprintf(stderr, "%s: cannot write %s\n", kProgram, received_.path().c_str());
      return 1;
    }
    if (!committed || unsent_ != 0) {
      std::fprintf(stderr, "%s: %s%llu records not published\n", kProgram,
                   committed ? "" : "the final positions were not committed durably; ",
                   static_cast<unsigned long long>(unsent_));
      return 1;
    }
    return 0;
  }

 private:
  std::int64_t interval_ms() const { return static_cast<std::int64_t>(o_.interval * 1000); }

  bool connect() {
    GroupOptions g;
    g.settings.start = StartPosition::Kind::earliest;
    // Each in turn: the first that cannot be had ends it (with its error).
    truck_ = join_group(kProgram, o_.instance, kTruckTopic, o_.group, g, o_.reconnect_timeout);
    if (!truck_) return false;
    traffic_ = join_group(kProgram, o_.instance, kTrafficTopic, o_.group, g, o_.reconnect_timeout);
    if (!traffic_) return false;
    stats_out_ = open_producer(kProgram, o_.instance, kDriverStatsTopic, o_.reconnect_timeout);
    if (!stats_out_) return false;
    pipeline_out_ = open_producer(kProgram, o_.instance, kPipelineTopic, o_.reconnect_timeout);
    return pipeline_out_.has_value();
  }

  // The statistics of what the group committed before this process
  // joined: each topic read from its earliest record up to the group's
  // committed position in each partition (traffic first, for the join).
  bool rebuild() {
    rebuilding_ = true;
    std::uint64_t applied = 0;
    for (const char* topic : {kTrafficTopic, kTruckTopic}) {
      auto info = describe_group(o_.instance, topic, o_.group);
      if (!info) {
        if (info.error().code == Errc::not_found) continue;  // a new group (or topic): nothing to rebuild
        std::fprintf(stderr, "%s: cannot read group '%s' of %s: %s\n", kProgram, o_.group.c_str(), topic,
                     info.error().message.c_str());
        return false;
      }
      std::map<std::uint32_t, std::uint64_t> left;  // partition -> its committed position, while below it
      for (const GroupPartitionInfo& p : info->partitions)
        if (p.committed > 0) left[p.partition] = p.committed;
      if (left.empty()) continue;
      ConsumerOptions co;
      co.start = StartPosition::earliest();
      auto c = retry(kProgram, std::string("read ") + topic, o_.reconnect_timeout,
                     [&] { return Consumer::open(o_.instance, topic, co); });
      if (!c) return false;
      const bool truck = std::string_view(topic) == kTruckTopic;
      const std::int64_t deadline = steady_ms() + static_cast<std::int64_t>(o_.reconnect_timeout * 1000);
      while (!left.empty()) {
        const PollResult r = c->poll([&](const Record& rec) {
          const auto it = left.find(rec.partition);
          if (it == left.end() || rec.offset >= it->second) return;
          truck ? on_truck(rec) : on_traffic(rec);
          ++applied;
        });
        if (r.status != PollStatus::ok || steady_ms() > deadline || stop_requested()) {
          std::fprintf(stderr, "%s: cannot rebuild the statistics: %s stops short of group '%s''s committed positions (%s)\n",
                       kProgram, topic, o_.group.c_str(), to_string(r.status));
          return false;
        }
        // By the consumer's position, not the last record: offsets whose
        // producer died are stepped over, never delivered.
        std::erase_if(left, [&](const auto& p) { return c->position(p.first) >= p.second; });
        if (r.records == 0 && !left.empty()) (void)c->wait(std::chrono::milliseconds(10));
      }
    }
    rebuilding_ = false;
    if (applied > 0) {
      fmt::print("truck-analytics: rebuilt the statistics of {} drivers from the {} records below the group's committed "
                 "positions\n",
                 drivers_.size(), applied);
      std::fflush(stdout);
    }
    return true;
  }

  bool reconnect() {
    std::fprintf(stderr, "%s: the broker went away; joining again\n", kProgram);
    truck_.reset();
    traffic_.reset();
    stats_out_.reset();
    pipeline_out_.reset();
    // What was published lately may have been lost with the broker's ring:
    // publish every driver again.
    for (const auto& kv : drivers_) changed_.insert(kv.first);
    return connect();
  }

  // Records handed over by both topics, or SIZE_MAX if a topic was deleted
  // (the broker restarted).
  std::size_t poll_once() {
    std::size_t n = 0;
    const PollResult f = traffic_->poll([&](const Record& r) { on_traffic(r); }, 4096);
    if (f.status == PollStatus::topic_deleted) return SIZE_MAX;
    n += f.records;
    const PollResult t = truck_->poll([&](const Record& r) { on_truck(r); }, 4096);
    if (t.status == PollStatus::topic_deleted) return SIZE_MAX;
    return n + t.records;
  }

  void on_traffic(const Record& r) {
    if (!rebuilding_) received_.add(kTrafficTopic, r);
    auto e = parse_traffic_event(r.value);
    if (!e) {
      report_bad(r, e.error().message);
      return;
    }
    std::vector<std::int16_t>& c = congestion_[e->route_id];
    if (e->tick >= c.size() + kMaxTickJump) {
      // Ticks come one after another: a record this far ahead is not one of
      // the simulator's (and would cost memory for nothing).
      report_bad(r, "tick " + std::to_string(e->tick) + " is far ahead of route " + std::to_string(e->route_id) + "'s");
      return;
    }
    if (c.size() <= e->tick) c.resize(std::max<std::size_t>(e->tick + 1, c.size() * 2), -1);
    if (c[e->tick] >= 0) {
      ++duplicates_;
      return;
    }
    c[e->tick] = static_cast<std::int16_t>(e->congestion);
    ++traffic_events_;
    if (!rebuilding_) ++interval_traffic_;
    // Truck events of this route that waited for their tick's congestion.
    auto w = waiting_.find(e->route_id);
    if (w == waiting_.end()) return;
    std::vector<Waiting>& list = w->second;
    std::erase_if(list, [&](Waiting& x) {
      if (!known(x.event.route_id, x.event.tick)) return false;
      apply(x.event, x.published_ns);
      return true;
    });
  }

  // When the simulator published the event, for the end-to-end latency: to
  // the nanosecond from the ring, to the millisecond from a log segment that
  // keeps only Kafka's timestamp.
  static std::int64_t published_ns(const Record& r) {
    return r.publish_ns != 0 ? r.publish_ns : r.timestamp_ms * 1'000'000;
  }

  void on_truck(const Record& r) {
    if (!rebuilding_) received_.add(kTruckTopic, r);
    auto e = parse_truck_event(r.value);
    if (!e) {
      report_bad(r, e.error().message);
      return;
    }
    // A truck's events arrive in tick order: anything not newer is a copy.
    auto [it, fresh] = last_tick_.try_emplace(e->truck_id, e->tick);
    if (!fresh) {
      if (e->tick <= it->second) {
        ++duplicates_;
        return;
      }
      it->second = e->tick;
    }
    const std::int64_t at = rebuilding_ ? 0 : published_ns(r);  // 0: not timed
    if (known(e->route_id, e->tick)) {
      apply(e.value(), at);
    } else {
      waiting_[e->route_id].push_back(Waiting{std::move(e.value()), at});
    }
  }

  bool known(std::uint32_t route, std::uint64_t tick) const {
    const auto it = congestion_.find(route);
    return it != congestion_.end() && tick < it->second.size() && it->second[tick] >= 0;
  }

  void apply(const TruckEvent& e, std::int64_t published_ns) {
    DriverStats& d = drivers_[e.driver_id];
    if (d.events == 0) {
      d.driver_id = e.driver_id;
      d.driver_name = e.driver_name;
    }
    d.add(e, static_cast<std::uint32_t>(congestion_.at(e.route_id)[e.tick]));
    changed_.insert(e.driver_id);
    ++truck_events_;
    if (published_ns == 0) return;  // rebuilt: neither this interval's rate nor its latency
    ++interval_truck_;
    const std::int64_t now_ns = realtime_ns();
    latencies_us_.push_back(static_cast<double>(std::max<std::int64_t>(0, now_ns - published_ns)) / 1000);
  }

  void report_bad(const Record& r, const std::string& why) {
    if (bad_++ < 10) {
      std::fprintf(stderr, "%s: skipped a malformed record (partition %u, offset %llu): %s\n", kProgram, r.partition,
                   static_cast<unsigned long long>(r.offset), why.c_str());
    }
  }

  // Publishes the drivers that changed (all of them if `all`) and one
  // pipeline record.
  void publish(bool all) {
    const std::int64_t now = realtime_ms();
    if (all) {
      for (const auto& kv : drivers_) changed_.insert(kv.first);
    }
    for (const std::uint32_t id : changed_) {
      DriverStats& d = drivers_[id];
      d.updated_ms = now;
      send(*stats_out_, std::to_string(id), encode(d));
    }
    changed_.clear();
    PipelineStats p;
    p.time_ms = now;
    const double s = static_cast<double>(std::max<std::int64_t>(1, steady_ms() - last_publish_)) / 1000;
    p.truck_per_second = static_cast<double>(interval_truck_) / s;
    p.traffic_per_second = static_cast<double>(interval_traffic_) / s;
    if (!latencies_us_.empty()) {
      std::sort(latencies_us_.begin(), latencies_us_.end());
      const auto q = [&](double f) { return latencies_us_[std::min(latencies_us_.size() - 1, static_cast<std::size_t>(f * static_cast<double>(latencies_us_.size())))]; };
      p.latency_p50_us = q(0.5);
      p.latency_p99_us = q(0.99);
      p.latency_max_us = latencies_us_.back();
    }
    p.truck_events = truck_events_;
    p.traffic_events = traffic_events_;
    p.duplicates = duplicates_;
    latencies_us_.clear();
    interval_truck_ = interval_traffic_ = 0;
    last_publish_ = steady_ms();
    send(*pipeline_out_, "pipeline", encode(p));
  }

  // Usually a failure means the broker went away: the next poll notices and
  // joins again, and then every driver is published again. Counted: the
  // exit code says if the last ones did not go out.
  void send(Producer& p, const std::string& key, const std::string& value) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      const PublishResult r = p.publish(key, value);
      if (r.ok()) {
        unsent_ = 0;
        return;
      }
      if (r.status != PublishStatus::timed_out && r.status != PublishStatus::no_broker) break;
      // No broker: the next one adopts the rings; give it a moment.
      if (r.status == PublishStatus::no_broker) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ++unsent_;
  }

  struct Waiting {
    TruckEvent event;
    std::int64_t published_ns;
  };

  const Options& o_;
  ReceivedRecords received_;
  std::optional<GroupConsumer> truck_;
  std::optional<GroupConsumer> traffic_;
  std::optional<Producer> stats_out_;
  std::optional<Producer> pipeline_out_;
  std::unordered_map<std::uint32_t, std::vector<std::int16_t>> congestion_;  // route -> by tick (-1: not yet)
  std::unordered_map<std::uint32_t, std::uint64_t> last_tick_;               // truck -> last tick taken
  std::unordered_map<std::uint32_t, std::vector<Waiting>> waiting_;          // route -> events waiting for congestion
  bool rebuilding_ = false;  // rebuild(): applied, but neither received, nor timed, nor this interval's
  std::map<std::uint32_t, DriverStats> drivers_;
  std::set<std::uint32_t> changed_;  // drivers to publish at the next interval
  std::vector<double> latencies_us_;
  std::uint64_t truck_events_ = 0;
  std::uint64_t traffic_events_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t interval_truck_ = 0;
  std::uint64_t interval_traffic_ = 0;
  std::uint64_t bad_ = 0;
  std::uint64_t unsent_ = 0;  // publishes that failed since the last that worked
  std::int64_t last_publish_ = steady_ms();
};

}  // namespace
}  // namespace ringbus::trucking

int main(int argc, char** argv) {
  using namespace ringbus::trucking;
  Options o;
  CLI::App app{"ringbus-truck-analytics: per-driver statistics from the truck and traffic feeds (README, \"The trucking pipeline\")"};
  app.footer(
      "Reads trucking_data_truck and trucking_data_traffic as group 'analytics' (publish-subscribe), writes\n"
      "trucking_driver_stats and trucking_pipeline. Runs until Ctrl-C or SIGTERM, then drains and exits. Example:\n"
      "  ringbus-truck-analytics --interval 2");
  app.add_option("--instance", o.instance, "the broker's instance (default $RINGBUS_INSTANCE or \"default\")");
  app.add_option("--group", o.group, "the consumer group")->capture_default_str();
  app.add_option("--interval", o.interval, "seconds between published summaries")->check(CLI::Range(0.05, 3600.0))->capture_default_str();
  app.add_option("--reconnect-timeout", o.reconnect_timeout, "seconds to wait for a broker that went away")->capture_default_str();
  app.add_option("--received", o.received, "record what was received (topic, partition, offset, hash) in DIR/received-analytics-<pid>.csv")
      ->check(CLI::ExistingDirectory);
  CLI11_PARSE(app, argc, argv);
  install_stop_handlers();
  Analytics a(o);
  return a.run();
}
