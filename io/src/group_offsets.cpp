#include "group_offsets.h"

#include <cstring>

#include "group_format.h"
#include "ringbus/topic.h"
#include "small_file_format.h"
#include "small_files.h"

namespace ringbus::io {


std::vector<std::byte> encode_group_offsets(const GroupOffsets& g) {
  GroupOffsetsHeader f{};
  f.mode = static_cast<std::uint32_t>(g.settings.mode == GroupMode::queue ? detail::GroupModeCode::queue
                                                                           : detail::GroupModeCode::pubsub);
  f.start = static_cast<std::uint32_t>(g.settings.start == StartPosition::Kind::earliest ? detail::GroupStartCode::earliest
                                                                                          : detail::GroupStartCode::latest);
  f.partitions = static_cast<std::uint32_t>(g.committed.size());
  f.max_deliveries = g.settings.max_deliveries;
  f.lease_ms = static_cast<std::uint64_t>(g.settings.lease.count());
  f.session_timeout_ms = static_cast<std::uint64_t>(g.settings.session_timeout.count());
  f.name_length = static_cast<std::uint32_t>(g.name.size());
  f.dead_letter_length = static_cast<std::uint32_t>(g.settings.dead_letter_topic.size());
  std::vector<std::byte> out(sizeof f + g.name.size() + g.settings.dead_letter_topic.size() + 8 * g.committed.size());
  std::size_t at = sizeof f;
  std::memcpy(out.data() + at, g.name.data(), g.name.size());
  at += g.name.size();
  std::memcpy(out.data() + at, g.settings.dead_letter_topic.data(), g.settings.dead_letter_topic.size());
  at += g.settings.dead_letter_topic.size();
  std::memcpy(out.data() + at, g.committed.data(), 8 * g.committed.size());
  std::memcpy(out.data(), &f, sizeof f);
  seal_envelope(out, kGroupOffsetsMagic, kGroupOffsetsVersion);
  return out;
}

Result<GroupOffsets> decode_group_offsets(std::span<const std::byte> bytes, const std::string& path) {
  auto corrupt = [&](const std::string& what) { return Error{Errc::corrupt, path + ": " + what}; };
  auto version = open_envelope(bytes, kGroupOffsetsMagic, kGroupOffsetsVersion, kGroupOffsetsVersion, path,
                               "group offsets file");
  if (!version) return version.error();
  if (bytes.size() < sizeof(GroupOffsetsHeader)) return corrupt("truncated: " + std::to_string(bytes.size()) + " bytes");
  GroupOffsetsHeader f;
  std::memcpy(&f, bytes.data(), sizeof f);
  if (f.partitions < 1 || f.partitions > 1024) return corrupt("partitions is " + std::to_string(f.partitions));
  if (f.name_length < 1 || f.name_length > detail::kGroupNameMax) return corrupt("group name length " + std::to_string(f.name_length));
  if (f.dead_letter_length > detail::kTopicNameMax) return corrupt("dead-letter topic length " + std::to_string(f.dead_letter_length));
  const std::uint64_t size = sizeof f + std::uint64_t{f.name_length} + f.dead_letter_length + 8ULL * f.partitions;
  if (bytes.size() != size) {
    return corrupt(std::to_string(bytes.size()) + " bytes; its header says " + std::to_string(size));
  }
  if (!envelope_crc_ok(bytes)) return corrupt("CRC32C mismatch");
  const bool queue = f.mode == static_cast<std::uint32_t>(detail::GroupModeCode::queue);
  if (!queue && f.mode != static_cast<std::uint32_t>(detail::GroupModeCode::pubsub)) return corrupt("unknown mode " + std::to_string(f.mode));
  const bool earliest = f.start == static_cast<std::uint32_t>(detail::GroupStartCode::earliest);
  if (!earliest && f.start != static_cast<std::uint32_t>(detail::GroupStartCode::latest)) return corrupt("unknown start " + std::to_string(f.start));
  if (f.max_deliveries > detail::kMaxDeliveriesLimit) return corrupt("max_deliveries is " + std::to_string(f.max_deliveries));
  constexpr std::uint64_t kDayMs = 86'400'000;
  if (f.lease_ms < 1 || f.lease_ms > kDayMs) return corrupt("lease is " + std::to_string(f.lease_ms) + " ms");
  if (f.session_timeout_ms < 1 || f.session_timeout_ms > kDayMs) return corrupt("session timeout is " + std::to_string(f.session_timeout_ms) + " ms");
  GroupOffsets g;
  std::size_t at = sizeof f;
  g.name.assign(reinterpret_cast<const char*>(bytes.data() + at), f.name_length);
  at += f.name_length;
  g.settings.dead_letter_topic.assign(reinterpret_cast<const char*>(bytes.data() + at), f.dead_letter_length);
  at += f.dead_letter_length;
  if (auto s = validate_name("group", g.name); !s) return corrupt(s.error().message);
  if (!g.settings.dead_letter_topic.empty()) {
    if (auto s = validate_name("dead-letter topic", g.settings.dead_letter_topic); !s) return corrupt(s.error().message);
  }
  g.committed.resize(f.partitions);
  std::memcpy(g.committed.data(), bytes.data() + at, 8ULL * f.partitions);
  if (queue) {
    for (const std::uint64_t c : g.committed) {
      if (c == detail::kNoOffset) return corrupt("a queue group partition has no committed offset");
    }
  }
  g.settings.mode = queue ? GroupMode::queue : GroupMode::pubsub;
  g.settings.start = earliest ? StartPosition::Kind::earliest : StartPosition::Kind::latest;
  g.settings.max_deliveries = f.max_deliveries;
  g.settings.lease = std::chrono::milliseconds(f.lease_ms);
  g.settings.session_timeout = std::chrono::milliseconds(f.session_timeout_ms);
  return g;
}

}  // namespace ringbus::io
