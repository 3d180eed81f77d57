// The ringbus side of record_batch_crosscheck.py (python3-kafka):
//   record_batch_tool encode CODEC FILE   writes the batch the script expects
//   record_batch_tool decode FILE         prints the batch in FILE as JSON
// The batch: base offset 5000, leader epoch 3, 40 records (offsets 5000-5019
// and 5022-5041: two retired between them, two more after the last),
// timestamps 1700000000000 + 3i ms, key "key-i" (none when i % 7 == 0),
// a compressible value, headers on every fifth record.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compression.h"
#include "record_batch.h"

namespace v2 = ringbus::log::v2;

namespace {

int encode(const std::string& codec_name, const std::string& path) {
  v2::Compression codec = v2::Compression::none;
  for (int c = 0; c <= 4; ++c) {
    if (codec_name == ringbus::to_string(static_cast<v2::Compression>(c))) codec = static_cast<v2::Compression>(c);
  }
  v2::BatchBuilder b;
  b.reset(5000, 3, codec);
  for (int i = 0; i < 40; ++i) {
    const std::uint64_t offset = 5000 + i + (i >= 20 ? 2 : 0);
    b.cover_until(offset);
    const std::string key = i % 7 == 0 ? "" : "key-" + std::to_string(i);
    const std::string value = "value-" + std::to_string(i) + "-" + std::string(100, 'x');
    const std::string hv = "v" + std::to_string(i);
    std::vector<ringbus::Header> headers;
    if (i % 5 == 0) headers = {{"h", hv}, {"n", ""}};
    b.append(offset, 1'700'000'000'000 + 3 * i, key, value, headers);
  }
  b.cover_until(5044);
  const auto bytes = b.finish();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return 0;
}

int decode(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> scratch;
  const v2::DecodedBatch d = v2::decode_batch(std::as_bytes(std::span(text)), scratch);
  if (!d.ok()) {
    std::fprintf(stderr, "%s: %s: %s\n", path.c_str(), v2::to_string(d.error), d.detail.c_str());
    return 1;
  }
  nlohmann::json j = {{"base_offset", d.header.base_offset},     {"leader_epoch", d.header.leader_epoch},
                      {"compression", ringbus::to_string(d.header.compression())},
                      {"next_offset", d.header.next_offset()},  {"record_count", d.header.record_count},
                      {"size", d.bytes.size()},                {"records", nlohmann::json::array()}};
  v2::for_each_record(d, [&](const v2::BatchRecord& r) {
    nlohmann::json headers = nlohmann::json::array();
    for (const ringbus::Header& h : r.headers) headers.push_back({h.name, h.value});
    j["records"].push_back({{"offset", r.offset},
                            {"timestamp", r.timestamp_ms},
                            {"key", r.has_key ? nlohmann::json(r.key) : nlohmann::json()},
                            {"value", r.value},
                            {"headers", headers}});
  });
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "encode") return encode(argv[2], argv[3]);
  if (argc == 3 && std::string(argv[1]) == "decode") return decode(argv[2]);
  std::fprintf(stderr, "usage: record_batch_tool encode none|gzip|snappy|lz4|zstd FILE\n"
                       "       record_batch_tool decode FILE\n");
  return 2;
}
