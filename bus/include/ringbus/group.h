// Consumer groups: named subscriptions to a topic, shared by their members.
//
// Two modes, chosen when a group is created (by its first member, or by a
// reset) and fixed for its life:
//  - pubsub (publish-subscribe, Kafka's consumer groups): every group sees
//    every record; inside a group each partition is read by one member at a
//    time. The partitions are divided among the live members and divided
//    again whenever a member joins, leaves or dies. Each member commits its
//    position per partition; a partition that moves to another member goes on
//    from the committed position (at-least-once).
//  - queue (point-to-point): the members share the records one by one. Each
//    record is handed to exactly one member, which acknowledges it; an
//    acknowledged record is never delivered to the group again. Records a
//    member claimed and did not acknowledge within the lease, or held when it
//    died, go to another member (Record::deliveries counts the attempts),
//    and after max_deliveries to the dead-letter topic.
//
// Everything happens in shared memory (bus/README.md, "Consumer groups"): no
// broker round trip per record or per chunk. Liveness costs no per-record
// work: members write a heartbeat at most every session_timeout / 4 (in poll
// and wait), and a member whose process is gone, or whose heartbeat is older
// than session_timeout, is evicted by the first member (or broker) that
// notices. Positions are committed to shared memory; a broker with a data
// directory writes them to disk (explicitly with commit(durable), otherwise
// within a few tens of milliseconds), so they survive broker restarts and
// host crashes.
//
// Threading: a GroupConsumer is one member, used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/consumer.h"
#include "ringbus/result.h"

namespace ringbus {

enum class GroupMode : std::uint8_t { pubsub, queue };
const char* to_string(GroupMode m) noexcept;

// Fixed when the group is created; a member joining an existing group must
// ask for the same mode (the other settings are the group's, not its own).
struct GroupSettings {
  GroupMode mode = GroupMode::pubsub;
  // Where a partition the group has never committed starts: earliest or latest.
  StartPosition::Kind start = StartPosition::Kind::latest;
  std::chrono::milliseconds lease = std::chrono::seconds(30);  // queue
  std::uint32_t max_deliveries = 0;                            // queue: 0 = retry forever
  std::string dead_letter_topic = {};                          // queue: "" = drop after max_deliveries
  std::chrono::milliseconds session_timeout = std::chrono::seconds(10);
};

struct GroupOptions {
  GroupSettings settings = {};
  // queue: acknowledge each record when the handler returns (true), or only
  // through ack() (false).
  bool auto_ack = true;
  // pubsub: commit the positions this often from poll() (0: only commit()).
  std::chrono::milliseconds commit_interval = std::chrono::seconds(1);
  IdleStrategy idle = IdleStrategy::block;
};

class GroupConsumer {
 public:
  // Joins the group (creating it with options.settings if it does not exist).
  static Result<GroupConsumer> join(std::string_view instance, std::string_view topic, std::string_view group,
                                    GroupOptions options = {});
  GroupConsumer(GroupConsumer&&) noexcept;
  GroupConsumer& operator=(GroupConsumer&&) noexcept;
  ~GroupConsumer();  // leave()

  // As Consumer::poll. The handler's Record::deliveries is set in a queue group.
  template <class F>
    requires std::is_invocable_v<F&, const Record&>
  PollResult poll(F&& handler, std::size_t max_records = 1024) {
    return poll_with(detail::RecordHandlerRef(handler), max_records);
  }
  // As Consumer::wait; also ready when group work is due (a heartbeat, a
  // rebalance, a redelivery scan: the next poll does it).
  WaitStatus wait(std::chrono::nanoseconds timeout);

  // queue, auto_ack = false: acknowledges a record this member was handed.
  // Errc::not_found if this member does not hold it (already acknowledged,
  // or its lease ran out and it went to another member).
  Status ack(std::uint32_t partition, std::uint64_t offset);
  // pubsub: commits the positions of the partitions this member reads.
  // queue: acknowledgements are the commits; this only adds `durable`.
  // durable: waits (up to timeout) until the broker has written the group's
  // offsets to disk; Errc::invalid_argument if the broker has no data directory.
  Status commit(bool durable = false, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // pubsub: the partition (one this member owns) goes on at `offset`, below
  // records poll already handed over (which come again); commits record it.
  // For a reader that stops mid-batch (poll hands over whole batches).
  Status rewind(std::uint32_t partition, std::uint64_t offset);
  // Commits (pubsub), hands back what this member holds (queue: unacknowledged
  // records are redelivered at once), and leaves. Idempotent.
  void leave();

  // pubsub: the partitions this member reads now. queue: all of them.
  std::vector<std::uint32_t> assignment() const;
  GroupMode mode() const noexcept;

 private:
  struct Impl;
  explicit GroupConsumer(std::unique_ptr<Impl> impl);
  PollResult poll_with(detail::RecordHandlerRef handler, std::size_t max_records);
  std::unique_ptr<Impl> impl_;
};

struct GroupMemberInfo {
  std::uint32_t slot = 0;
  std::int32_t pid = 0;                    // in the member's own pid namespace (display only)
  std::int32_t client = 0;                 // its client token: how its liveness is known (bus/README.md)
  std::int64_t joined_ns = 0;              // CLOCK_REALTIME
  std::int64_t heartbeat_age_ns = 0;
  std::vector<std::uint32_t> partitions;   // pubsub: what it owns
};

struct GroupPartitionInfo {
  std::uint32_t partition = 0;
  std::uint64_t committed = 0;  // next offset the group reads (queue: all below acknowledged)
  bool has_committed = false;   // pubsub: false until a member started the partition
  std::uint64_t end_offset = 0;
  std::uint64_t lag = 0;        // end_offset - committed
  std::uint64_t in_flight = 0;  // queue: handed out, not yet acknowledged (whole chunks)
  std::uint64_t redelivered = 0;    // queue: chunks handed out again
  std::uint64_t dead_lettered = 0;  // queue: records given up on
};

struct GroupInfo {
  std::string topic;
  std::string name;
  GroupSettings settings;
  std::uint64_t generation = 0;
  std::vector<GroupMemberInfo> members;
  std::vector<GroupPartitionInfo> partitions;
};

Result<std::vector<std::string>> list_groups(std::string_view instance, std::string_view topic);
Result<GroupInfo> describe_group(std::string_view instance, std::string_view topic, std::string_view group);

// Where reset_group moves a group.
struct GroupPosition {
  enum class Kind : std::uint8_t { earliest, latest, offset, time };
  Kind kind = Kind::earliest;
  std::uint64_t offset = 0;       // Kind::offset: the same offset in every partition (clamped to what exists)
  std::int64_t timestamp_ns = 0;  // Kind::time: the first record at or after this CLOCK_REALTIME
};
// Moves every partition of the group to `position` (creating the group with
// `settings` if it does not exist). Refused (Errc::busy) while the group has
// live members, as Kafka does: members would not notice.
Status reset_group(std::string_view instance, std::string_view topic, std::string_view group,
                   GroupPosition position, const GroupSettings& settings = {});
// Removes a group with no live members.
Status delete_group(std::string_view instance, std::string_view topic, std::string_view group);

}  // namespace ringbus
