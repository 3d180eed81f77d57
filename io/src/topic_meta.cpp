#include "topic_meta.h"

#include <cstring>

#include "crc32c.h"
#include "partition_format.h"

namespace ringbus::io {

namespace {

constexpr std::uint64_t kTopicMetaMagic = 0x4154454d504f5452ULL;  // bytes "RTOPMETA"
// Version 2 appended retention_policy; version 1 files (the same record
// without it) are still read, as policy "limits".
constexpr std::uint32_t kTopicMetaVersion = 2;

struct MetaRecord {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t crc32c;  // of the bytes after this field
  std::uint64_t topic_id;
  std::uint32_t partitions;
  std::uint32_t max_record_size;
  std::uint64_t ring_bytes;
  std::int64_t abandoned_claim_timeout_ns;
  std::uint64_t segment_bytes;
  std::int64_t segment_age_ms;
  std::uint64_t retention_bytes;
  std::int64_t retention_age_ms;
  std::uint32_t durability;
  std::uint32_t index_interval_bytes;
  std::int64_t flush_interval_ms;
  std::uint64_t flush_bytes;
  char name[detail::kTopicNameMax + 7];  // NUL-terminated
  // Version 2:
  std::uint32_t retention_policy;
  std::uint32_t reserved;                // 0
};
static_assert(std::is_trivially_copyable_v<MetaRecord>);
constexpr std::size_t kCrcFrom = offsetof(MetaRecord, topic_id);
constexpr std::size_t kVersion1Size = offsetof(MetaRecord, retention_policy);

}  // namespace

std::vector<std::byte> encode_topic_meta(const TopicMeta& meta) {
  MetaRecord r{};
  const TopicConfig& c = meta.config;
  r.magic = kTopicMetaMagic;
  r.version = kTopicMetaVersion;
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
  std::memcpy(r.name, c.name.data(), std::min(c.name.size(), sizeof r.name - 1));
  r.crc32c = log::crc32c(reinterpret_cast<const std::byte*>(&r) + kCrcFrom, sizeof r - kCrcFrom);
  std::vector<std::byte> out(sizeof r);
  std::memcpy(out.data(), &r, sizeof r);
  return out;
}

Result<TopicMeta> decode_topic_meta(std::span<const std::byte> bytes, const std::string& path) {
  auto corrupt = [&](const std::string& what) { return Error{Errc::corrupt, path + ": " + what}; };
  MetaRecord r{};
  if (bytes.size() < 16) return corrupt("truncated: " + std::to_string(bytes.size()) + " bytes");
  std::memcpy(&r, bytes.data(), std::min(bytes.size(), sizeof r));
  if (r.magic != kTopicMetaMagic) return corrupt("not a ringbus topic file (bad magic)");
  if (r.version != 1 && r.version != kTopicMetaVersion) {
    return Error{Errc::version_mismatch, path + ": topic file version " + std::to_string(r.version) +
                                             ", this ringbus reads versions 1 to " + std::to_string(kTopicMetaVersion)};
  }
  const std::size_t size = r.version == 1 ? kVersion1Size : sizeof r;
  if (bytes.size() != size) {
    return corrupt(std::to_string(bytes.size()) + " bytes, a version " + std::to_string(r.version) + " topic file has " +
                   std::to_string(size));
  }
  if (r.version == 1) r.retention_policy = r.reserved = 0;
  if (r.crc32c != log::crc32c(bytes.data() + kCrcFrom, size - kCrcFrom)) return corrupt("CRC32C mismatch");
  if (r.retention_policy > static_cast<std::uint32_t>(RetentionPolicy::consumed)) {
    return corrupt("unknown retention policy " + std::to_string(r.retention_policy));
  }
  if (std::memchr(r.name, '\0', sizeof r.name) == nullptr) return corrupt("topic name is not terminated");
  if (r.durability > static_cast<std::uint32_t>(Durability::every_ack)) return corrupt("unknown durability " + std::to_string(r.durability));
  TopicMeta m;
  m.topic_id = r.topic_id;
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
  if (auto s = validate_topic_config(c); !s) return corrupt(s.error().message);
  return m;
}

}  // namespace ringbus::io
