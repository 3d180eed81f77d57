// An embedded broker: owns a shared-memory instance in this process. It
// creates /dev/shm/ringbus-<instance>/, creates and deletes topics there, and
// removes the whole directory when closed. Producers and consumers in any
// process on the host open topics of the instance by name.
//
// With a data directory it also owns the topics' commit logs
// (<data-dir>/<topic>/<partition>/, io/README.md): it runs the flushers that
// write what producers commit to disk, applies retention, and at start
// recovers every topic found there (checking the logs' tails after a crash)
// and recreates its rings so that offsets go on where they stopped. Closing
// flushes and marks the logs clean.
//
// One broker per instance: a second one (in any process) is refused while the
// first lives. A directory left by a broker that died is cleaned up by the
// next broker that starts on the instance.
//
// Threading: Broker methods may be called from any thread; topic operations
// are serialised internally (they are not on the data path).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/group.h"
#include "ringbus/result.h"
#include "ringbus/topic.h"

namespace ringbus {

// How the flushers write: io_uring, or plain pwrite (also the automatic
// fallback, with one warning, where io_uring is unavailable).
enum class IoBackend : std::uint8_t { io_uring, pwrite };

struct BrokerOptions {
  std::string instance = default_instance();
  std::string data_dir = {};          // "" : no commit log, rings only
  std::uint32_t flusher_threads = 1;  // partitions are spread over them (1..256)
  IoBackend io_backend = IoBackend::io_uring;
  // Where the broker reports recovery, retention and disk errors: a level
  // ("info", "warn", "error") and a message. Default: stderr, timestamped.
  std::function<void(const char* level, const std::string& message)> logger = {};
  // The scrubber (with a data directory) reads every sealed segment back in
  // the background to find damage on disk before a consumer does: at most
  // this many bytes a second (0: no scrubber), and a pass over everything at
  // most once per scrub_interval.
  std::uint64_t scrub_bytes_per_second = 32ULL << 20;
  std::chrono::nanoseconds scrub_interval = std::chrono::hours(24);
};

// What the scrubber has done since the broker started.
struct ScrubStats {
  std::uint64_t passes = 0;            // complete passes over every partition
  std::uint64_t segments_checked = 0;
  std::uint64_t bytes_checked = 0;
  std::uint64_t damaged_segments = 0;  // found damaged and still on disk
};

class Broker {
 public:
  static Result<Broker> start(BrokerOptions options = {});
  Broker(Broker&&) noexcept;
  Broker& operator=(Broker&&) noexcept;
  ~Broker();  // close()

  const std::string& instance() const noexcept;
  const std::string& data_dir() const noexcept;
  // `topic_id`: the id to give it (a cluster's, unique across its nodes;
  // refused if a topic of this broker has it); 0: the broker picks one.
  // `min_insync`: a cluster's topic (cluster/README.md), kept in its
  // topic.meta and stamped into its rings from the start, so that producers
  // waiting for acks=all and consumers reading only replicated records treat
  // it as replicated before a leader publishes anything; 0: not replicated.
  Result<TopicInfo> create_topic(const TopicConfig& config, std::uint64_t topic_id = 0, std::uint32_t min_insync = 0);
  // Marks the topic deleted (producers get topic_deleted, consumers drain and
  // then see topic_deleted), then unlinks its files, commit log included.
  // Processes that have it mapped keep a valid mapping until they close it:
  // nobody crashes.
  Status delete_topic(std::string_view name);
  Result<std::vector<std::string>> list_topics() const;
  // As ringbus::describe_topic, plus the commit log's settings (info.log).
  Result<TopicInfo> describe_topic(std::string_view name) const;
  // Replaces a topic's commit-log settings (retention, durability, flushing,
  // segments, index spacing): written to its topic.meta, then applied by the
  // flushers from their next pass; producers waiting for durability are
  // woken to wait by the new policy. The ring (partitions, ring size, max
  // record size) is fixed at creation. Errc::invalid_argument for a broker
  // without a data directory, or a setting validate_topic_config refuses.
  Result<TopicInfo> alter_topic(std::string_view name, const LogConfig& log);
  // The topic's consumer groups (ringbus/group.h, for this broker's
  // instance), so that every front-end (the control channel, later the
  // network ones) finds topic and group operations in one place.
  Result<std::vector<std::string>> list_groups(std::string_view topic) const;
  Result<GroupInfo> describe_group(std::string_view topic, std::string_view group) const;
  // A new leadership of a partition (a cluster's election, cluster/README.md):
  // the batches its flusher writes from now on carry `epoch`, and so do
  // records in the ring it has not written yet. Refused below the log's
  // latest epoch (epochs never go down), and without a data directory.
  Status set_leader_epoch(std::string_view topic, std::uint32_t partition, std::int32_t epoch);
  // A cluster hands a topic's commit log over between serving it and
  // mirroring it (cluster/README.md, "A node's topics"). adopt_topic serves
  // the log placed at <data-dir>/<name> (its topic.meta and partition logs,
  // a mirror's copy): recovered, with rings made at the logs' ends, as a
  // restart would. already_exists if a topic of that name is served.
  Result<TopicInfo> adopt_topic(std::string_view name);
  // A cluster mirror's copy of a topic, for this host's consumers
  // (cluster/README.md, "Consumers on a mirror's host"): rings in the mirror
  // state (producers get not_leader; no record passes through them, so
  // they are the smallest a ring can be), linked to the copy at `log_dir`,
  // whose marks the mirror publishes in their headers (all 0 until it
  // does). The broker's flushers, retention and groups have nothing to do
  // with them. already_exists if a topic of that name is served.
  Result<TopicInfo> serve_mirror(const TopicConfig& config, std::uint64_t topic_id, std::uint32_t min_insync,
                                 const std::string& log_dir);
  // Removes a mirror's rings (its consumers see topic_deleted once they have
  // read the copy); not_found if there are none, invalid_argument if the
  // topic is not a mirror's copy.
  Status stop_mirror(std::string_view name);
  // Stops serving a topic and keeps its log: producers get not_leader (the
  // rings' state released), what the rings hold committed is written, and
  // the logs are closed cleanly in <data-dir>/<name>, for the caller (a
  // cluster node stepping down) to move.
  Status release_topic(std::string_view name);
  // reset_group, then the group as it is after the reset.
  Result<GroupInfo> reset_group(std::string_view topic, std::string_view group, const GroupPosition& to,
                                const GroupSettings& settings = {});
  Status delete_group(std::string_view topic, std::string_view group);
  // All zero without a data directory or with the scrubber off.
  ScrubStats scrub_stats() const;
  // Flushes the commit logs and closes them cleanly (they stay on disk),
  // then deletes every topic's rings and removes the instance directory.
  void close();

 private:
  struct Impl;
  explicit Broker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringbus
