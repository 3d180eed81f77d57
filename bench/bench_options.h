// Options both benchmark programs use for ringbus, so the micro-benchmarks
// and the whole-program runs measure the same configuration.
#pragma once

#include "ringbus/consumer.h"
#include "ringbus/producer.h"

namespace ringbus::bench {

// Gating: producers are back-pressured instead of overwriting (no loss), and
// the handler sees the ring itself (zero-copy views). Consumers are created
// before any producer publishes, so earliest = everything.
inline ConsumerOptions gating_options() {
  ConsumerOptions o;
  o.start = StartPosition::earliest();
  o.gating = true;
  o.idle = IdleStrategy::busy_spin;
  return o;
}

// Coarse timestamps: one CLOCK_REALTIME_COARSE read per claim (~5 ns)
// instead of CLOCK_REALTIME (~23 ns); the programs print that they use them.
inline ProducerOptions producer_options() {
  ProducerOptions o;
  o.coarse_timestamps = true;
  return o;
}

}  // namespace ringbus::bench
