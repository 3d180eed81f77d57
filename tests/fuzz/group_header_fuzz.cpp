// Fuzz target: the group file header check every client runs before it
// trusts a consumer group's shared memory. Never reads outside the input;
// whatever it accepts has a file size that matches the layout.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "group_file.h"

using namespace ringbus::detail;

std::vector<std::string> fuzz_seeds() {
  std::vector<std::byte> file(group_file_size(1, 0));
  GroupIdentity id{};
  id.magic = kGroupMagic;
  id.layout_version = kGroupLayoutVersion;
  id.header_size = sizeof(GroupHeader);
  id.file_size = file.size();
  id.partition_count = 1;
  id.mode = static_cast<std::uint32_t>(GroupModeCode::pubsub);
  id.lease_ns = 30'000'000'000ULL;
  id.session_timeout_ns = 10'000'000'000ULL;
  id.start = static_cast<std::uint32_t>(GroupStartCode::latest);
  std::memcpy(id.group_name, "g", 2);
  std::memcpy(file.data(), &id, sizeof id);
  return {std::string(reinterpret_cast<const char*>(file.data()), file.size())};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> buf(size);
  if (size != 0) std::memcpy(buf.data(), data, size);
  const auto s = validate_group_header(buf.data(), buf.size(), "fuzz/group");
  if (!s) {
    if (s.error().message.empty()) std::abort();
    return 0;
  }
  GroupIdentity id;
  std::memcpy(&id, buf.data(), sizeof id);
  if (id.file_size != size || group_file_size(id.partition_count, id.chunk_slots) != size) std::abort();
  return 0;
}
