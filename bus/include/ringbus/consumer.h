// Reading records from a topic's partition rings.
//
// Threading: a Consumer is used by one thread at a time. Any number of
// Consumers, in any threads and processes, read the same partitions, each at
// its own position.
//
// Two kinds of consumer:
//  - gating (ConsumerOptions::gating): registers its position in the ring, and
//    producers never overwrite what it has not read (they are back-pressured
//    instead). The handler sees zero-copy views straight into the ring.
//  - non-gating (the default): never slows producers. If producers lap it, it
//    is told (PollStatus::lapped, with the first missed offset) and never sees
//    a torn record: each batch is copied out of the ring and checked before
//    the handler sees it (as Agrona's CopyBroadcastReceiver does), since
//    producers may overwrite the ring at any moment.
//
// When the topic has a commit log (its broker has a data directory), a
// consumer whose position is no longer in the ring (it started at an old
// offset or from the earliest, or it was lapped) reads the segment files
// itself, with the same poll() and handler, and goes back to the ring once it
// has caught up. It is then never lapped.
//
// On a topic with replicas (a cluster's, cluster/README.md), a consumer by
// default sees only replicated records: those below the partition's high
// watermark, durable on every in-sync replica, which no failover takes back
// (ReadUpTo).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <string_view>
#include <vector>

#include "ringbus/record.h"
#include "ringbus/result.h"

namespace ringbus {

struct StartPosition {
  // earliest: the earliest record kept (on disk if the topic has a log).
  // time: in each partition, the first record published at or after
  // timestamp_ns (CLOCK_REALTIME), found in the log's time index (else by
  // reading the ring); the end if there is none.
  enum class Kind : std::uint8_t { earliest, latest, offset, time };
  Kind kind = Kind::latest;
  std::uint64_t offset = 0;
  std::int64_t timestamp_ns = 0;
  static StartPosition earliest() { return {Kind::earliest, 0, 0}; }
  static StartPosition latest() { return {Kind::latest, 0, 0}; }
  static StartPosition at(std::uint64_t o) { return {Kind::offset, o, 0}; }
  static StartPosition at_time(std::int64_t ts) { return {Kind::time, 0, ts}; }
};

// How far a consumer reads (cluster/README.md, "What consumers see").
enum class ReadUpTo : std::uint8_t {
  replicated,  // on a topic with replicas, only records below the high
               // watermark, which no failover takes back (Kafka's consumers
               // read so); on a topic without, every committed record
  published,   // every record once its producer committed it; on a topic
               // with replicas, a failover may take back a record seen so
               // (one the in-sync replicas did not all hold yet)
};
const char* to_string(ReadUpTo r) noexcept;

struct ConsumerOptions {
  StartPosition start = StartPosition::latest();
  ReadUpTo read_up_to = ReadUpTo::replicated;
  bool gating = false;
  std::vector<std::uint32_t> partitions = {};  // empty = all partitions
  IdleStrategy idle = IdleStrategy::block;
};

namespace detail {
struct ConsumerAccess;  // consumer groups' window control (bus/src/consumer_access.h)

// A non-owning reference to the caller's handler for one poll() call: two
// words, no allocation (std::function may allocate per call for a lambda with
// a few captures). Internal: poll() makes it, so it can never outlive the
// handler it refers to.
class RecordHandlerRef {
 public:
  template <class F>
  explicit RecordHandlerRef(F& f) noexcept
      : object_(static_cast<void*>(std::addressof(f))),
        call_([](void* o, const Record& r) { (*static_cast<F*>(o))(r); }) {}
  void operator()(const Record& r) const { call_(object_, r); }

 private:
  void* object_;
  void (*call_)(void*, const Record&);
};
}  // namespace detail

class Consumer {
 public:
  static Result<Consumer> open(std::string_view instance, std::string_view topic,
                               ConsumerOptions options = {});
  Consumer(Consumer&&) noexcept;
  Consumer& operator=(Consumer&&) noexcept;
  ~Consumer();  // a gating consumer releases its gating slot

  // Hands up to max_records available records to the handler, partition by
  // partition, and returns at once (it does not wait). The handler is any
  // callable taking const Record&; the views it gets die when it returns.
  // (Whole batches are delivered, so a call may exceed max_records by the
  // size of the last batch.)
  template <class F>
    requires std::is_invocable_v<F&, const Record&>
  PollResult poll(F&& handler, std::size_t max_records = 1024) {
    return poll_with(detail::RecordHandlerRef(handler), max_records);
  }
  // Waits, by the idle strategy, until a record may be available (ready), the
  // timeout passes (timed_out), or, on a topic with a commit log, the broker
  // is found gone (no_broker: see WaitStatus).
  WaitStatus wait(std::chrono::nanoseconds timeout);

  // The next offset this consumer will read in a partition it reads.
  std::uint64_t position(std::uint32_t partition) const;
  // Offsets stepped over because their producer aborted or died.
  std::uint64_t skipped() const noexcept;
  const std::vector<std::uint32_t>& partitions() const noexcept;

 private:
  struct Impl;
  friend struct detail::ConsumerAccess;
  explicit Consumer(std::unique_ptr<Impl> impl);
  PollResult poll_with(detail::RecordHandlerRef handler, std::size_t max_records);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringbus
