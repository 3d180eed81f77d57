// Fuzz target: the trucking pipeline's parsers (tools/trucking/
// trucking_events.h). The first byte picks the parser: truck event, traffic
// event, driver stats, pipeline stats. Never reads outside the input; what it
// accepts survives an encode/parse round trip.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "trucking_events.h"

using namespace ringbus::trucking;

std::vector<std::string> fuzz_seeds() {
  TruckEvent t;
  t.time_ms = 1764000000000;
  t.tick = 12;
  t.truck_id = 3;
  t.driver_id = 12;
  t.driver_name = "Ana Silva";
  t.route_id = 2;
  t.route_name = "Des Moines to Chicago";
  t.latitude = 41.5;
  t.longitude = -90.25;
  t.speed_kmh = 120;
  t.type = EventType::overspeed;
  DriverStats d;
  d.driver_id = 12;
  d.driver_name = "Ana Silva";
  d.add(t, 70);
  PipelineStats p;
  p.truck_events = 5;
  return {std::string(1, '\0') + encode(t), std::string(1, '\1') + encode(TrafficEvent{1, 2, 3, 44}),
          std::string(1, '\2') + encode(d), std::string(1, '\3') + encode(p)};
}

// True if the parser refused (with a message, as it must).
template <class R>
bool refused(const R& r) {
  if (r) return false;
  if (r.error().message.empty()) std::abort();
  return true;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto e = parse_truck_event(text);
      if (refused(e)) return 0;
      // Every field survives: encoding what was parsed again gives the same text.
      auto again = parse_truck_event(encode(e.value()));
      if (!again || encode(again.value()) != encode(e.value())) std::abort();
      break;
    }
    case 1: {
      auto e = parse_traffic_event(text);
      if (refused(e)) return 0;
      auto again = parse_traffic_event(encode(e.value()));
      if (!again || encode(again.value()) != encode(e.value())) std::abort();
      break;
    }
    case 2: {
      auto s = parse_driver_stats(text);
      if (refused(s)) return 0;
      // What is accepted adds up.
      if (s->violations() > s->events || s->driver_name.empty()) std::abort();
      auto again = parse_driver_stats(encode(s.value()));
      if (!again || encode(again.value()) != encode(s.value())) std::abort();
      break;
    }
    default: {
      auto p = parse_pipeline_stats(text);
      if (refused(p)) return 0;
      auto again = parse_pipeline_stats(encode(p.value()));
      if (!again || encode(again.value()) != encode(p.value())) std::abort();
      break;
    }
  }
  return 0;
}
