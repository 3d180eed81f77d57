// The broker's scrubber: reads every sealed segment of every partition log
// back in the background, at a bounded rate, with the same check as `ringbus
// log verify` (segment_check.h), so that damage on disk (bit rot, a failing
// drive, a stray write) is found and reported before a consumer meets it.
//
// A segment is sealed once a later segment exists and the partition's written
// offset has reached that segment's base: nothing writes to it any more, so
// a problem found in it is damage, never a write in flight. A damaged
// segment is logged once (file, byte, what is wrong, what to do) and counted
// in its partition's PartitionInfo::damaged_segments until retention deletes
// it (or a later pass finds it intact: it was restored). The scrubber changes
// nothing on disk: consumers already step over a bad batch (PollStatus::
// corrupt, with the range lost).
//
// Passes: one over every partition, then a rest until `interval` has passed
// since the pass began. Reads are paced to `bytes_per_second` (a leaky
// bucket over every read), so the scrubber never competes with the flushers
// for more than that.
//
// Threading: one thread of its own; damaged_segments() and stats() from any
// thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flusher.h"
#include "ringbus/broker.h"

namespace ringbus::io {

// One partition log the scrubber may read.
struct ScrubTarget {
  std::string topic;
  std::uint32_t partition = 0;
  std::string dir;                  // the partition's log directory
  std::uint64_t written_offset = 0;  // segments wholly below this are written
};

class Scrubber {
 public:
  // Called at the start of each pass for the partitions to check.
  using ListFn = std::function<std::vector<ScrubTarget>()>;
  Scrubber(std::uint64_t bytes_per_second, std::chrono::nanoseconds interval, ListFn list, LogFn log);
  ~Scrubber();  // stops, mid-segment if need be

  // Sealed segments in `dir` found damaged (and not deleted since).
  std::uint32_t damaged_segments(const std::string& dir) const;
  ScrubStats stats() const;

 private:
  void run();
  void scrub(const ScrubTarget& target);
  // Paces a read of `bytes`: sleeps until the rate allows it. False once
  // stopping.
  bool pace(std::uint64_t bytes);
  // Sleeps until `until` (steady clock ns) or stop; false once stopping.
  bool sleep_until(std::int64_t until_ns);

  const double ns_per_byte_;
  const std::int64_t interval_ns_;
  ListFn list_;
  LogFn log_;
  std::int64_t next_read_ns_ = 0;  // the leaky bucket: when the next read may start
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::string> damaged_;  // segment path -> the problem logged (under mu_)
  ScrubStats stats_;                            // under mu_
  std::thread thread_;  // last: started when everything above is ready
};

}  // namespace ringbus::io
