#include "trucking_fleet.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace ringbus::trucking {

namespace {

struct Route {
  const char* name;
  double lat0, lon0, lat1, lon1;
};

constexpr Route kRoutes[] = {
    {"Saint Louis to Tulsa", 38.627, -90.199, 36.154, -95.993},
    {"Des Moines to Chicago", 41.587, -93.625, 41.878, -87.630},
    {"Joplin to Kansas City", 37.084, -94.513, 39.100, -94.578},
    {"Memphis to Little Rock", 35.150, -90.049, 34.746, -92.290},
    {"Peoria to Ceder Rapids", 40.694, -89.589, 41.978, -91.666},
    {"Springfield to KC Via Columbia", 37.209, -93.292, 39.100, -94.578},
    {"Wichita to Oklahoma City", 37.687, -97.330, 35.468, -97.516},
    {"Omaha to Denver", 41.257, -95.935, 39.739, -104.990},
};
constexpr std::size_t kRouteNames = std::size(kRoutes);

constexpr const char* kFirst[] = {"George", "Jamie", "Paul", "Michael", "Don", "Suresh", "Ana", "Wei", "Olga", "Kwame",
                                  "Sofia", "Raj", "Lena", "Tomas", "Aiko", "Carlos"};
constexpr const char* kLast[] = {"Vetticaden", "Engesser", "Codding", "Aktaev", "Hamilton", "Gomez", "Nowak", "Chen",
                                 "Okafor", "Silva", "Berg", "Tanaka", "Rossi", "Dubois", "Kim", "Novak"};

std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

Fleet::Fleet(std::uint64_t seed, std::uint32_t trucks, std::uint32_t routes)
    : seed_(seed), trucks_(trucks), routes_(routes) {}

std::uint64_t Fleet::random(std::uint64_t tick, std::uint64_t id, std::uint64_t salt) const noexcept {
  return splitmix64(splitmix64(splitmix64(seed_ ^ salt) ^ tick) ^ id);
}

TrafficEvent Fleet::traffic(std::uint64_t tick, std::uint32_t route, std::int64_t time_ms) const {
  // A slow wave per route (its own phase and period) plus noise: 0 to 100.
  const double period = 60.0 + static_cast<double>(random(0, route, 1) % 120);
  const double phase = static_cast<double>(random(0, route, 2) % 1000) / 1000.0 * 6.283185307179586;
  const double wave = 50.0 + 40.0 * std::sin(static_cast<double>(tick) / period * 6.283185307179586 + phase);
  const double noise = static_cast<double>(random(tick, route, 3) % 21) - 10.0;
  const double c = std::clamp(wave + noise, 0.0, 100.0);
  return TrafficEvent{time_ms, tick, route + 1, static_cast<std::uint32_t>(c)};
}

TruckEvent Fleet::truck(std::uint64_t tick, std::uint32_t truck, std::uint32_t congestion, std::int64_t time_ms) const {
  TruckEvent e;
  e.time_ms = time_ms;
  e.tick = tick;
  e.truck_id = truck + 1;
  e.driver_id = 10 + truck;  // one driver per truck
  e.driver_name = std::string(kFirst[random(0, truck, 4) % std::size(kFirst)]) + " " +
                  kLast[random(0, truck, 5) % std::size(kLast)];
  const std::uint32_t route = truck % routes_;
  e.route_id = route + 1;
  const Route& r = kRoutes[route % kRouteNames];
  e.route_name = routes_ <= kRouteNames ? std::string(r.name) : std::string(r.name) + " #" + std::to_string(route / kRouteNames + 1);
  // Along the route and back, 1/400 of it per tick, from a start of its own.
  const std::uint64_t step = (tick + random(0, truck, 6)) % 800;
  const double at = step < 400 ? static_cast<double>(step) / 400.0 : static_cast<double>(800 - step) / 400.0;
  e.latitude = r.lat0 + (r.lat1 - r.lat0) * at;
  e.longitude = r.lon0 + (r.lon1 - r.lon0) * at;
  // Slower in congestion.
  const std::uint32_t base = 95 - congestion * 45 / 100;
  e.speed_kmh = base - 10 + static_cast<std::uint32_t>(random(tick, truck, 7) % 21);
  // Risk per mille: the driver's own (5 to 60), up to tripled by congestion.
  const std::uint64_t risk = (5 + random(0, truck, 8) % 56) * (100 + 2 * congestion) / 100;
  const std::uint64_t roll = random(tick, truck, 9) % 1000;
  if (roll < risk) {
    e.type = static_cast<EventType>(1 + random(tick, truck, 10) % (kEventTypes - 1));
    if (e.type == EventType::overspeed) e.speed_kmh = 110 + static_cast<std::uint32_t>(random(tick, truck, 11) % 30);
  }
  return e;
}

void Fleet::tick(std::uint64_t tick, std::int64_t time_ms, std::vector<TrafficEvent>& traffic,
                 std::vector<TruckEvent>& trucks) const {
  traffic.clear();
  trucks.clear();
  for (std::uint32_t r = 0; r < routes_; ++r) traffic.push_back(this->traffic(tick, r, time_ms));
  for (std::uint32_t t = 0; t < trucks_; ++t) {
    trucks.push_back(truck(tick, t, traffic[t % routes_].congestion, time_ms));
  }
}

}  // namespace ringbus::trucking
