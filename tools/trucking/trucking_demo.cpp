// ringbus-trucking-demo: the README's main job (tools/demo). Runs the
// trucking pipeline end to end on a broker of its own and checks the result:
//
//   1. starts a broker (ringbus::Broker, embedded in a child process so that
//      --crash-broker can kill it with SIGKILL) with a data directory, and
//      creates the four topics;
//   2. starts the consumers as separate processes: the alerting workers (a
//      queue group), the analytics job and the dashboard (publish-subscribe
//      groups), then the simulator;
//   3. with --crash-broker, kills the broker half-way and starts a new one,
//      which recovers the logs and the groups; everybody reconnects;
//      with --mirrors, runs on a cluster instead (demo_cluster.h: an etcd
//      and two ringbusd nodes), kills the leading node's host half-way (its
//      ringbusd and the programs on it), and starts the programs again on
//      the other node once it leads, as a hot standby host would;
//   4. when the simulator is done and the groups have caught up, stops the
//      consumers and checks: the analytics against a reference computed from
//      the acknowledged events the simulator recorded, every violation
//      handled by the alerting pool (once, or counted when a crash
//      redelivered it), every group caught up; prints the durable offsets and
//      draws a chart of throughput and latency (gnuplot).
//
// The exit code says whether the checks held.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "ringbus/broker.h"
#include "ringbus/consumer.h"
#include "ringbus/group.h"
#include "demo_cluster.h"
#include "demo_processes.h"
#include "trucking_events.h"
#include "trucking_fleet.h"
#include "trucking_run.h"

namespace ringbus::trucking {
namespace {

namespace fs = std::filesystem;

struct Options {
  std::uint32_t trucks = 50;
  std::uint32_t routes = 8;
  double rate = 20;
  double duration = 20;
  std::uint64_t seed = 7;
  unsigned workers = 3;
  std::uint32_t partitions = 4;
  bool crash_broker = false;
  bool mirrors = false;
  std::string out;
  std::string instance = "trucking-" + std::to_string(::getpid());
  std::string dashboard = "auto";
};

// The pipeline's consumer groups, by topic.
const std::vector<std::pair<const char*, const char*>> kGroups = {{kTruckTopic, "analytics"},
                                                                  {kTrafficTopic, "analytics"},
                                                                  {kTruckTopic, "alerts"},
                                                                  {kDriverStatsTopic, "dashboard"},
                                                                  {kPipelineTopic, "dashboard"}};

// ---- the broker, in a child process -----------------------------------------

// The pipeline's topics and their partitions.
std::vector<DemoCluster::Topic> topics(const Options& o) {
  return {{kTruckTopic, o.partitions}, {kTrafficTopic, o.partitions}, {kDriverStatsTopic, o.partitions}, {kPipelineTopic, 1}};
}

Status create_topics(Broker& b, const Options& o) {
  for (const DemoCluster::Topic& s : topics(o)) {
    if (b.describe_topic(s.name)) continue;  // recovered from the data directory
    TopicConfig c;
    c.name = s.name;
    c.partitions = s.partitions;
    c.ring_bytes = 2 << 20;  // 13 partitions in 33 MiB: a container's 64 MiB /dev/shm holds them
    c.max_record_size = 64 << 10;
    // Acknowledged = written to the log: survives a broker crash (a host
    // crash needs interval or every_ack).
    c.log.durability = Durability::page_cache;
    c.log.segment_bytes = 64 << 20;
    if (auto r = b.create_topic(c); !r) return r.error();
  }
  return {};
}

// Forks the broker; returns its pid once it is ready (0 on failure).
pid_t start_broker(const Options& o, const std::string& data_dir) {
  int ready[2];
  if (::pipe(ready) != 0) return 0;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);  // Ctrl-C at the terminal is for the demo, which stops things in order
    ::close(ready[0]);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the broker's threads start
    BrokerOptions bo{o.instance, data_dir};
    bo.logger = [](const char* level, const std::string& m) {
      if (std::string_view(level) != "info") std::fprintf(stderr, "broker %s: %s\n", level, m.c_str());
    };
    auto b = Broker::start(bo);
    if (!b) {
      std::fprintf(stderr, "ringbus-trucking-demo: the broker did not start: %s\n", b.error().message.c_str());
      ::_exit(1);
    }
    if (auto s = create_topics(b.value(), o); !s) {
      std::fprintf(stderr, "ringbus-trucking-demo: %s\n", s.error().message.c_str());
      ::_exit(1);
    }
    (void)!::write(ready[1], "r", 1);
    int sig = 0;
    sigwait(&set, &sig);
    b->close();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  const bool ok = pid > 0 && ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);
  return ok ? pid : 0;
}

// The group's lag; UINT64_MAX while it does not exist.
std::uint64_t total_lag(const std::string& instance, const char* topic, const char* group) {
  return group_lag(instance, topic, group).value_or(UINT64_MAX);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Hands every record of a topic, from the earliest offset, to `f`.
template <class F>
void for_each_record(const std::string& instance, const char* topic, F&& f) {
  ConsumerOptions co;
  co.start = StartPosition::earliest();
  auto c = Consumer::open(instance, topic, co);
  if (!c) return;
  const std::uint64_t end = topic_end(instance, topic);
  std::uint64_t seen = 0;
  const std::int64_t deadline = steady_ms() + 10'000;
  while (seen < end && steady_ms() < deadline) {
    const PollResult r = c->poll(f);
    seen += r.records;
    if (r.records == 0) (void)c->wait(std::chrono::milliseconds(10));
  }
}

// Every record of a topic from the earliest offset, as values.
std::vector<std::string> read_topic(const std::string& instance, const char* topic) {
  std::vector<std::string> out;
  for_each_record(instance, topic, [&](const Record& rec) { out.emplace_back(rec.value); });
  return out;
}

// Every record the consumers recorded receiving (--received) checked against
// the log: (records received, not in the log, different in the log).
struct ReceivedCheck {
  std::uint64_t received = 0;
  std::uint64_t absent = 0;
  std::uint64_t different = 0;
};
ReceivedCheck check_received(const std::string& instance, const std::string& dir) {
  std::map<std::tuple<std::string, std::uint32_t, std::uint64_t>, std::uint64_t> in_log;
  for (const char* topic : {kTruckTopic, kTrafficTopic, kDriverStatsTopic, kPipelineTopic}) {
    for_each_record(instance, topic, [&](const Record& rec) {
      in_log[{topic, rec.partition, rec.offset}] = ReceivedRecords::hash(rec.value);
    });
  }
  ReceivedCheck out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::istringstream in(read_file(e.path().string()));
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline: a line cut short when its writer was killed (--mirrors)
      ++out.received;
      // topic,partition,offset,hash (topic names have no commas)
      const std::size_t comma = line.find(',');
      std::uint32_t partition = 0;
      std::uint64_t offset = 0;
      std::uint64_t hash = 0;
      const bool parsed = comma != std::string::npos &&
                          std::sscanf(line.c_str() + comma + 1, "%u,%" SCNu64 ",%" SCNu64, &partition, &offset, &hash) == 3;
      const auto it = parsed ? in_log.find({line.substr(0, comma), partition, offset}) : in_log.end();
      if (it == in_log.end() || it->second != hash) {
        ++(it == in_log.end() ? out.absent : out.different);
        if (out.absent + out.different <= 5) {
          std::fprintf(stderr, "ringbus-trucking-demo: %s received %s, which the log %s\n", e.path().filename().c_str(),
                       line.c_str(), it == in_log.end() ? "does not hold" : "holds with another value");
        }
      }
    }
  }
  return out;
}

// ---- the checks ---------------------------------------------------------------

struct Reference {
  std::map<std::uint32_t, DriverStats> drivers;
  std::set<std::pair<std::uint32_t, std::uint64_t>> violations;  // (truck, tick)
  std::set<std::pair<std::uint32_t, std::uint64_t>> trucks;      // (truck, tick) of every event
  std::set<std::pair<std::uint32_t, std::uint64_t>> routes;      // (route, tick) of every traffic event
  std::uint64_t truck = 0;
  std::uint64_t traffic = 0;
  std::uint64_t malformed = 0;
  std::uint64_t ticks = 0;   // the record holds ticks [0, ticks)
  std::uint64_t wrong = 0;   // events missing, twice, or not the fleet's
};

// From the simulator's record of acknowledged events, after checking that
// it holds exactly the fleet's events (same seed) of its ticks, each once:
// an event the simulator lost would otherwise go unnoticed.
Reference reference_from(const std::string& path, const Options& o) {
  Reference ref;
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint32_t> congestion;  // (route, tick)
  std::vector<TruckEvent> trucks;
  std::vector<TrafficEvent> traffic;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("traffic,")) {
      auto e = parse_traffic_event(std::string_view(line).substr(8));
      if (!e) {
        ++ref.malformed;
        continue;
      }
      ref.wrong += !congestion.emplace(std::pair{e->route_id, e->tick}, e->congestion).second;
      traffic.push_back(e.value());
      ++ref.traffic;
    } else if (line.starts_with("truck,")) {
      auto e = parse_truck_event(std::string_view(line).substr(6));
      if (!e) {
        ++ref.malformed;
        continue;
      }
      trucks.push_back(std::move(e.value()));
    } else {
      ++ref.malformed;
    }
  }
  const Fleet fleet(o.seed, o.trucks, o.routes);
  for (const TrafficEvent& e : traffic) {
    ref.ticks = std::max(ref.ticks, e.tick + 1);
    if (e.route_id == 0 || e.route_id > o.routes || encode(fleet.traffic(e.tick, e.route_id - 1, e.time_ms)) != encode(e)) ++ref.wrong;
  }
  std::set<std::pair<std::uint32_t, std::uint64_t>> seen;
  for (const TruckEvent& e : trucks) {
    ref.ticks = std::max(ref.ticks, e.tick + 1);
    const auto c = congestion.find({e.route_id, e.tick});
    if (e.truck_id == 0 || e.truck_id > o.trucks || !seen.insert({e.truck_id, e.tick}).second || c == congestion.end() ||
        encode(fleet.truck(e.tick, e.truck_id - 1, c->second, e.time_ms)) != encode(e)) {
      ++ref.wrong;
    }
  }
  ref.trucks = seen;
  for (const auto& [key, c] : congestion) ref.routes.insert(key);
  // Every tick whole: an event of every truck and of every route.
  ref.wrong += ref.ticks * o.trucks - std::min<std::uint64_t>(ref.ticks * o.trucks, seen.size());
  ref.wrong += ref.ticks * o.routes - std::min<std::uint64_t>(ref.ticks * o.routes, congestion.size());
  for (const TruckEvent& e : trucks) {
    ++ref.truck;
    DriverStats& d = ref.drivers[e.driver_id];
    d.driver_id = e.driver_id;
    d.driver_name = e.driver_name;
    const auto c = congestion.find({e.route_id, e.tick});
    d.add(e, c == congestion.end() ? 0 : c->second);
    if (c == congestion.end()) ++ref.malformed;
    if (is_violation(e.type)) ref.violations.insert({e.truck_id, e.tick});
  }
  return ref;
}

// `resumed_at` (--mirrors): per kGroups entry, what the group had
// committed on the new leader when it took over.
bool check(const Options& o, const std::string& dir, const std::vector<std::uint64_t>& resumed_at, int& failures) {
  auto verdict = [&](bool ok, const std::string& what) {
    fmt::print("  [{}] {}\n", ok ? "ok" : "FAILED", what);
    if (!ok) ++failures;
  };
  const Reference ref = reference_from(dir + "/events.csv", o);
  fmt::print("\nChecks (reference: the {} truck and {} traffic events the broker acknowledged, {})\n", ref.truck,
             ref.traffic, dir + "/events.csv");
  verdict(ref.malformed == 0 && ref.wrong == 0 && ref.truck > 0,
          fmt::format("the simulator's record holds the fleet's events of ticks 0 to {}, each once ({} unreadable lines, {} "
                      "events missing, twice or wrong)",
                      ref.ticks == 0 ? 0 : ref.ticks - 1, ref.malformed, ref.wrong));

  // Nothing acknowledged lost: every event in the record is in the log
  // (after a failover, the new leader's).
  std::set<std::pair<std::uint32_t, std::uint64_t>> in_log;
  for_each_record(o.instance, kTruckTopic, [&](const Record& r) {
    if (auto e = parse_truck_event(r.value)) in_log.insert({e->truck_id, e->tick});
  });
  std::size_t lost = 0;
  for (const auto& k : ref.trucks) lost += in_log.count(k) == 0;
  in_log.clear();
  for_each_record(o.instance, kTrafficTopic, [&](const Record& r) {
    if (auto e = parse_traffic_event(r.value)) in_log.insert({e->route_id, e->tick});
  });
  for (const auto& k : ref.routes) lost += in_log.count(k) == 0;
  verdict(lost == 0 && !ref.trucks.empty(),
          fmt::format("nothing acknowledged was lost: {} of the {} acknowledged events are in the log{}",
                      ref.trucks.size() + ref.routes.size() - lost, ref.trucks.size() + ref.routes.size(),
                      o.mirrors ? " of the new leader" : ""));

  // Analytics: the last record per driver, against the reference.
  std::map<std::uint32_t, DriverStats> last;
  std::ofstream final_stats(dir + "/driver-stats.jsonl", std::ios::trunc);
  for (const std::string& v : read_topic(o.instance, kDriverStatsTopic)) {
    auto s = parse_driver_stats(v);
    if (s) last[s->driver_id] = std::move(s.value());
  }
  std::size_t matching = 0;
  for (const auto& [id, d] : last) {
    final_stats << encode(d) << '\n';
    const auto r = ref.drivers.find(id);
    if (r != ref.drivers.end() && r->second.same_counts(d)) ++matching;
  }
  verdict(matching == ref.drivers.size() && last.size() == ref.drivers.size(),
          fmt::format("analytics: {} of {} drivers' statistics match the reference exactly", matching, ref.drivers.size()));

  // Alerts: every violation handled; copies only after a crash.
  std::map<std::pair<std::uint32_t, std::uint64_t>, int> handled;
  for (const auto& e : fs::directory_iterator(dir + "/alerts")) {
    std::istringstream in(read_file(e.path().string()));
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline: cut short when its worker was killed (--mirrors)
      std::uint32_t truck = 0;
      unsigned long long tick = 0;
      if (std::sscanf(line.c_str(), "%u,%llu,", &truck, &tick) == 2) ++handled[{truck, tick}];
    }
  }
  std::size_t missing = 0;
  std::size_t copies = 0;
  std::size_t unexpected = 0;
  for (const auto& v : ref.violations) missing += handled.count(v) == 0;
  for (const auto& [k, n] : handled) {
    copies += static_cast<std::size_t>(n - 1);
    unexpected += ref.violations.count(k) == 0;
  }
  verdict(missing == 0 && unexpected == 0,
          fmt::format("alerts: {} of {} violations handled by the pool of {} ({} alerts for no violation)",
                      ref.violations.size() - missing, ref.violations.size(), o.workers, unexpected));
  verdict(copies == 0 || o.crash_broker || o.mirrors,
          copies == 0 ? std::string("alerts: each violation handled once")
                      : fmt::format("alerts: {} violations handled twice: redelivered after the {} (at-least-once)", copies,
                                    o.mirrors ? "failover" : "broker crash"));

  // What the consumers were given is what the log holds (no offset given to
  // two records, nothing they saw lost).
  const ReceivedCheck rc = check_received(o.instance, dir + "/received");
  verdict(rc.received > 0 && rc.absent == 0 && rc.different == 0,
          fmt::format("every record the consumers received ({}) is in the log at its offset ({} missing, {} different)",
                      rc.received, rc.absent, rc.different));

  // Every group caught up.
  bool caught_up = true;
  for (const auto& [topic, group] : kGroups) {
    caught_up = caught_up && total_lag(o.instance, topic, group) == 0;
  }
  verdict(caught_up, "every group (analytics, dashboard, alerts) has committed everything: lag 0");
  if (!resumed_at.empty()) {
    // The groups' commits on a were mirrored to b with the logs: the
    // programs started there went on from them, not from the start.
    std::string where;
    bool all = true;
    for (std::size_t i = 0; i < kGroups.size(); ++i) {
      where += fmt::format("{}{} on {}: {}", i == 0 ? "" : ", ", kGroups[i].second, kGroups[i].first, resumed_at[i]);
      all = all && resumed_at[i] > 0;
    }
    verdict(all, "the groups went on from what they had committed before the failover (" + where + ")");
  }

  fmt::print("\nDurable offsets on disk ({}):\n", o.mirrors ? dir + "/b" : dir + "/data");
  for (const char* topic : {kTruckTopic, kTrafficTopic, kDriverStatsTopic, kPipelineTopic}) {
    auto t = describe_topic(o.instance, topic);
    if (!t) continue;
    std::string parts;
    std::uint64_t total = 0;
    for (const PartitionInfo& p : t->partition_info) {
      parts += fmt::format(" {}", p.durable_offset);
      total += p.end_offset;
    }
    fmt::print("  {:<24} {:>10} records; durable per partition:{}\n", topic, total, parts);
  }
  return failures == 0;
}

// Throughput and latency over the run, from trucking_pipeline.
void chart(const Options& o, const std::string& dir) {
  std::vector<PipelineStats> rows;
  for (const std::string& v : read_topic(o.instance, kPipelineTopic)) {
    auto p = parse_pipeline_stats(v);
    if (p) rows.push_back(p.value());
  }
  if (rows.empty()) return;
  const std::string data = dir + "/pipeline.csv";
  std::ofstream csv(data, std::ios::trunc);
  csv << "# seconds truck_events_per_s traffic_events_per_s latency_p50_ms latency_p99_ms\n";
  for (const PipelineStats& p : rows) {
    csv << fmt::format("{:.2f} {:.0f} {:.0f} {:.3f} {:.3f}\n", static_cast<double>(p.time_ms - rows.front().time_ms) / 1000,
                       p.truck_per_second, p.traffic_per_second, p.latency_p50_us / 1000, p.latency_p99_us / 1000);
  }
  csv.close();
  const std::string png = dir + "/trucking.png";
  const std::string script = fmt::format(
      "set terminal png size 1000,700\nset output '{}'\nset multiplot layout 2,1 title 'ringbus trucking pipeline'\n"
      "set xlabel 'seconds'\nset ylabel 'events/s'\nset grid\n"
      "plot '{}' using 1:2 with lines title 'truck events', '' using 1:3 with lines title 'traffic events'\n"
      "set ylabel 'ms'\nset logscale y\n"
      "plot '{}' using 1:4 with lines title 'end-to-end p50', '' using 1:5 with lines title 'end-to-end p99'\n"
      "unset multiplot\n",
      png, data, data);
  std::ofstream(dir + "/trucking.gp") << script;
  if (std::system(("gnuplot '" + dir + "/trucking.gp' 2>/dev/null").c_str()) == 0) {
    fmt::print("\nChart of throughput and latency: {}\n", png);
  } else {
    fmt::print("\ngnuplot is not installed: the chart's data is in {} (apt-get install gnuplot-nox)\n", data);
  }
}

int run(Options o) {
  const std::string dir = o.out.empty() ? (fs::temp_directory_path() / ("ringbus-trucking-" + std::to_string(::getpid()))).string() : o.out;
  // A previous run's data, records and alerts would be recovered and counted: start empty.
  for (const char* sub : {"/alerts", "/data", "/received", "/events.csv", "/etcd", "/a", "/b"}) {
    std::error_code ec;
    fs::remove_all(dir + sub, ec);
  }
  for (const char* sub : {"/alerts", "/data", "/received"}) {
    std::error_code ec;
    if (!fs::create_directories(dir + sub, ec) || ec) {
      std::fprintf(stderr, "ringbus-trucking-demo: cannot create %s: %s\n", (dir + sub).c_str(), ec.message().c_str());
      return 1;
    }
  }
  fmt::print("ringbus trucking pipeline: {} trucks on {} routes, {} ticks/s, {} s{}; output in {}\n", o.trucks, o.routes,
             o.rate, o.duration,
             o.crash_broker ? ", broker crash half-way"
             : o.mirrors    ? ", on a cluster of two nodes whose leader dies half-way"
                            : "",
             dir);
  std::fflush(stdout);
  Processes processes;
  std::optional<DemoCluster> cluster;
  std::vector<std::uint64_t> resumed_at;  // --mirrors: per kGroups entry, its committed positions' sum on b at the takeover
  pid_t broker = 0;
  if (o.mirrors) {
    cluster.emplace(processes, o.instance, dir);
    if (!cluster->start(topics(o))) return 1;
    o.instance = cluster->instance('a');
    fmt::print("etcd and ringbusd nodes a and b are up; every topic is replicated on both, led by a (instance {})\n",
               o.instance);
    std::fflush(stdout);
  } else {
    broker = start_broker(o, dir + "/data");
    if (broker == 0) return 1;
    processes.add(broker);
  }
  const bool show = o.dashboard == "on" || (o.dashboard == "auto" && ::isatty(STDOUT_FILENO) == 1);
  std::vector<Child> consumers;
  Child dashboard;
  Child sim;
  // The programs, against o.instance; `resume`: the simulator goes on
  // after the last whole tick its record holds.
  const auto start_pipeline = [&](bool resume) {
    const auto with = [&](std::vector<std::string> extra) {
      extra.insert(extra.begin(), {"--instance", o.instance});
      return extra;
    };
    consumers.clear();
    for (unsigned i = 0; i < o.workers; ++i) {
      consumers.push_back(spawn("ringbus-truck-alerts", with({"--out", dir + "/alerts", "--received", dir + "/received"}),
                                dir + "/alerts-" + std::to_string(i) + ".log"));
    }
    consumers.push_back(
        spawn("ringbus-truck-analytics", with({"--interval", "0.5", "--received", dir + "/received"}), dir + "/analytics.log"));
    dashboard = spawn("ringbus-truck-dashboard", with({"--received", dir + "/received"}), show ? "" : dir + "/dashboard.log");
    std::vector<std::string> sim_args = with({"--trucks", std::to_string(o.trucks), "--routes", std::to_string(o.routes), "--seed",
                                              std::to_string(o.seed), "--rate", fmt::format("{}", o.rate), "--duration",
                                              fmt::format("{}", o.duration), "--record", dir + "/events.csv"});
    if (o.mirrors) sim_args.insert(sim_args.end(), {"--acks", "all"});
    if (resume) sim_args.push_back("--resume");
    sim = spawn("ringbus-truck-sim", sim_args, dir + "/sim.log");
    for (const Child& c : consumers) processes.add(c.pid);
    processes.add(dashboard.pid);
    processes.add(sim.pid);
    return sim.pid != 0 && dashboard.pid != 0 &&
           std::all_of(consumers.begin(), consumers.end(), [](const Child& c) { return c.pid != 0; });
  };
  if (!start_pipeline(false)) return 1;
  if (o.crash_broker || o.mirrors) {
    const std::int64_t half = steady_ms() + static_cast<std::int64_t>(o.duration * 500);
    while (steady_ms() < half && !stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (o.crash_broker && !stop_requested()) {
    ::kill(broker, SIGKILL);
    (void)processes.reap(broker, 10'000);
    std::fprintf(stderr, "ringbus-trucking-demo: killed the broker (SIGKILL); starting a new one\n");
    broker = start_broker(o, dir + "/data");
    if (broker == 0) return 1;
    processes.add(broker);
  }
  if (o.mirrors && !stop_requested()) {
    // The leader's host dies: its node and every program on it.
    cluster->kill('a');
    for (const Child& c : consumers) processes.kill(c.pid);
    processes.kill(dashboard.pid);
    processes.kill(sim.pid);
    const std::int64_t died = steady_ms();
    std::fprintf(stderr, "ringbus-trucking-demo: killed node a, the leader, and the programs on its host (SIGKILL)\n");
    if (!cluster->wait_leading('b', 30)) {
      std::fprintf(stderr, "ringbus-trucking-demo: node b did not take over every topic within 30 s\n");
      return 1;
    }
    std::fprintf(stderr, "ringbus-trucking-demo: node b leads every topic %.1f s later; the programs start again there\n",
                 static_cast<double>(steady_ms() - died) / 1000);
    o.instance = cluster->instance('b');
    // What each group committed on a, as b has it: where they go on.
    for (const auto& [topic, group] : kGroups) {
      auto g = describe_group(o.instance, topic, group);
      std::uint64_t committed = 0;
      if (g) {
        for (const GroupPartitionInfo& p : g->partitions) committed += p.committed;
      }
      resumed_at.push_back(committed);
    }
    if (!start_pipeline(true)) return 1;
  }
  int failures = 0;
  // Ctrl-C ends the run early, in the same order as the end of --duration.
  const auto sim_running = [&] {
    siginfo_t info{};
    // WNOWAIT: look without reaping (reap() below takes the exit code).
    return ::waitid(P_PID, static_cast<id_t>(sim.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
  };
  while (sim_running() && !stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (stop_requested()) {
    std::fprintf(stderr, "ringbus-trucking-demo: interrupted: stopping the simulator, then the consumers\n");
    ::kill(sim.pid, SIGTERM);
  }
  const int sim_code = processes.reap(sim.pid, static_cast<std::int64_t>(o.duration * 1000) + 120'000);
  if (sim_code != 0) {
    std::fprintf(stderr, "ringbus-trucking-demo: the simulator failed (exit %d): %s\n", sim_code, read_file(dir + "/sim.log").c_str());
    ++failures;
  }
  // Let the groups catch up, then stop the consumers (they drain first).
  const std::int64_t deadline = steady_ms() + 60'000;
  while (steady_ms() < deadline &&
         (total_lag(o.instance, kTruckTopic, "analytics") != 0 || total_lag(o.instance, kTrafficTopic, "analytics") != 0 ||
          total_lag(o.instance, kTruckTopic, "alerts") != 0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (const Child& c : consumers) ::kill(c.pid, SIGTERM);
  for (const Child& c : consumers) {
    if (const int code = processes.reap(c.pid, 60'000); code != 0) {
      std::fprintf(stderr, "ringbus-trucking-demo: %s exited with %d\n", c.name.c_str(), code);
      ++failures;
    }
  }
  // The analytics job's last records are out: let the dashboard take them
  // (its positions are committed every second).
  const std::int64_t dash_deadline = steady_ms() + 10'000;
  while (steady_ms() < dash_deadline && (total_lag(o.instance, kDriverStatsTopic, "dashboard") != 0 ||
                                         total_lag(o.instance, kPipelineTopic, "dashboard") != 0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(dashboard.pid, SIGTERM);
  (void)processes.reap(dashboard.pid, 10'000);
  fmt::print("\n{}", read_file(dir + "/sim.log"));
  fmt::print("{}", read_file(dir + "/analytics.log"));
  for (unsigned i = 0; i < o.workers; ++i) fmt::print("{}", read_file(dir + "/alerts-" + std::to_string(i) + ".log"));
  if (!show) {
    // Its frames went to the file; its summary is the last line.
    const std::string log = read_file(dir + "/dashboard.log");
    const std::size_t at = log.rfind("truck-dashboard:");
    if (at != std::string::npos) fmt::print("{}", log.substr(at));
  }
  check(o, dir, resumed_at, failures);
  chart(o, dir);
  if (broker != 0) {
    ::kill(broker, SIGTERM);
    (void)processes.reap(broker, 30'000);
  }
  fmt::print("\n{}\n", failures == 0 ? "Every check held." : fmt::format("{} check(s) FAILED.", failures));
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace ringbus::trucking

int main(int argc, char** argv) {
  using namespace ringbus::trucking;
  Options o;
  CLI::App app{"ringbus-trucking-demo: the trucking pipeline end to end, with its checks (README, \"The trucking pipeline\")"};
  app.footer(
      "Starts a broker, the alerting workers, the analytics job, the dashboard and the simulator as separate\n"
      "processes, then checks what they did. Examples:\n"
      "  ringbus-trucking-demo                        # 20 s, 50 trucks, 20 ticks/s\n"
      "  ringbus-trucking-demo --rate 0 --duration 10  # as fast as it goes\n"
      "  ringbus-trucking-demo --crash-broker          # SIGKILL the broker half-way\n"
      "  ringbus-trucking-demo --mirrors               # a failover of a cluster's leader half-way");
  app.add_option("--trucks", o.trucks, "trucks (one driver each)")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--routes", o.routes, "routes")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--rate", o.rate, "ticks per second (an event per truck and per route each); 0: as fast as possible")
      ->check(CLI::Range(0.0, 1e6))->capture_default_str();
  app.add_option("--duration", o.duration, "seconds the simulator runs")->check(CLI::Range(0.5, 3600.0))->capture_default_str();
  app.add_option("--seed", o.seed, "the simulation's seed")->capture_default_str();
  app.add_option("--workers", o.workers, "alerting workers (the queue group's members)")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--partitions", o.partitions, "partitions of the data topics")->check(CLI::Range(1, 64))->capture_default_str();
  auto* crash = app.add_flag("--crash-broker", o.crash_broker, "kill the broker with SIGKILL half-way, then start a new one");
  app.add_flag("--mirrors", o.mirrors,
               "run on a cluster (an etcd and two ringbusd nodes on this machine; topics on both), kill the leading "
               "node's host half-way, go on on the other")
      ->excludes(crash);
  app.add_option("--out", o.out, "directory for the data, the records and the chart; a previous run's are removed (default: a new one in $TMPDIR)");
  app.add_option("--instance", o.instance, "the shared-memory instance")->capture_default_str();
  app.add_option("--dashboard", o.dashboard, "show the live dashboard: auto (on a terminal), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  install_stop_handlers();
  return run(o);
}
