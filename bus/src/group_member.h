// The state of a consumer group member (GroupConsumer::Impl), shared by
// what both kinds of group do alike (group_consumer.cpp: joining, heartbeats,
// waiting, commits, leaving) and by each kind's own protocol:
// publish-subscribe (group_pubsub.cpp) and queue (group_queue.cpp). The
// protocol is in bus/README.md ("Consumer groups").
//
// A member reads through one non-gating Consumer over all the topic's
// partitions, steered by windows (consumer_access.h): a pubsub member opens
// the window of each partition it owns and keeps the others empty; a queue
// member opens, per partition, the window of the chunk it holds.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "group_file.h"
#include "partition_ring.h"
#include "ringbus/group.h"
#include "ringbus/producer.h"
#include "topic_files.h"

namespace ringbus {

namespace detail {
// A queue chunk this member holds.
struct HeldChunk {
  std::uint32_t partition = 0;
  ChunkGrant grant;
  std::uint64_t skip = 0;       // offsets acknowledged before we got it (redelivery): not delivered again
  std::uint64_t delivered = 0;  // offsets handed to the handler (or the dead-letter topic)
  bool active = false;
};
}  // namespace detail

struct GroupConsumer::Impl {
  using HeldChunk = detail::HeldChunk;
  std::string instance;
  std::string topic;
  std::string group;
  GroupOptions options;
  std::shared_ptr<detail::TopicMap> map;
  std::shared_ptr<detail::GroupFile> file;
  std::optional<Consumer> reader;
  detail::BrokerWatch broker;  // wait(): no_broker
  detail::CommitSleep sleeper;  // wait()
  std::uint32_t slot = 0;
  std::uint32_t incarnation = 0;
  bool joined = false;
  std::uint32_t lease_ms = 0;
  std::int64_t heartbeat_every_ns = 0;
  std::int64_t last_heartbeat_ns = 0;
  // pubsub
  std::uint64_t generation_seen = ~std::uint64_t{0};   // settled at: owns what it should
  std::uint64_t generation_tried = ~std::uint64_t{0};  // last rebalance attempt
  std::int64_t retry_rebalance_ns = 0;                 // unsettled: try again from then
  std::vector<bool> owned;
  std::int64_t next_commit_ns = 0;
  // queue
  std::vector<HeldChunk> reading;   // per partition
  std::vector<HeldChunk> awaiting;  // auto_ack off: read, waiting for ack()
  std::vector<HeldChunk> taken;     // redeliveries taken over, not yet read
  std::int64_t next_scan_ns = 0;
  std::optional<Producer> dead_letters;
  std::uint32_t next_partition = 0;

  std::uint32_t partitions() const noexcept { return file->partition_count(); }
  std::uint32_t owner() const noexcept { return detail::chunk_owner(slot, incarnation); }
  std::uint32_t token() const noexcept { return detail::owner_token(slot, incarnation); }
  bool queue() const noexcept { return file->is_queue(); }

  Status rejoin();
  void tick(std::int64_t now);
  // pubsub
  void rebalance();
  bool rebalance_due(std::int64_t now) const;
  void commit_positions();
  void release_partition(std::uint32_t p);
  bool acquire_partition(std::uint32_t p);
  bool owner_alive(std::uint32_t token) const;
  // queue
  bool start_chunk(std::uint32_t p);
  void finish_chunk(HeldChunk& h);
  void scan_for_redelivery();
  void dead_letter(const HeldChunk& h, const Record& r);
  bool has_work() const;
  // each kind's share of poll() and leave()
  PollResult poll_pubsub(detail::RecordHandlerRef handler, std::size_t max_records, std::int64_t now);
  PollResult poll_queue(detail::RecordHandlerRef handler, std::size_t max_records, std::int64_t now);
  void leave_pubsub();
  void leave_queue();
};
}  // namespace ringbus
