// Fuzz target: the Kafka record batch v2 decoder (record_batch.h), which
// will read what recovery finds on disk, what mirrors send and what Kafka
// clients produce, compressed or not. Must never read outside the input (or
// its decompressed records), every refusal says why, and whatever it accepts
// survives a re-encode: the same records, offsets, timestamps and headers.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "record_batch.h"

using namespace ringbus;
namespace v2 = ringbus::log::v2;

std::vector<std::string> fuzz_seeds() {
  std::vector<std::string> seeds;
  for (const v2::Compression c : {v2::Compression::none, v2::Compression::gzip, v2::Compression::snappy,
                                  v2::Compression::lz4, v2::Compression::zstd}) {
    v2::BatchBuilder b;
    b.reset(42, 3, c);
    const Header h[] = {{"trace", "abc"}};
    b.append(42, 1'700'000'000'000, "key", "value", h);
    b.append(45, 1'700'000'000'007, "", std::string(70, 'x'));
    b.cover_until(48);
    const auto bytes = b.finish();
    seeds.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  return seeds;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> buf(size);  // exact size, so ASan sees any overread
  if (size != 0) std::memcpy(buf.data(), data, size);
  std::vector<std::byte> scratch;
  const v2::DecodedBatch d = v2::decode_batch(buf, scratch, 1 << 20);
  if (!d.ok()) {
    if (d.detail.empty()) std::abort();  // every refusal says why
    return 0;
  }
  if (d.bytes.size() > size || d.header.size() != d.bytes.size()) std::abort();
  struct Copy {
    std::int64_t offset, ts;
    std::string key, value;
    std::vector<std::pair<std::string, std::string>> headers;
  };
  std::vector<Copy> records;
  v2::for_each_record(d, [&](const v2::BatchRecord& r) {
    if (r.offset < d.header.base_offset || static_cast<std::uint64_t>(r.offset) >= d.header.next_offset()) std::abort();
    Copy c{r.offset, r.timestamp_ms, std::string(r.key), std::string(r.value), {}};
    if (!r.headers.valid()) std::abort();  // decode_batch checked them
    for (const Header& h : r.headers) c.headers.emplace_back(h.name, h.value);
    records.push_back(std::move(c));
  });
  if (records.size() != static_cast<std::size_t>(d.header.record_count)) std::abort();
  // Re-encoded, it reads back the same (keys and values: a null reads as empty).
  v2::BatchBuilder b;
  b.reset(static_cast<std::uint64_t>(d.header.base_offset), d.header.leader_epoch);
  for (const Copy& c : records) {
    std::vector<Header> hs;
    for (const auto& [name, value] : c.headers) hs.push_back({name, value});
    b.append(static_cast<std::uint64_t>(c.offset), c.ts, c.key, c.value, hs);
  }
  b.cover_until(d.header.next_offset());
  const auto again = b.finish();
  std::vector<std::byte> scratch2;
  const v2::DecodedBatch e = v2::decode_batch(again, scratch2);
  if (!e.ok() || e.header.next_offset() != d.header.next_offset() || e.header.record_count != d.header.record_count) std::abort();
  std::size_t i = 0;
  v2::for_each_record(e, [&](const v2::BatchRecord& r) {
    const Copy& c = records[i++];
    if (r.offset != c.offset || r.key != c.key || r.value != c.value) std::abort();
    if ((d.header.attributes & v2::kLogAppendTime) == 0 && r.timestamp_ms != c.ts) std::abort();
  });
  return 0;
}
