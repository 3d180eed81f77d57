#include "topic_meta.h"

#include <cstring>

#include "small_file_format.h"
#include "small_files.h"

namespace ringbus::io {


std::vector<std::byte> encode_topic_meta(const TopicMeta& meta) {
  TopicMetaRecord r{};
  const TopicConfig& c = meta.config;
  r.topic_id = meta.topic_id;
  r.partitions = c.partitions;
  r.max_record_size = c.max_record_size;
  r.ring_bytes = c.ring_bytes;
  r.abandoned_claim_timeout_ns = c.abandoned_claim_timeout.count();
  r.segment_bytes = c.log.segment_bytes;
  r.segment_age_ms = c.log.segment_age.count();
  r.retention_bytes = c.log.retention_bytes;
  r.retention_age_ms = c.log.retention_age.count();
  r.durability = static_cast<std::uint32_t>(c.log.durability);
  r.index_interval_bytes = c.log.index_interval_bytes;
  r.flush_interval_ms = c.log.flush_interval.count();
  r.flush_bytes = c.log.flush_bytes;
  r.retention_policy = static_cast<std::uint32_t>(c.log.retention_policy);
  r.compression = static_cast<std::uint32_t>(c.log.compression);
  r.min_insync = meta.min_insync;
  std::memcpy(r.name, c.name.data(), std::min(c.name.size(), sizeof r.name - 1));
  std::vector<std::byte> out(sizeof r);
  std::memcpy(out.data(), &r, sizeof r);
  seal_envelope(out, kTopicMetaMagic, kTopicMetaVersion);
  return out;
}

Result<TopicMeta> decode_topic_meta(std::span<const std::byte> bytes, const std::string& path) {
  auto corrupt = [&](const std::string& what) { return Error{Errc::corrupt, path + ": " + what}; };
  auto version = open_envelope(bytes, kTopicMetaMagic, 1, kTopicMetaVersion, path, "topic file");
  if (!version) return version.error();
  const std::size_t size = version.value() == 1   ? kTopicMetaVersion1Size
                           : version.value() < 4 ? kTopicMetaVersion3Size
                                                 : sizeof(TopicMetaRecord);
  if (bytes.size() != size) {
    return corrupt(std::to_string(bytes.size()) + " bytes, a version " + std::to_string(version.value()) +
                   " topic file has " + std::to_string(size));
  }
  if (!envelope_crc_ok(bytes)) return corrupt("CRC32C mismatch");
  TopicMetaRecord r{};  // a version 1 file leaves retention_policy 0: limits
  std::memcpy(&r, bytes.data(), size);
  if (version.value() < 3) r.compression = 0;  // version 2's reserved field
  if (r.compression > static_cast<std::uint32_t>(Compression::zstd)) {
    return corrupt("unknown compression " + std::to_string(r.compression));
  }
  // A topic has at most 5 replicas (cluster/src/cluster_keys.h).
  if (r.min_insync > 5) return corrupt("min_insync " + std::to_string(r.min_insync) + " is above 5 replicas");
  if (r.retention_policy > static_cast<std::uint32_t>(RetentionPolicy::consumed)) {
    return corrupt("unknown retention policy " + std::to_string(r.retention_policy));
  }
  if (std::memchr(r.name, '\0', sizeof r.name) == nullptr) return corrupt("topic name is not terminated");
  if (r.durability > static_cast<std::uint32_t>(Durability::every_ack)) return corrupt("unknown durability " + std::to_string(r.durability));
  TopicMeta m;
  m.topic_id = r.topic_id;
  m.min_insync = r.min_insync;
  TopicConfig& c = m.config;
  c.name = r.name;
  c.partitions = r.partitions;
  c.max_record_size = r.max_record_size;
  c.ring_bytes = r.ring_bytes;
  c.abandoned_claim_timeout = std::chrono::nanoseconds(r.abandoned_claim_timeout_ns);
  c.log.segment_bytes = r.segment_bytes;
  c.log.segment_age = std::chrono::milliseconds(r.segment_age_ms);
  c.log.retention_bytes = r.retention_bytes;
  c.log.retention_age = std::chrono::milliseconds(r.retention_age_ms);
  c.log.durability = static_cast<Durability>(r.durability);
  c.log.index_interval_bytes = r.index_interval_bytes;
  c.log.flush_interval = std::chrono::milliseconds(r.flush_interval_ms);
  c.log.flush_bytes = r.flush_bytes;
  c.log.retention_policy = static_cast<RetentionPolicy>(r.retention_policy);
  c.log.compression = static_cast<Compression>(r.compression);
  if (auto s = validate_topic_config(c); !s) return corrupt(s.error().message);
  return m;
}

Result<TopicMeta> read_topic_meta(const std::string& dir) {
  const std::string path = dir + "/" + kTopicMetaName;
  auto bytes = read_small_file(path);
  if (!bytes) return bytes.error();
  return decode_topic_meta(bytes.value(), path);
}

}  // namespace ringbus::io
