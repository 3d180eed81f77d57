#include "trucking_events.h"

#include <charconv>
#include <limits>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace ringbus::trucking {

namespace {

using Json = nlohmann::json;

constexpr const char* kTypeNames[kEventTypes] = {"Normal", "Overspeed", "Lane Departure", "Unsafe following distance",
                                                 "Unsafe tail distance"};
constexpr const char* kTruckFields[] = {"time_ms", "tick",       "truck_id",  "driver_id", "driver_name", "route_id",
                                        "route_name", "latitude", "longitude", "speed_kmh", "event_type"};
constexpr const char* kTrafficFields[] = {"time_ms", "tick", "route_id", "congestion"};

Error bad(std::string_view what, const std::string& why) {
  return Error{Errc::invalid_argument, std::string(what) + ": " + why};
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  for (;;) {
    const std::size_t comma = s.find(',');
    out.push_back(s.substr(0, comma));
    if (comma == std::string_view::npos) return out;
    s.remove_prefix(comma + 1);
  }
}

template <class T>
bool number(std::string_view s, T& out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// Names are what the simulator writes: printable ASCII, no comma.
bool name_ok(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (const char c : s) {
    if (c < 0x20 || c > 0x7e || c == ',') return false;
  }
  return true;
}

Result<std::vector<std::string_view>> fields(std::string_view what, std::string_view text, std::size_t n) {
  auto f = split(text);
  if (f.size() != n) {
    return bad(what, std::to_string(f.size()) + " comma-separated fields, expected " + std::to_string(n));
  }
  return f;
}

// JSON field readers: the error names the field.
template <class T>
Status read_field(const Json& j, const char* key, T& out) {
  const auto it = j.find(key);
  if (it == j.end()) return Error{Errc::invalid_argument, std::string("field '") + key + "' is missing"};
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return Error{Errc::invalid_argument, std::string("field '") + key + "' must be a string"};
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) return Error{Errc::invalid_argument, std::string("field '") + key + "' must be a number"};
  } else if constexpr (std::is_signed_v<T>) {
    if (!it->is_number_integer() ||
        (it->is_number_unsigned() && it->template get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))) {
      return Error{Errc::invalid_argument, std::string("field '") + key + "' must be an integer in range"};
    }
  } else {
    if (!it->is_number_unsigned()) {
      return Error{Errc::invalid_argument, std::string("field '") + key + "' must be a non-negative integer"};
    }
    if (it->template get<std::uint64_t>() > std::numeric_limits<T>::max()) {
      return Error{Errc::invalid_argument, std::string("field '") + key + "' is too large"};
    }
  }
  out = it->template get<T>();
  return {};
}

template <std::size_t N>
Status read_field(const Json& j, const char* key, std::array<std::uint64_t, N>& out) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != N) {
    return Error{Errc::invalid_argument, std::string("field '") + key + "' must be an array of " + std::to_string(N) + " counts"};
  }
  for (std::size_t i = 0; i < N; ++i) {
    if (!(*it)[i].is_number_unsigned()) {
      return Error{Errc::invalid_argument, std::string("field '") + key + "' must hold non-negative integers"};
    }
    out[i] = (*it)[i].template get<std::uint64_t>();
  }
  return {};
}

// Reads fields in turn; the first error is kept.
struct Fields {
  const Json& j;
  Status status = {};
  template <class T>
  Fields& operator()(const char* key, T& out) {
    if (status) status = read_field(j, key, out);
    return *this;
  }
};

Result<Json> parse_object(std::string_view what, std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad(what, "not a JSON object");
  return j;
}

}  // namespace

const char* to_string(EventType t) noexcept {
  const auto i = static_cast<std::size_t>(t);
  return i < kEventTypes ? kTypeNames[i] : "unknown";
}

std::string encode(const TruckEvent& e) {
  return fmt::format("{},{},{},{},{},{},{},{:.5f},{:.5f},{},{}", e.time_ms, e.tick, e.truck_id, e.driver_id, e.driver_name,
                     e.route_id, e.route_name, e.latitude, e.longitude, e.speed_kmh, to_string(e.type));
}

Result<TruckEvent> parse_truck_event(std::string_view text) {
  constexpr std::string_view what = "truck event";
  auto f = fields(what, text, std::size(kTruckFields));
  if (!f) return f.error();
  const auto& v = f.value();
  TruckEvent e;
  auto field_error = [&](std::size_t i) { return bad(what, std::string("bad ") + kTruckFields[i] + " '" + std::string(v[i]) + "'"); };
  if (!number(v[0], e.time_ms)) return field_error(0);
  if (!number(v[1], e.tick)) return field_error(1);
  if (!number(v[2], e.truck_id)) return field_error(2);
  if (!number(v[3], e.driver_id)) return field_error(3);
  if (!name_ok(v[4])) return field_error(4);
  e.driver_name = v[4];
  if (!number(v[5], e.route_id)) return field_error(5);
  if (!name_ok(v[6])) return field_error(6);
  e.route_name = v[6];
  if (!number(v[7], e.latitude) || !(e.latitude >= -90 && e.latitude <= 90)) return field_error(7);
  if (!number(v[8], e.longitude) || !(e.longitude >= -180 && e.longitude <= 180)) return field_error(8);
  if (!number(v[9], e.speed_kmh) || e.speed_kmh > 400) return field_error(9);
  std::size_t t = 0;
  while (t < kEventTypes && v[10] != kTypeNames[t]) ++t;
  if (t == kEventTypes) return field_error(10);
  e.type = static_cast<EventType>(t);
  return e;
}

std::string encode(const TrafficEvent& e) {
  return fmt::format("{},{},{},{}", e.time_ms, e.tick, e.route_id, e.congestion);
}

Result<TrafficEvent> parse_traffic_event(std::string_view text) {
  constexpr std::string_view what = "traffic event";
  auto f = fields(what, text, std::size(kTrafficFields));
  if (!f) return f.error();
  const auto& v = f.value();
  TrafficEvent e;
  auto field_error = [&](std::size_t i) { return bad(what, std::string("bad ") + kTrafficFields[i] + " '" + std::string(v[i]) + "'"); };
  if (!number(v[0], e.time_ms)) return field_error(0);
  if (!number(v[1], e.tick)) return field_error(1);
  if (!number(v[2], e.route_id)) return field_error(2);
  if (!number(v[3], e.congestion) || e.congestion > 100) return field_error(3);
  return e;
}

std::size_t band_of(std::uint32_t congestion) noexcept { return congestion <= 33 ? 0 : congestion <= 66 ? 1 : 2; }

const char* band_name(std::size_t band) noexcept {
  constexpr const char* kNames[kBands] = {"low", "medium", "high"};
  return band < kBands ? kNames[band] : "unknown";
}

void DriverStats::add(const TruckEvent& e, std::uint32_t congestion) {
  ++events;
  ++by_type[static_cast<std::size_t>(e.type)];
  speed_sum += e.speed_kmh;
  const std::size_t b = band_of(congestion);
  ++events_by_band[b];
  if (is_violation(e.type)) ++violations_by_band[b];
}

double DriverStats::average_speed() const noexcept {
  return events == 0 ? 0 : static_cast<double>(speed_sum) / static_cast<double>(events);
}

double DriverStats::violations_per_1000() const noexcept {
  return events == 0 ? 0 : 1000.0 * static_cast<double>(violations()) / static_cast<double>(events);
}

double DriverStats::band_rate(std::size_t band) const noexcept {
  if (band >= kBands || events_by_band[band] == 0) return 0;
  return 1000.0 * static_cast<double>(violations_by_band[band]) / static_cast<double>(events_by_band[band]);
}

bool DriverStats::same_counts(const DriverStats& o) const noexcept {
  return driver_id == o.driver_id && events == o.events && by_type == o.by_type && speed_sum == o.speed_sum &&
         events_by_band == o.events_by_band && violations_by_band == o.violations_by_band;
}

std::string encode(const DriverStats& s) {
  // Counts are the record; the averages are there for people reading it.
  const Json j{{"driver_id", s.driver_id},
               {"driver_name", s.driver_name},
               {"events", s.events},
               {"by_type", s.by_type},
               {"speed_sum", s.speed_sum},
               {"events_by_congestion", s.events_by_band},
               {"violations_by_congestion", s.violations_by_band},
               {"updated_ms", s.updated_ms},
               {"average_speed_kmh", s.average_speed()},
               {"violations_per_1000", s.violations_per_1000()}};
  return j.dump();
}

Result<DriverStats> parse_driver_stats(std::string_view text) {
  auto j = parse_object("driver stats", text);
  if (!j) return j.error();
  DriverStats s;
  Fields f{j.value()};
  f("driver_id", s.driver_id)("driver_name", s.driver_name)("events", s.events)("by_type", s.by_type)(
      "speed_sum", s.speed_sum)("events_by_congestion", s.events_by_band)("violations_by_congestion",
                                                                          s.violations_by_band)("updated_ms", s.updated_ms);
  if (!f.status) return bad("driver stats", f.status.error().message);
  if (!name_ok(s.driver_name)) return bad("driver stats", "bad driver_name");
  // The counts must add up (without wrapping around).
  const auto sum = [](const auto& counts, std::uint64_t& out) {
    out = 0;
    for (const std::uint64_t n : counts) {
      if (n > UINT64_MAX - out) return false;
      out += n;
    }
    return true;
  };
  std::uint64_t typed = 0;
  std::uint64_t banded = 0;
  std::uint64_t violated = 0;
  if (!sum(s.by_type, typed) || !sum(s.events_by_band, banded) || !sum(s.violations_by_band, violated) ||
      typed != s.events || banded != s.events || violated != s.events - s.by_type[0]) {
    return bad("driver stats", "the counts by type, by congestion and of violations do not add up to 'events'");
  }
  for (std::size_t b = 0; b < kBands; ++b) {
    if (s.violations_by_band[b] > s.events_by_band[b]) return bad("driver stats", "more violations than events in a congestion band");
  }
  return s;
}

std::string encode(const PipelineStats& s) {
  const Json j{{"time_ms", s.time_ms},
               {"truck_per_second", s.truck_per_second},
               {"traffic_per_second", s.traffic_per_second},
               {"latency_p50_us", s.latency_p50_us},
               {"latency_p99_us", s.latency_p99_us},
               {"latency_max_us", s.latency_max_us},
               {"truck_events", s.truck_events},
               {"traffic_events", s.traffic_events},
               {"duplicates", s.duplicates}};
  return j.dump();
}

Result<PipelineStats> parse_pipeline_stats(std::string_view text) {
  auto j = parse_object("pipeline stats", text);
  if (!j) return j.error();
  PipelineStats s;
  Fields f{j.value()};
  f("time_ms", s.time_ms)("truck_per_second", s.truck_per_second)("traffic_per_second", s.traffic_per_second)(
      "latency_p50_us", s.latency_p50_us)("latency_p99_us", s.latency_p99_us)("latency_max_us", s.latency_max_us)(
      "truck_events", s.truck_events)("traffic_events", s.traffic_events)("duplicates", s.duplicates);
  if (!f.status) return bad("pipeline stats", f.status.error().message);
  return s;
}

}  // namespace ringbus::trucking
