// A consumer group as stored in its topic's log directory
// (<data-dir>/<topic>/groups/<group>.offsets): its settings and committed
// offsets, so that a restarted broker (after a clean stop, a SIGKILL or a
// host crash) recreates the group where it was. Binary, with magic, version
// and a CRC32C; the decoder trusts nothing (fuzz target:
// tests/fuzz/group_offsets_fuzz.cpp). Written whole to a temporary file,
// fsync'ed and renamed into place, so a crash leaves the old or the new.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringbus/group.h"
#include "ringbus/result.h"

namespace ringbus::io {

inline constexpr const char* kGroupsDirName = "groups";
inline constexpr const char* kGroupOffsetsExtension = ".offsets";

struct GroupOffsets {
  std::string name;
  GroupSettings settings;
  // Per partition: the next offset the group reads (~0: pubsub, never started).
  std::vector<std::uint64_t> committed;
};

std::vector<std::byte> encode_group_offsets(const GroupOffsets& g);
// Checks magic, version, size, CRC, and every field; the message names
// `path` and what is wrong.
Result<GroupOffsets> decode_group_offsets(std::span<const std::byte> bytes, const std::string& path);

}  // namespace ringbus::io
