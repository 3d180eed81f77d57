// The truck-fleet simulator's model: deterministic from a seed, and
// stateless per tick (tick t's events depend only on the seed, the fleet and
// t), so an at-least-once producer can rebuild any event it must publish
// again. Randomness is splitmix64 over (seed, tick, id), not <random>'s
// distributions, whose results differ between standard libraries.
//
// Each tick: one traffic event per route (congestion drifts smoothly, with
// noise), then one event per truck. A truck keeps its driver and route; it
// moves along the route; its chance of a violation is its driver's own risk
// raised by its route's congestion, so the analytics have a relation to find.
#pragma once

#include <cstdint>
#include <vector>

#include "trucking_events.h"

namespace ringbus::trucking {

class Fleet {
 public:
  // 1 to 100000 trucks; 1 to 64 routes.
  Fleet(std::uint64_t seed, std::uint32_t trucks, std::uint32_t routes);

  std::uint32_t trucks() const noexcept { return trucks_; }
  std::uint32_t routes() const noexcept { return routes_; }
  TrafficEvent traffic(std::uint64_t tick, std::uint32_t route, std::int64_t time_ms) const;
  // `congestion`: the truck's route's congestion at this tick (traffic(...).congestion).
  TruckEvent truck(std::uint64_t tick, std::uint32_t truck, std::uint32_t congestion, std::int64_t time_ms) const;
  // Every event of a tick, traffic first.
  void tick(std::uint64_t tick, std::int64_t time_ms, std::vector<TrafficEvent>& traffic,
            std::vector<TruckEvent>& trucks) const;

 private:
  std::uint64_t random(std::uint64_t tick, std::uint64_t id, std::uint64_t salt) const noexcept;
  std::uint64_t seed_;
  std::uint32_t trucks_;
  std::uint32_t routes_;
};

}  // namespace ringbus::trucking
