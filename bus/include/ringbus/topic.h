// Topic configuration and description, and where a broker instance lives.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/result.h"

namespace ringbus {

struct TopicConfig {
  std::string name = {};            // [A-Za-z0-9._-], 1..249 chars, not starting with '.'
  std::uint32_t partitions = 1;     // 1..1024
  std::uint64_t ring_bytes = 64ULL << 20;   // per partition; power of two, 64 KiB..1 TiB
  std::uint32_t max_record_size = 1U << 20;  // key + headers + value; at most ring_bytes / 4
  // A claim not committed within this time is treated as abandoned (its
  // producer died): readers step over it and its offset is never delivered.
  std::chrono::nanoseconds abandoned_claim_timeout = std::chrono::seconds(1);
};

struct PartitionInfo {
  std::uint32_t partition = 0;
  std::uint64_t end_offset = 0;      // next offset to be claimed
  std::uint64_t end_position = 0;    // next ring byte position to be claimed
  std::uint32_t gating_readers = 0;  // registered gating readers
};

struct TopicInfo {
  std::string name;
  std::uint64_t topic_id = 0;
  std::uint32_t partitions = 0;
  std::uint64_t ring_bytes = 0;
  std::uint32_t max_record_size = 0;
  std::chrono::nanoseconds abandoned_claim_timeout{};
  std::vector<PartitionInfo> partition_info;
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
