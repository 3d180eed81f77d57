// Topic configuration and description, and where a broker instance lives.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/result.h"

namespace ringbus {

// What "durable" means for a topic's records (the commit log's flush policy).
enum class Durability : std::uint8_t {
  page_cache,  // written to the page cache; the kernel writes it back (Kafka's default)
  interval,    // fdatasync every flush_interval, or every flush_bytes (group commit)
  every_ack,   // fdatasync before a record counts as durable (still group
               // commit: one sync covers every record written before it)
};
const char* to_string(Durability d) noexcept;

// Which segments retention deletes, besides those past retention_bytes and
// retention_age.
enum class RetentionPolicy : std::uint8_t {
  limits,    // none: only the size and age limits delete
  consumed,  // also a segment every consumer group of the topic has durably
             // committed past ("once consumed, the message vanishes"); with
             // no group at all, nothing counts as consumed
};
const char* to_string(RetentionPolicy p) noexcept;

// How the flusher compresses the batches it writes (Kafka's codecs, the
// values of a record batch's attributes bits 0-2). Readers decode every
// codec whatever the topic's setting: batches from elsewhere may be
// compressed.
enum class Compression : std::uint8_t { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };
const char* to_string(Compression c) noexcept;

// The commit log of a topic (used when the broker has a data directory).
struct LogConfig {
  std::uint64_t segment_bytes = 1ULL << 30;  // roll to a new segment file at this size (1 MiB to 4 GiB - 1)
  std::chrono::milliseconds segment_age = std::chrono::hours(24 * 7);  // ... or at this age
  std::uint64_t retention_bytes = 0;         // delete the oldest segments above this (0: no limit)
  std::chrono::milliseconds retention_age = std::chrono::hours(24 * 7);  // ... or older than this (0: no limit)
  RetentionPolicy retention_policy = RetentionPolicy::limits;
  Durability durability = Durability::interval;
  std::chrono::milliseconds flush_interval = std::chrono::milliseconds(100);  // for interval
  std::uint64_t flush_bytes = 0;             // for interval: also sync after this many bytes (0: off)
  std::uint32_t index_interval_bytes = 4096; // one offset/time index entry per this many bytes
  Compression compression = Compression::none;  // of the batches the flusher writes
  bool operator==(const LogConfig&) const = default;
};

struct TopicConfig {
  std::string name = {};            // [A-Za-z0-9._-], 1..249 chars, not starting with '.'
  std::uint32_t partitions = 1;     // 1..1024
  // Per partition; power of two, 64 KiB..1 TiB. The default's file (ring and
  // frame index: 2.5 MiB) lets two dozen partitions fit a container's 64 MiB
  // /dev/shm; with a commit log a reader behind the ring reads the log, so a
  // bigger ring only absorbs longer bursts of a slow flusher.
  std::uint64_t ring_bytes = 2ULL << 20;
  // Key + headers + value; at most ring_bytes / 4 - 32 (a record header).
  std::uint32_t max_record_size = 256U << 10;
  // A claim not committed within this time is treated as abandoned (its
  // producer died): readers step over it and its offset is never delivered.
  std::chrono::nanoseconds abandoned_claim_timeout = std::chrono::seconds(1);
  LogConfig log = {};
};

struct PartitionInfo {
  std::uint32_t partition = 0;
  std::uint64_t end_offset = 0;      // next offset to be claimed
  std::uint64_t end_position = 0;    // next ring byte position to be claimed
  std::uint32_t gating_readers = 0;  // registered gating readers (the flusher is one)
  // The commit log (all 0 when the broker has no data directory):
  bool has_log = false;
  std::uint64_t log_start_offset = 0;  // earliest offset on disk
  std::uint64_t written_offset = 0;    // below this, written to the log files
  std::uint64_t durable_offset = 0;    // below this, durable by the topic's policy
  int log_error = 0;                   // errno the flusher is stuck on (0: none)
  bool offline = false;                // its log could not be opened: producers are refused (the broker's log says why)
  std::uint32_t damaged_segments = 0;  // sealed segments the broker's scrubber found damaged (its log says where)
  // The client token of the exclusive producer that owns the partition
  // (ProducerOptions::exclusive; 0: none). Others are refused with
  // partition_owned until it closes or its process dies.
  std::int32_t exclusive_owner = 0;
};

struct TopicInfo {
  std::string name;
  std::uint64_t topic_id = 0;
  std::uint32_t partitions = 0;
  std::uint64_t ring_bytes = 0;
  std::uint32_t max_record_size = 0;
  std::chrono::nanoseconds abandoned_claim_timeout{};
  std::vector<PartitionInfo> partition_info;
  // A cluster mirror's copy on this host (cluster/README.md, "Consumers on
  // a mirror's host"): consumers read it here, producers are refused
  // (not_leader); ring_bytes is then the mirror's small rings'.
  bool mirror = false;
  // The commit log's settings: only the broker knows them (Broker::
  // describe_topic fills this in; the shared memory does not hold them).
  std::optional<LogConfig> log;
};

// Checks a topic or instance name; the error says which rule it breaks.
Status validate_name(std::string_view what, std::string_view name);
// Checks every field of a topic configuration.
Status validate_topic_config(const TopicConfig& config);

// The instance name clients use when none is given: $RINGBUS_INSTANCE, else "default".
std::string default_instance();
// The shared-memory directory of an instance: /dev/shm/ringbus-<instance>
// ($RINGBUS_SHM_DIR replaces /dev/shm, for tests on another tmpfs).
std::string instance_directory(std::string_view instance);

// Read-only questions any process may ask of a running instance.
Result<std::vector<std::string>> list_topics(std::string_view instance);
Result<TopicInfo> describe_topic(std::string_view instance, std::string_view topic);

// The stable partition of a key: xxHash64 (seed 0) of the key bytes, modulo
// the partition count. The same in every process, language and version.
std::uint32_t partition_for_key(std::string_view key, std::uint32_t partitions) noexcept;

}  // namespace ringbus
