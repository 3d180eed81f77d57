// The trucking pipeline end to end (ringbus-trucking-demo: a broker, the
// simulator, the analytics job, the dashboard and three alerting workers as
// separate processes), at a fixed seed. The checks here do not trust the
// demo's own: the per-driver statistics are recomputed from the events the
// simulator recorded as acknowledged, with code of this file, and compared
// with the last record per driver the analytics job published.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../bus/test_support.h"

namespace ringbus::test {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

struct DemoRun {
  int code = -1;
  std::string out;
};

DemoRun demo(const std::string& dir, const std::vector<std::string>& extra) {
  std::string cmd = std::string(TRUCKING_DEMO_PATH) + " --dashboard off --duration 3 --rate 40 --trucks 12 --routes 4 " +
                    "--seed 11 --workers 3 --instance " + unique_instance("truck") + " --out " + dir;
  for (const std::string& e : extra) cmd += " " + e;
  cmd += " 2>&1";
  DemoRun r;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return r;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f) != nullptr) r.out += buf;
  const int status = ::pclose(f);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string field;
  while (std::getline(in, field, sep)) out.push_back(field);
  return out;
}

// The reference, from the recorded events: per driver, the counts the
// analytics job keeps (trucking_events.h, DriverStats).
struct Expected {
  std::uint64_t events = 0;
  std::array<std::uint64_t, 5> by_type{};
  std::uint64_t speed_sum = 0;
  std::array<std::uint64_t, 3> events_by_band{};
  std::array<std::uint64_t, 3> violations_by_band{};
};

struct Reference {
  std::map<std::uint32_t, Expected> drivers;
  std::set<std::pair<std::uint32_t, std::uint64_t>> violations;
  std::size_t truck_events = 0;
  std::uint64_t ticks = 0;
};

Reference reference(const std::string& path) {
  const std::vector<std::string> types = {"Normal", "Overspeed", "Lane Departure", "Unsafe following distance",
                                          "Unsafe tail distance"};
  std::map<std::pair<std::string, std::string>, int> congestion;  // (route, tick)
  std::vector<std::vector<std::string>> trucks;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto f = split(line, ',');
    if (!f.empty() && f[0] == "traffic" && f.size() == 5) {
      // traffic,time_ms,tick,route_id,congestion
      EXPECT_TRUE(congestion.emplace(std::pair{f[3], f[2]}, std::stoi(f[4])).second) << "twice: " << line;
    } else if (!f.empty() && f[0] == "truck" && f.size() == 12) {
      trucks.push_back(f);
    } else {
      ADD_FAILURE() << "not a recorded event: " << line;
    }
  }
  Reference ref;
  std::set<std::pair<std::string, std::string>> seen;  // (truck, tick)
  for (const auto& f : trucks) {
    EXPECT_TRUE(seen.insert({f[3], f[2]}).second) << "twice: truck " << f[3] << " tick " << f[2];
    // truck,time_ms,tick,truck_id,driver_id,driver_name,route_id,route_name,lat,lon,speed,type
    const auto c = congestion.find({f[6], f[2]});
    EXPECT_NE(c, congestion.end()) << "no congestion for route " << f[6] << " tick " << f[2];
    const int band = c == congestion.end() ? 0 : c->second <= 33 ? 0 : c->second <= 66 ? 1 : 2;
    const auto type = static_cast<std::size_t>(std::find(types.begin(), types.end(), f[11]) - types.begin());
    if (type >= types.size()) {
      ADD_FAILURE() << "event type " << f[11];
      continue;
    }
    Expected& d = ref.drivers[static_cast<std::uint32_t>(std::stoul(f[4]))];
    ++d.events;
    ++d.by_type[type];
    d.speed_sum += std::stoull(f[10]);
    ++d.events_by_band[static_cast<std::size_t>(band)];
    if (type != 0) {
      ++d.violations_by_band[static_cast<std::size_t>(band)];
      ref.violations.insert({static_cast<std::uint32_t>(std::stoul(f[3])), std::stoull(f[2])});
    }
    ++ref.truck_events;
    ref.ticks = std::max<std::uint64_t>(ref.ticks, std::stoull(f[2]) + 1);
  }
  // Every tick whole: nothing the simulator had acknowledged went missing.
  EXPECT_EQ(ref.truck_events, ref.ticks * 12) << "12 trucks";
  EXPECT_EQ(congestion.size(), ref.ticks * 4) << "4 routes";
  return ref;
}

template <std::size_t N>
std::array<std::uint64_t, N> counts(const Json& j) {
  std::array<std::uint64_t, N> a{};
  for (std::size_t i = 0; i < N; ++i) a[i] = j.at(i).get<std::uint64_t>();
  return a;
}

// Returns how many times each violation was handled by the alerting pool.
std::map<std::pair<std::uint32_t, std::uint64_t>, int> alerts(const std::string& dir) {
  std::map<std::pair<std::uint32_t, std::uint64_t>, int> handled;
  for (const auto& e : fs::directory_iterator(dir + "/alerts")) {
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline: cut short when its worker was killed (--mirrors)
      const auto f = split(line, ',');
      if (f.size() != 4) {
        ADD_FAILURE() << "not an alert: " << line;
        continue;
      }
      ++handled[{static_cast<std::uint32_t>(std::stoul(f[0])), std::stoull(f[1])}];
    }
  }
  return handled;
}

void expect_analytics_match(const std::string& dir, const Reference& ref) {
  ASSERT_GT(ref.truck_events, 100u);
  std::map<std::uint32_t, Json> published;
  std::ifstream in(dir + "/driver-stats.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const Json j = Json::parse(line);
    published[j.at("driver_id").get<std::uint32_t>()] = j;
  }
  ASSERT_EQ(published.size(), ref.drivers.size());
  for (const auto& [id, want] : ref.drivers) {
    const Json& got = published[id];
    SCOPED_TRACE("driver " + std::to_string(id));
    EXPECT_EQ(got.at("events").get<std::uint64_t>(), want.events);
    EXPECT_EQ(counts<5>(got.at("by_type")), want.by_type);
    EXPECT_EQ(got.at("speed_sum").get<std::uint64_t>(), want.speed_sum);
    EXPECT_EQ(counts<3>(got.at("events_by_congestion")), want.events_by_band);
    EXPECT_EQ(counts<3>(got.at("violations_by_congestion")), want.violations_by_band);
  }
}

// At least once: every violation handled (a redelivery after a crash or a
// failover may be handled twice), and no alert for anything else.
void expect_each_violation_handled(const std::string& dir, const Reference& ref) {
  const auto handled = alerts(dir);
  for (const auto& v : ref.violations) EXPECT_GE(handled.count(v) == 0 ? 0 : handled.at(v), 1) << v.first << "," << v.second;
  for (const auto& [k, n] : handled) EXPECT_EQ(ref.violations.count(k), 1u) << "an alert for no violation: " << k.first << "," << k.second;
}

struct Scratch {
  std::string dir = (fs::temp_directory_path() / unique_instance("trucking-out")).string();
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

TEST(TruckingPipeline, AnalyticsMatchTheReferenceAndEachViolationIsHandledOnce) {
  Scratch s;
  const DemoRun r = demo(s.dir, {});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Every check held."), std::string::npos) << r.out;
  const Reference ref = reference(s.dir + "/events.csv");
  expect_analytics_match(s.dir, ref);
  const auto handled = alerts(s.dir);
  ASSERT_FALSE(ref.violations.empty());
  for (const auto& v : ref.violations) EXPECT_EQ(handled.count(v) == 0 ? 0 : handled.at(v), 1) << v.first << "," << v.second;
  EXPECT_EQ(handled.size(), ref.violations.size());
  EXPECT_TRUE(fs::exists(s.dir + "/pipeline.csv"));
}

// The demo with its defaults in a container's shared memory (64 MiB).
TEST(TruckingPipeline, RunsInAContainersSharedMemory) {
  Scratch s;
  Tmpfs shm(s.dir + "-shm", "64m");
  if (::geteuid() != 0) GTEST_SKIP() << shm.error;
  ASSERT_TRUE(shm.mounted()) << shm.error;
  ::setenv("RINGBUS_SHM_DIR", shm.path.c_str(), 1);  // this test's process only: ctest runs each test alone
  const DemoRun r = demo(s.dir, {});
  ::unsetenv("RINGBUS_SHM_DIR");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Every check held."), std::string::npos) << r.out;
}

TEST(TruckingPipeline, ABrokerKilledHalfWayLosesNothingAcknowledged) {
  Scratch s;
  const DemoRun r = demo(s.dir, {"--crash-broker"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("killed the broker"), std::string::npos) << r.out;
  // No offset was given to two records: what the consumers got is the log.
  EXPECT_NE(r.out.find("is in the log at its offset (0 missing, 0 different)"), std::string::npos) << r.out;
  // The new broker adopted the rings: the clients went on with them, never
  // told the topic was gone, and nothing had to be published again.
  EXPECT_NE(r.out.find("0 published again after 0 reconnect(s)"), std::string::npos) << r.out;
  const Reference ref = reference(s.dir + "/events.csv");
  expect_analytics_match(s.dir, ref);
  expect_each_violation_handled(s.dir, ref);
}

// On a cluster (an etcd and two ringbusd nodes): the leading node's host
// dies half-way with the programs on it, the other node takes over, and
// the programs started there go on from what was replicated and committed.
TEST(TruckingPipeline, ALeaderKilledHalfWayOnAClusterLosesNothingAcknowledged) {
  if (std::system("command -v etcd > /dev/null") != 0) GTEST_SKIP() << "no etcd (Debian's etcd-server; tools/check installs it)";
  Scratch s;
  const DemoRun r = demo(s.dir, {"--mirrors"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("killed node a, the leader"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node b leads every topic"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("truck-sim: resuming after tick"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rebuilt the statistics of 12 drivers"), std::string::npos) << r.out;
  // What the consumers got on a (below the high watermark) is in b's log.
  EXPECT_NE(r.out.find("is in the log at its offset (0 missing, 0 different)"), std::string::npos) << r.out;
  const Reference ref = reference(s.dir + "/events.csv");
  expect_analytics_match(s.dir, ref);
  expect_each_violation_handled(s.dir, ref);
}

}  // namespace
}  // namespace ringbus::test
