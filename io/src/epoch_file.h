// A partition's leader-epoch checkpoint (<partition dir>/leader-epoch-checkpoint;
// layout in small_file_format.h, prose in io/README.md "Leader epochs"):
// where each leader epoch's batches begin. The decoder trusts nothing (fuzz
// target: tests/fuzz/epoch_file_fuzz.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringbus/result.h"

namespace ringbus::io {

inline constexpr const char* kEpochFileName = "leader-epoch-checkpoint";

// Where a leader epoch's batches begin.
struct LeaderEpoch {
  std::int32_t epoch = 0;
  std::uint64_t start_offset = 0;
  bool operator==(const LeaderEpoch&) const = default;
};

std::vector<std::byte> encode_epoch_file(std::span<const LeaderEpoch> epochs);
// Checks magic, version, size, CRC, and that epochs and start offsets
// increase; Errc::corrupt or Errc::version_mismatch naming `path` and what
// is wrong.
Result<std::vector<LeaderEpoch>> decode_epoch_file(std::span<const std::byte> bytes, const std::string& path);

}  // namespace ringbus::io
