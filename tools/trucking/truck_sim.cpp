// ringbus-truck-sim: the truck-fleet simulator. Publishes one traffic event
// per route and one event per truck each tick to trucking_data_traffic and
// trucking_data_truck (trucking_events.h), deterministically from a seed.
//
// At-least-once: events are kept until the broker acknowledges them (written
// to the commit log, Producer::wait_durable); if the broker dies, the
// simulator waits for the next one and publishes what was not acknowledged
// again. Consumers drop the copies by (truck, tick). With --record, every
// acknowledged event is written to a file: the reference the checks use.
// With --acks all, acknowledged means durable on every in-sync replica of a
// cluster's topic (Producer::wait_replicated).
//
// --resume (with --record) goes on where an earlier run that died left
// off, as a simulator restarted on a standby host does after a failover:
// after the last whole tick its record holds (a tick it was killed while
// recording is cut from the record and published again). What that run
// published after it is published again: at least once.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "ringbus/producer.h"
#include "ringbus/topic.h"
#include "trucking_fleet.h"
#include "trucking_run.h"

namespace ringbus::trucking {
namespace {

constexpr const char* kProgram = "ringbus-truck-sim";

struct Options {
  std::string instance = default_instance();
  std::uint32_t trucks = 50;
  std::uint32_t routes = 8;
  std::uint64_t seed = 1;
  double rate = 10;  // ticks per second; 0: as fast as possible
  double duration = 20;
  std::uint64_t ticks = 0;
  std::string record;
  bool resume = false;
  std::string acks = "local";
  double reconnect_timeout = 30;
};

struct Pending {
  bool truck;
  std::string key;
  std::string value;
};

class Sim {
 public:
  explicit Sim(const Options& o) : o_(o), fleet_(o.seed, o.trucks, o.routes) {}

  int run() {
    std::uint64_t tick = 0;
    if (o_.resume) {
      auto whole = resume_record();
      if (!whole) return 1;
      tick = whole.value();
    }
    if (!o_.record.empty()) {
      record_.open(o_.record, o_.resume ? std::ios::app : std::ios::trunc);
      if (!record_) {
        std::fprintf(stderr, "ringbus-truck-sim: cannot write %s\n", o_.record.c_str());
        return 1;
      }
    }
    if (!connect(/*first=*/!o_.resume)) return 1;
    // A resumed run keeps the pace of the first: its clock starts as if at tick 0.
    const std::uint64_t first_tick = tick;
    const std::int64_t start =
        steady_ms() - (o_.rate > 0 ? static_cast<std::int64_t>(static_cast<double>(first_tick) * 1000 / o_.rate) : 0);
    std::int64_t last_ack = start;
    std::vector<TrafficEvent> traffic;
    std::vector<TruckEvent> trucks;
    while (!stop_requested()) {
      if (o_.ticks != 0 && tick >= o_.ticks) break;
      if (o_.ticks == 0 && o_.duration > 0 && steady_ms() - start >= static_cast<std::int64_t>(o_.duration * 1000)) break;
      if (o_.rate > 0) sleep_until_ms(start + static_cast<std::int64_t>(static_cast<double>(tick) * 1000 / o_.rate));
      fleet_.tick(tick, realtime_ms(), traffic, trucks);
      // Traffic first: the analytics job joins a truck event with its route's
      // congestion of the same tick.
      for (const TrafficEvent& e : traffic) {
        if (!send(Pending{false, std::to_string(e.route_id), encode(e)})) return gone();
      }
      for (const TruckEvent& e : trucks) {
        if (!send(Pending{true, std::to_string(e.truck_id), encode(e)})) return gone();
      }
      ++tick;
      // Paced: every tick. Flat out: every 50 ms (a wait per tick would pace it).
      if (o_.rate > 0 || steady_ms() - last_ack >= 50) {
        if (!acknowledge()) return gone();
        last_ack = steady_ms();
      }
    }
    if (!acknowledge()) return gone();
    const double s = static_cast<double>(steady_ms() - start) / 1000 -
                     (o_.rate > 0 ? static_cast<double>(first_tick) / o_.rate : 0);
    fmt::print("truck-sim: {} ticks{} in {:.1f} s: {} truck events, {} traffic events acknowledged ({:.0f} events/s); "
               "{} published again after {} reconnect(s)\n",
               tick - first_tick, o_.resume ? fmt::format(" (resumed at tick {})", first_tick) : "", s, acked_truck_,
               acked_traffic_, static_cast<double>(acked_truck_ + acked_traffic_) / s, republished_, reconnects_);
    return 0;
  }

 private:
  // --resume: the ticks the record holds whole (every route's and every
  // truck's event), from 0; the record is cut after the last of them.
  std::optional<std::uint64_t> resume_record() {
    std::ifstream in(o_.record);
    if (!in) {
      std::fprintf(stderr, "ringbus-truck-sim: --resume: cannot read %s\n", o_.record.c_str());
      return std::nullopt;
    }
    std::vector<std::uint32_t> events;  // per tick
    std::vector<std::uint64_t> line_end;  // per tick, the byte after its last line
    std::string line;
    std::uint64_t at = 0;
    while (std::getline(in, line)) {
      at += line.size() + 1;
      std::optional<std::uint64_t> tick;
      if (line.starts_with("truck,")) {
        if (auto e = parse_truck_event(std::string_view(line).substr(6))) tick = e->tick;
      } else if (line.starts_with("traffic,")) {
        if (auto e = parse_traffic_event(std::string_view(line).substr(8))) tick = e->tick;
      }
      if (!tick || in.eof()) break;  // a line cut short by the kill
      if (*tick >= events.size()) {
        events.resize(*tick + 1, 0);
        line_end.resize(*tick + 1, 0);
      }
      ++events[*tick];
      line_end[*tick] = std::max(line_end[*tick], at);
    }
    std::uint64_t whole = 0;
    while (whole < events.size() && events[whole] == o_.trucks + o_.routes) ++whole;
    // The events of a tick are recorded together, ticks in order: what
    // follows the last whole one is a tick cut short.
    const std::uint64_t keep = whole == 0 ? 0 : line_end[whole - 1];
    std::error_code ec;
    std::filesystem::resize_file(o_.record, keep, ec);
    if (ec) {
      std::fprintf(stderr, "ringbus-truck-sim: --resume: cannot cut %s: %s\n", o_.record.c_str(), ec.message().c_str());
      return std::nullopt;
    }
    fmt::print("truck-sim: resuming after tick {} (the last whole tick in {})\n", static_cast<std::int64_t>(whole) - 1,
               o_.record);
    std::fflush(stdout);
    return whole;
  }

  int gone() {
    std::fprintf(stderr, "ringbus-truck-sim: stopped with %zu events not acknowledged (%llu acknowledged)\n",
                 pending_.size(), static_cast<unsigned long long>(acked_truck_ + acked_traffic_));
    return 1;
  }

  // At the first start the topics must be there; later the broker may be
  // recreating them.
  bool connect(bool first) {
    const double timeout = first ? 0 : o_.reconnect_timeout;
    truck_ = open_producer(kProgram, o_.instance, kTruckTopic, timeout);
    if (!truck_) return false;
    traffic_ = open_producer(kProgram, o_.instance, kTrafficTopic, timeout);
    if (!traffic_) return false;
    last_truck_.assign(truck_->partitions(), std::nullopt);
    last_traffic_.assign(traffic_->partitions(), std::nullopt);
    return true;
  }

  // The broker is gone: wait for the next one, then publish again whatever
  // was not acknowledged.
  bool reconnect() {
    ++reconnects_;
    std::fprintf(stderr, "ringbus-truck-sim: the broker went away; waiting for it (%zu events not acknowledged)\n",
                 pending_.size());
    truck_.reset();
    traffic_.reset();
    if (!connect(false)) return false;
    for (const Pending& p : pending_) {
      if (!publish(p)) return false;
      ++republished_;
    }
    return true;
  }

  // One publish, retried while the ring is full, or while no broker runs
  // (the next one adopts the rings and drains them): false after the
  // reconnect timeout.
  bool publish(const Pending& p) {
    Producer& prod = p.truck ? *truck_ : *traffic_;
    const std::int64_t deadline = steady_ms() + static_cast<std::int64_t>(o_.reconnect_timeout * 1000);
    for (;;) {
      const PublishResult r = prod.publish(p.key, p.value);
      if (r.ok()) {
        (p.truck ? last_truck_ : last_traffic_)[r.partition] = r;
        return true;
      }
      if (r.status != PublishStatus::timed_out && r.status != PublishStatus::back_pressured &&
          r.status != PublishStatus::no_broker) {
        return false;
      }
      if (stop_requested() || steady_ms() > deadline) return false;
      if (r.status == PublishStatus::no_broker) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // Publishes and keeps the event until acknowledged. False if the broker
  // is gone for good (or we are stopping).
  bool send(Pending p) {
    pending_.push_back(std::move(p));
    if (publish(pending_.back())) return true;
    return !stop_requested() && reconnect();  // publishes every pending event again, this one included
  }

  // Waits until every partition's last publish is written to the log, then
  // the pending events are acknowledged (and recorded).
  bool acknowledge() {
    // A broker that died and was not replaced: give up after the reconnect timeout.
    const std::int64_t deadline = steady_ms() + static_cast<std::int64_t>(o_.reconnect_timeout * 1000);
    for (;;) {
      bool all = true;
      for (const bool truck : {true, false}) {
        Producer& prod = truck ? *truck_ : *traffic_;
        for (const std::optional<PublishResult>& r : truck ? last_truck_ : last_traffic_) {
          if (!r) continue;  // nothing published to that partition since the last acknowledgement
          const PublishStatus s = o_.acks == "all" ? prod.wait_replicated(*r, std::chrono::seconds(1))
                                                   : prod.wait_durable(*r, std::chrono::seconds(1));
          if (s == PublishStatus::ok) continue;
          if (s == PublishStatus::not_leader) {
            std::fprintf(stderr, "ringbus-truck-sim: this node no longer leads the topic (node '%s' does)\n",
                         prod.leader().c_str());
            return false;
          }
          if (s == PublishStatus::not_enough_replicas && !too_few_reported_) {
            std::fprintf(stderr, "ringbus-truck-sim: fewer replicas in sync than the topic's min-insync; waiting\n");
            too_few_reported_ = true;
          }
          if (s == PublishStatus::no_commit_log) {
            std::fprintf(stderr, "ringbus-truck-sim: the broker has no data directory: nothing can be acknowledged\n");
            return false;
          }
          all = false;
          if (s == PublishStatus::log_failed && !log_failed_reported_) {
            std::fprintf(stderr, "ringbus-truck-sim: the broker cannot write its log (see its log); waiting\n");
            log_failed_reported_ = true;
          }
          if (s == PublishStatus::no_broker) {
            // The next broker adopts the rings and writes what they hold.
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
          if (s == PublishStatus::topic_deleted) {
            if (!reconnect()) return false;
          }
          break;  // timed out (the broker may be dead) or reconnected: look again
        }
        if (!all) break;
      }
      if (all) break;
      if (stop_requested() || steady_ms() > deadline) return false;
    }
    for (const Pending& p : pending_) {
      if (p.truck) {
        ++acked_truck_;
      } else {
        ++acked_traffic_;
      }
      if (record_.is_open()) record_ << (p.truck ? "truck," : "traffic,") << p.value << '\n';
    }
    if (record_.is_open()) record_.flush();
    pending_.clear();
    std::fill(last_truck_.begin(), last_truck_.end(), std::nullopt);
    std::fill(last_traffic_.begin(), last_traffic_.end(), std::nullopt);
    return true;
  }

  const Options& o_;
  Fleet fleet_;
  std::optional<Producer> truck_;
  std::optional<Producer> traffic_;
  std::vector<std::optional<PublishResult>> last_truck_;  // per partition, since the last acknowledgement
  std::vector<std::optional<PublishResult>> last_traffic_;
  std::vector<Pending> pending_;
  std::ofstream record_;
  std::uint64_t acked_truck_ = 0;
  std::uint64_t acked_traffic_ = 0;
  std::uint64_t republished_ = 0;
  std::uint64_t reconnects_ = 0;
  bool log_failed_reported_ = false;
  bool too_few_reported_ = false;
};

}  // namespace
}  // namespace ringbus::trucking

int main(int argc, char** argv) {
  using namespace ringbus::trucking;
  Options o;
  CLI::App app{"ringbus-truck-sim: a truck fleet publishing truck events and route congestion (README, \"The trucking pipeline\")"};
  app.footer(
      "The topics must exist (ringbus-trucking-demo creates them; by hand: ringbus topic create trucking_data_truck\n"
      "--partitions 4, and the same for trucking_data_traffic). Examples:\n"
      "  ringbus-truck-sim --trucks 100 --rate 20 --duration 60\n"
      "  ringbus-truck-sim --rate 0 --ticks 100000 --record events.csv   # flat out");
  app.add_option("--instance", o.instance, "the broker's instance (default $RINGBUS_INSTANCE or \"default\")");
  app.add_option("--trucks", o.trucks, "trucks (one driver each)")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--routes", o.routes, "routes")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--seed", o.seed, "the simulation's seed (same seed, same events)")->capture_default_str();
  app.add_option("--rate", o.rate, "ticks per second (each tick: an event per truck and per route); 0: as fast as possible")
      ->check(CLI::Range(0.0, 1e6))->capture_default_str();
  app.add_option("--duration", o.duration, "seconds to run (0: until --ticks or Ctrl-C)")->check(CLI::Range(0.0, 1e6))->capture_default_str();
  app.add_option("--ticks", o.ticks, "stop after this many ticks (0: by --duration)");
  app.add_option("--record", o.record, "write every acknowledged event to this file (\"truck,<csv>\" or \"traffic,<csv>\")");
  app.add_option("--acks", o.acks, "acknowledged when durable here (local) or on every in-sync replica of a cluster (all)")
      ->check(CLI::IsMember({"local", "all"}))->capture_default_str();
  app.add_flag("--resume", o.resume, "go on after the last whole tick in the --record file of an earlier run");
  app.add_option("--reconnect-timeout", o.reconnect_timeout, "seconds to wait for a broker that went away")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (o.resume && o.record.empty()) {
    std::fprintf(stderr, "ringbus-truck-sim: --resume needs --record (the earlier run's record)\n");
    return 2;
  }
  install_stop_handlers();
  Sim sim(o);
  return sim.run();
}
