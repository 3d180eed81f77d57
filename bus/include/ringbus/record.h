// Records as producers give them and consumers see them, and the hot-path
// status values.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace ringbus {

// A record header (Kafka's "headers"): a name and an opaque value.
struct Header {
  std::string_view name;
  std::string_view value;
};

// A read-only view of a record's encoded headers (Kafka's encoding, the same
// in the ring and in the commit log). Iterating decodes them in place; a
// malformed encoding stops the iteration (valid() says so).
class HeaderView {
 public:
  HeaderView() = default;
  explicit HeaderView(std::string_view encoded) : encoded_(encoded) {}

  class iterator {
   public:
    using value_type = Header;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(std::string_view rest, std::uint32_t count);
    const Header& operator*() const { return current_; }
    const Header* operator->() const { return &current_; }
    iterator& operator++();
    iterator operator++(int) { iterator t = *this; ++*this; return t; }
    bool operator==(const iterator& o) const { return at_end_ == o.at_end_ && (at_end_ || rest_.data() == o.rest_.data()); }

   private:
    void decode();
    std::string_view rest_;     // from the current header on
    Header current_{};
    std::size_t next_ = 0;      // the current header's size in rest_
    std::uint32_t remaining_ = 0;
    bool at_end_ = true;
  };
  iterator begin() const;
  iterator end() const { return iterator(); }
  bool empty() const { return begin() == end(); }
  std::size_t encoded_size() const { return encoded_.size(); }
  std::string_view encoded() const { return encoded_; }
  // True if the encoding parses completely (the ring's producers always write
  // valid encodings; this is for data that came from elsewhere).
  bool valid() const;
  // Finds the first header with this name; false if there is none.
  bool find(std::string_view name, std::string_view& value) const;

 private:
  std::string_view encoded_;
};

// A record handed to a consumer's handler. The views point into the ring (or,
// for a non-gating consumer, into the consumer's private copy of the batch)
// and are valid only during the handler call.
struct Record {
  std::uint64_t offset;
  // Kafka's timestamp: milliseconds since the Unix epoch (CLOCK_REALTIME when
  // published). The same whether the record is read from the ring or from
  // the commit log.
  std::int64_t timestamp_ms;
  // CLOCK_REALTIME when published, in nanoseconds, for latency measurement:
  // set when read from the ring, and from log segments that keep it; 0 from
  // those that keep milliseconds only (Kafka's batches).
  std::int64_t publish_ns;
  std::uint32_t partition;
  std::string_view key;       // empty if the record has no key
  std::string_view value;
  HeaderView headers;
  // In a queue group: the how-many-th time this record is handed to the group
  // (1 the first time; more after a member died or its lease ran out).
  // 0 everywhere else.
  std::uint32_t deliveries = 0;
};

// The outcome of a publish or claim. Values, not exceptions: the hot path
// never throws.
enum class PublishStatus : std::uint8_t {
  ok = 0,
  back_pressured,     // the ring is full up to its slowest gating reader, or
                      // up to a claim another producer is still writing
  timed_out,          // publish() waited its whole timeout for space
  record_too_large,   // key + headers + value exceed the topic's max record size
  invalid_partition,  // an explicit partition outside [0, partitions)
  claim_revoked,      // the claim was held past the abandoned-claim timeout and
                      // readers stepped over it; the record was not published
  topic_deleted,      // the topic was deleted
  invalid_argument,   // e.g. an empty batch, or too many records in one batch
  no_commit_log,      // wait_durable: the topic has no commit log (its broker
                      // has no data directory), so nothing becomes durable
  log_failed,         // wait_durable: the commit log cannot write (disk full,
                      // I/O error: the broker logs the file and cause); the
                      // record is in the ring and is written once it recovers
  partition_offline,  // the partition's commit log could not be opened (the
                      // broker's log names the file and what to do); the
                      // topic's other partitions are served
  no_broker,          // back-pressured or waiting for durability on a topic
                      // with a commit log while no broker is alive: nothing
                      // frees ring space or makes records durable until one
                      // starts (what is in the ring is kept: it writes it)
  not_enough_replicas,  // wait_replicated: fewer replicas are in sync than the
                        // topic's min_insync (the record is kept and copied
                        // when they catch up; it is not acknowledged as all)
  not_leader,         // another node of the cluster leads the topic: this
                      // host has a mirror's copy (its consumers read it
                      // here), or this node stopped leading it (a
                      // failover); Producer::leader() names the leader
  partition_owned,    // an exclusive producer (ProducerOptions::exclusive)
                      // owns the partition: others are refused until it
                      // closes or its process dies
};
const char* to_string(PublishStatus s) noexcept;

struct [[nodiscard]] PublishResult {
  PublishStatus status = PublishStatus::ok;
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;  // of the (first) record, when ok
  bool ok() const noexcept { return status == PublishStatus::ok; }
};

enum class PollStatus : std::uint8_t {
  ok = 0,         // records were delivered, or there were none yet
  lapped,         // the ring overwrote records this consumer had not read
  topic_deleted,  // the topic was deleted and everything before was delivered
  corrupt,        // a gating consumer found a frame no producer writes (a
                  // producer stopped past the abandoned-claim timeout wrote
                  // over newer records): skipped to the newest record; or a
                  // batch on disk failed its checks: reported once, resumed at
                  // the next intact batch (missed_from..resumed_at is lost)
  out_of_range,   // reading from the commit log, the position was deleted by
                  // retention: resumed at the earliest offset on disk
};
const char* to_string(PollStatus s) noexcept;

struct [[nodiscard]] PollResult {
  PollStatus status = PollStatus::ok;
  std::size_t records = 0;  // handed to the handler by this call
  // When lapped, corrupt or out_of_range: the partition, the first offset
  // that was lost, and the offset the consumer resumed at (its missed records
  // are [missed_from, resumed_at)). A consumer of a topic with a commit log
  // is never lapped: it reads what the ring lost from disk.
  std::uint32_t partition = 0;
  std::uint64_t missed_from = 0;
  std::uint64_t resumed_at = 0;
};

// How a consumer waits when there is nothing to read.
enum class IdleStrategy : std::uint8_t {
  busy_spin,  // lowest latency, burns a core
  yield,      // sched_yield between checks
  block,      // futex wait; producers wake it (costs them a system call only
              // while somebody is blocked)
};

// What a consumer's wait() ended with.
enum class WaitStatus : std::uint8_t {
  ready = 0,  // a record may be readable (or, for a group member, there is
              // group work: a rebalance, a heartbeat, a redelivery scan)
  timed_out,  // nothing came within the timeout
  no_broker,  // the topic has a commit log and no broker is alive: only what
              // producers can still put in the rings will come (they are held
              // back once the rings are full; the next broker writes it all to
              // the log). The first wait that finds the broker gone returns
              // this at once; while it stays gone, waits sleep as usual and
              // return it in place of timed_out.
};
const char* to_string(WaitStatus s) noexcept;

}  // namespace ringbus
