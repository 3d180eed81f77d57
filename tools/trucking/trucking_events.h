// The trucking pipeline's records (README "The trucking pipeline"), as text
// so that `ringbus consume` shows them as they are:
//
//   trucking_data_truck    CSV: time_ms,tick,truck_id,driver_id,driver_name,
//                          route_id,route_name,latitude,longitude,speed_kmh,event_type
//                          key: the truck id (a truck's events stay in order)
//   trucking_data_traffic  CSV: time_ms,tick,route_id,congestion   key: the route id
//   trucking_driver_stats  JSON: DriverStats (cumulative)           key: the driver id
//   trucking_pipeline      JSON: PipelineStats, one per interval
//
// A truck publishes exactly one event per tick, so (truck_id, tick) names an
// event: consumers use it to drop the copies an at-least-once producer
// republished after a broker crash. Parsers trust nothing: every field is
// checked and an error names the field (fuzz target trucking_events_fuzz).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "ringbus/result.h"

namespace ringbus::trucking {

inline constexpr const char* kTruckTopic = "trucking_data_truck";
inline constexpr const char* kTrafficTopic = "trucking_data_traffic";
inline constexpr const char* kDriverStatsTopic = "trucking_driver_stats";
inline constexpr const char* kPipelineTopic = "trucking_pipeline";

enum class EventType : std::uint8_t { normal, overspeed, lane_departure, unsafe_following, unsafe_tail };
inline constexpr std::size_t kEventTypes = 5;
// "Normal", "Overspeed", "Lane Departure", "Unsafe following distance", "Unsafe tail distance"
const char* to_string(EventType t) noexcept;
inline bool is_violation(EventType t) noexcept { return t != EventType::normal; }

struct TruckEvent {
  std::int64_t time_ms = 0;  // event time, Unix milliseconds
  std::uint64_t tick = 0;
  std::uint32_t truck_id = 0;
  std::uint32_t driver_id = 0;
  std::string driver_name;   // no ',' (the simulator's names never have one)
  std::uint32_t route_id = 0;
  std::string route_name;    // no ','
  double latitude = 0;
  double longitude = 0;
  std::uint32_t speed_kmh = 0;
  EventType type = EventType::normal;
};

struct TrafficEvent {
  std::int64_t time_ms = 0;
  std::uint64_t tick = 0;
  std::uint32_t route_id = 0;
  std::uint32_t congestion = 0;  // 0 (free) to 100 (standstill)
};

std::string encode(const TruckEvent& e);
Result<TruckEvent> parse_truck_event(std::string_view text);
std::string encode(const TrafficEvent& e);
Result<TrafficEvent> parse_traffic_event(std::string_view text);

// Congestion bands, for how violations relate to congestion.
inline constexpr std::size_t kBands = 3;
std::size_t band_of(std::uint32_t congestion) noexcept;  // 0: 0-33, 1: 34-66, 2: 67-100
const char* band_name(std::size_t band) noexcept;        // "low", "medium", "high"

// What the analytics job keeps per driver: every truck event of the driver,
// joined with its route's congestion at the event's tick.
struct DriverStats {
  std::uint32_t driver_id = 0;
  std::string driver_name;
  std::uint64_t events = 0;
  std::array<std::uint64_t, kEventTypes> by_type{};
  std::uint64_t speed_sum = 0;
  std::array<std::uint64_t, kBands> events_by_band{};
  std::array<std::uint64_t, kBands> violations_by_band{};
  std::int64_t updated_ms = 0;  // when the analytics job published it (not compared)

  void add(const TruckEvent& e, std::uint32_t congestion);
  std::uint64_t violations() const noexcept { return events - by_type[0]; }
  double average_speed() const noexcept;
  double violations_per_1000() const noexcept;
  // Violations per 1,000 events in a band (0 with no event there).
  double band_rate(std::size_t band) const noexcept;
  // The counts (not updated_ms).
  bool same_counts(const DriverStats& o) const noexcept;
};

std::string encode(const DriverStats& s);
Result<DriverStats> parse_driver_stats(std::string_view text);

// The analytics job's view of the pipeline over one interval.
struct PipelineStats {
  std::int64_t time_ms = 0;
  double truck_per_second = 0;    // truck events applied
  double traffic_per_second = 0;  // traffic events applied
  double latency_p50_us = 0;      // publish (record timestamp) to applied, truck events
  double latency_p99_us = 0;
  double latency_max_us = 0;
  std::uint64_t truck_events = 0;    // applied so far (distinct)
  std::uint64_t traffic_events = 0;
  std::uint64_t duplicates = 0;      // republished copies dropped so far
};

std::string encode(const PipelineStats& s);
Result<PipelineStats> parse_pipeline_stats(std::string_view text);

}  // namespace ringbus::trucking
