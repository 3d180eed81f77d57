// What consumer groups need of a Consumer beyond its public API: reading a
// partition one window of offsets at a time.
//
// A window [from, to) makes poll() hand over only that partition's records
// with offsets in it, then nothing more from the partition until the next
// window. A window at or after the cursor passes over what lies between
// (without copying it); one before the cursor seeks back (the ring if it still
// holds `from`, else the commit log).
#pragma once

#include <cstdint>

#include "ringbus/consumer.h"
#include "ringbus/result.h"
#include "sync.h"

namespace ringbus::detail {

struct ConsumerAccess {
  // Errc::not_found if `from` is neither in the ring nor in the log (the
  // window is then empty).
  // hint {position, offset}: a claim boundary in the ring some other reader
  // passed (offset 0: none). A window ahead of the cursor jumps to it when it
  // lies between, instead of walking the frames in between.
  static Status set_window(Consumer& consumer, std::uint32_t partition, std::uint64_t from, std::uint64_t to,
                           Pair hint = {0, 0});
  // Places the partition at a start position with an open window.
  static Status place(Consumer& consumer, std::uint32_t partition, StartPosition start);
  // The ring cursor {position, offset} when it reads the ring ({0, 0} when
  // it reads the commit log), to share as a hint.
  static Pair ring_cursor(const Consumer& consumer, std::uint32_t partition);
  // Every offset of the partition below this was delivered or passed over
  // (skipped: aborted, abandoned, or lost and reported by poll).
  static std::uint64_t passed(const Consumer& consumer, std::uint32_t partition);
};

}  // namespace ringbus::detail
