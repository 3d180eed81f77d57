// Topics as files in an instance's shared-memory directory:
//
//   /dev/shm/ringbus-<instance>/
//     broker.lock                  flock(2)ed by the broker that owns the instance
//     topics/<name>/partition-<n>  one partition ring file each (partition_format.h)
//
// The directory is the topic registry: creating a topic builds its files in
// a hidden directory and renames it into place (atomic, and fails if the name
// is taken); deleting renames it away before unlinking. Any process can list
// and describe topics by reading it; only the broker changes it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "partition_ring.h"
#include "ringbus/result.h"
#include "ringbus/topic.h"

namespace ringbus::detail {

// Checks the header of a partition file's bytes (all of them, or at least the
// header) as a client must before trusting it: magic, layout version, sizes
// and their relations, name. The message names the file and the field.
Status validate_partition_header(const std::byte* data, std::uint64_t size, const std::string& path);

// All partitions of one topic, mapped. Each Producer and Consumer maps the
// topic for itself (and unmaps it when destroyed).
class TopicMap {
 public:
  static Result<std::shared_ptr<TopicMap>> open(std::string_view instance, std::string_view topic,
                                                bool populate = true);

  const std::string& name() const noexcept { return name_; }
  std::uint64_t topic_id() const noexcept { return topic_id_; }
  std::uint32_t partition_count() const noexcept { return static_cast<std::uint32_t>(rings_.size()); }
  PartitionRing& ring(std::uint32_t p) const noexcept { return *rings_[p]; }
  TopicInfo describe() const;

 private:
  std::string name_;
  std::uint64_t topic_id_ = 0;
  std::vector<std::unique_ptr<PartitionRing>> rings_;
};

std::string topics_directory(std::string_view instance);
// The file the broker holds an OFD write lock on while it lives (lock_is_held).
std::string broker_lock_path(std::string_view instance);
std::string topic_directory(std::string_view instance, std::string_view topic);

// A topic directory's link to the topic's commit log directory.
inline constexpr const char* kLogLinkName = "log";

// The topic's commit log directory, through the link its broker made ("": none).
std::string topic_log_directory(std::string_view instance, std::string_view topic);

// The first offset of a partition whose record was published at or after
// `ts` (CLOCK_REALTIME ns): the log's time index, else a read of the ring;
// the partition's end if none is. (group_admin.cpp)
std::uint64_t offset_for_time(std::string_view instance, std::string_view topic, const PartitionRing& ring,
                              std::int64_t ts);

// What a broker with a commit log tells a new topic's rings.
struct TopicLog {
  std::string directory;                    // the topic's log directory ("": no log)
  std::vector<std::uint64_t> base_offsets;  // per partition: the log's end offset (empty: all 0)
  std::uint32_t min_insync = 0;             // a cluster's topic (PartitionHeader::min_insync); 0: not replicated
  bool mirror = false;                      // a mirror's copy: the rings start in PartitionState::mirror
};

// What PartitionHeader::log_durability says for a topic with a commit log.
inline LogDurability log_durability_of(Durability d) noexcept {
  return d == Durability::page_cache ? LogDurability::page_cache : LogDurability::synced;
}

// Broker-side operations (the caller holds the instance lock).
Result<TopicInfo> create_topic_files(std::string_view instance, const TopicConfig& config,
                                     std::uint64_t topic_id, const TopicLog& log = {});
// `state`: deleted, or released (a cluster's topic led elsewhere now).
Status delete_topic_files(std::string_view instance, std::string_view topic,
                          PartitionState state = PartitionState::deleted);
// Marks a partition offline (its log cannot be opened): producers get
// partition_offline, waiters for durability log_failed with `err`.
void take_offline(PartitionRing& ring, int err);
std::vector<std::string> list_topic_names(std::string_view instance);

}  // namespace ringbus::detail
