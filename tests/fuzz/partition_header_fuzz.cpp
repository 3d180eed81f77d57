// Fuzz target: the check a client makes of a partition file's header before
// it trusts the file (validate_partition_header). Must never read past the
// bytes it is given, never crash, and accept only self-consistent headers.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "partition_format.h"
#include "topic_files.h"

using namespace ringbus::detail;

std::vector<std::string> fuzz_seeds() {
  // A valid header of a 64 KiB ring (the seed is the header only, so the
  // size check fails on it; mutations explore each earlier check).
  PartitionIdentity id{};
  id.magic = kPartitionMagic;
  id.layout_version = kLayoutVersion;
  id.header_size = sizeof(PartitionHeader);
  id.ring_capacity = 64 * 1024;
  id.entry_count = id.ring_capacity / kFrameAlign;
  id.file_size = partition_file_size(id.ring_capacity);
  id.max_record_size = 1000;
  id.partition_count = 1;
  id.gating_slot_count = kGatingSlots;
  id.abandoned_claim_timeout_ns = 1'000'000'000;
  std::memcpy(id.topic_name, "t", 1);
  std::string bytes(sizeof(PartitionHeader), '\0');
  std::memcpy(bytes.data(), &id, sizeof id);
  return {bytes};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Copy into an exactly-sized heap buffer so ASan catches any overread.
  std::vector<std::byte> buf(size);
  if (size != 0) std::memcpy(buf.data(), data, size);
  const auto s = validate_partition_header(buf.data(), size, "fuzz-input");
  if (s.ok()) {
    PartitionIdentity id{};
    std::memcpy(&id, buf.data(), sizeof id);
    if (id.file_size != size || id.magic != kPartitionMagic) std::abort();
  } else if (s.error().message.empty()) {
    std::abort();  // every refusal says why
  }
  return 0;
}
