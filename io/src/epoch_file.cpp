#include "epoch_file.h"

#include <cstring>

#include "small_file_format.h"
#include "small_files.h"

namespace ringbus::io {

std::vector<std::byte> encode_epoch_file(std::span<const LeaderEpoch> epochs) {
  std::vector<std::byte> bytes(sizeof(EpochFileHeader) + epochs.size() * sizeof(EpochEntry));
  EpochFileHeader h{};
  h.count = static_cast<std::uint32_t>(epochs.size());
  std::memcpy(bytes.data(), &h, sizeof h);
  for (std::size_t i = 0; i < epochs.size(); ++i) {
    const EpochEntry e{epochs[i].epoch, 0, epochs[i].start_offset};
    std::memcpy(bytes.data() + sizeof h + i * sizeof e, &e, sizeof e);
  }
  seal_envelope(bytes, kEpochFileMagic, kEpochFileVersion);
  return bytes;
}

Result<std::vector<LeaderEpoch>> decode_epoch_file(std::span<const std::byte> bytes, const std::string& path) {
  auto version = open_envelope(bytes, kEpochFileMagic, kEpochFileVersion, kEpochFileVersion, path, "leader-epoch file");
  if (!version) return version.error();
  const auto corrupt = [&](const std::string& what) { return Error{Errc::corrupt, path + ": " + what}; };
  EpochFileHeader h{};
  if (bytes.size() < sizeof h) return corrupt("shorter than its header (" + std::to_string(bytes.size()) + " bytes)");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (bytes.size() != sizeof h + std::uint64_t{h.count} * sizeof(EpochEntry)) {
    return corrupt(std::to_string(bytes.size()) + " bytes where " + std::to_string(h.count) + " entries were announced");
  }
  if (!envelope_crc_ok(bytes)) return corrupt("its CRC does not match");
  if (h.reserved != 0) return corrupt("a reserved field is not zero");
  std::vector<LeaderEpoch> epochs;
  epochs.reserve(h.count);
  for (std::uint32_t i = 0; i < h.count; ++i) {
    EpochEntry e{};
    std::memcpy(&e, bytes.data() + sizeof h + i * sizeof e, sizeof e);
    if (e.epoch < 0) return corrupt("entry " + std::to_string(i) + " has a negative epoch");
    if (e.reserved != 0) return corrupt("entry " + std::to_string(i) + " has a reserved field that is not zero");
    if (!epochs.empty() && (e.epoch <= epochs.back().epoch || e.start_offset < epochs.back().start_offset)) {
      return corrupt("entry " + std::to_string(i) + " does not increase");
    }
    epochs.push_back({e.epoch, e.start_offset});
  }
  return epochs;
}

}  // namespace ringbus::io
