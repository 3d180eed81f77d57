// The trucking pipeline's records and fleet model: round trips, errors that
// name the field, and a simulation that is the same for the same seed.
#include <gtest/gtest.h>

#include "trucking_events.h"
#include "trucking_fleet.h"

namespace ringbus::trucking {
namespace {

TEST(TruckingEvents, TruckAndTrafficEventsRoundTrip) {
  const Fleet fleet(5, 10, 3);
  std::vector<TrafficEvent> traffic;
  std::vector<TruckEvent> trucks;
  fleet.tick(7, 1764000000123, traffic, trucks);
  ASSERT_EQ(traffic.size(), 3u);
  ASSERT_EQ(trucks.size(), 10u);
  for (const TruckEvent& e : trucks) {
    auto back = parse_truck_event(encode(e));
    ASSERT_TRUE(back.ok()) << back.error().message << ": " << encode(e);
    EXPECT_EQ(encode(back.value()), encode(e));
  }
  auto t = parse_traffic_event(encode(traffic[1]));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->congestion, traffic[1].congestion);
}

TEST(TruckingEvents, MalformedRecordsAreRefusedNamingTheField) {
  const std::string good = "1764000000123,7,3,12,Ana Silva,2,Des Moines to Chicago,41.50000,-90.25000,88,Normal";
  ASSERT_TRUE(parse_truck_event(good).ok());
  auto expect = [](const Result<TruckEvent>& r, const std::string& part) {
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
  };
  expect(parse_truck_event("1,2,3"), "3 comma-separated fields, expected 11");
  expect(parse_truck_event("x,7,3,12,Ana,2,R,41.5,-90.25,88,Normal"), "bad time_ms");
  expect(parse_truck_event("1,7,3,12,Ana,2,R,141.5,-90.25,88,Normal"), "bad latitude");
  expect(parse_truck_event("1,7,3,12,Ana,2,R,41.5,-90.25,88,Speeding"), "bad event_type");
  expect(parse_truck_event("1,7,3,12,,2,R,41.5,-90.25,88,Normal"), "bad driver_name");
  expect(parse_truck_event("1,-7,3,12,Ana,2,R,41.5,-90.25,88,Normal"), "bad tick");
  auto traffic = parse_traffic_event("1,2,3,101");
  ASSERT_FALSE(traffic.ok());
  EXPECT_NE(traffic.error().message.find("bad congestion"), std::string::npos);
  EXPECT_FALSE(parse_driver_stats("[]").ok());
  auto stats = parse_driver_stats(R"({"driver_id": 1})");
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.error().message.find("'driver_name' is missing"), std::string::npos) << stats.error().message;
}

TEST(TruckingEvents, DriverStatsKeepCountsThatAddUp) {
  DriverStats d;
  d.driver_id = 4;
  d.driver_name = "Raj Kim";
  TruckEvent e;
  e.speed_kmh = 80;
  d.add(e, 10);
  e.type = EventType::lane_departure;
  e.speed_kmh = 60;
  d.add(e, 90);
  EXPECT_EQ(d.events, 2u);
  EXPECT_EQ(d.violations(), 1u);
  EXPECT_DOUBLE_EQ(d.average_speed(), 70.0);
  EXPECT_DOUBLE_EQ(d.violations_per_1000(), 500.0);
  EXPECT_DOUBLE_EQ(d.band_rate(2), 1000.0);
  EXPECT_DOUBLE_EQ(d.band_rate(0), 0.0);
  auto back = parse_driver_stats(encode(d));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->same_counts(d));
  // Counts that do not add up are refused.
  std::string text = encode(d);
  text.replace(text.find("\"events\":2"), 10, "\"events\":3");
  EXPECT_FALSE(parse_driver_stats(text).ok());
}

TEST(TruckingFleet, TheSameSeedGivesTheSameEventsAndViolationsHappen) {
  const Fleet a(42, 20, 4);
  const Fleet b(42, 20, 4);
  const Fleet c(43, 20, 4);
  std::vector<TrafficEvent> ta, tb, tc;
  std::vector<TruckEvent> ea, eb, ec;
  std::size_t violations = 0;
  bool differs = false;
  for (std::uint64_t tick = 0; tick < 200; ++tick) {
    a.tick(tick, 1000, ta, ea);
    b.tick(tick, 1000, tb, eb);
    c.tick(tick, 1000, tc, ec);
    for (std::size_t i = 0; i < ea.size(); ++i) {
      ASSERT_EQ(encode(ea[i]), encode(eb[i]));
      differs = differs || encode(ea[i]) != encode(ec[i]);
      violations += is_violation(ea[i].type);
      ASSERT_EQ(ea[i].truck_id, i + 1);
      ASSERT_EQ(ea[i].tick, tick);
    }
    for (std::size_t r = 0; r < ta.size(); ++r) ASSERT_LE(ta[r].congestion, 100u);
  }
  EXPECT_TRUE(differs);
  EXPECT_GT(violations, 20u);      // 4000 events, 0.5% to 18% risk each
  EXPECT_LT(violations, 4000u / 4);
}

}  // namespace
}  // namespace ringbus::trucking
