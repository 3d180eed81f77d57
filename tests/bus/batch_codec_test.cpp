// The on-disk batch: CRC32C, round trip, and one test per corruption case.
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "batch_codec.h"
#include "crc32c.h"

namespace ringbus::log {
namespace {

std::vector<std::byte> copy(std::span<const std::byte> s) { return {s.begin(), s.end()}; }

std::vector<std::byte> sample_batch(std::uint64_t base = 100) {
  BatchBuilder b;
  b.reset(base);
  b.append_record(base, 1'000, "k0", "first");
  b.append_record(base + 1, 3'000, "", std::string(100, 'v'));
  b.skip_offsets(1);  // offset base+2 was retired
  b.append_record(base + 3, 2'000, "k3", "");
  return copy(b.finish());
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the check value of CRC-32C
  EXPECT_EQ(crc32c("", 0), 0u);
  const std::vector<unsigned char> zeros(32, 0);
  const std::vector<unsigned char> ones(32, 0xFF);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
}

TEST(Crc32c, ExtendsIncrementally) {
  const std::string s = "the quick brown fox jumps over the lazy dog";
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    EXPECT_EQ(crc32c(s.data() + cut, s.size() - cut, crc32c(s.data(), cut)), crc32c(s.data(), s.size())) << cut;
  }
}

// Large buffers take three interleaved streams joined by carry-less
// multiplies: every length and alignment around the block sizes (3 x 256,
// 3 x 4096) agrees with the plain bit-at-a-time definition.
TEST(Crc32c, ThreeStreamsAgreeWithTheDefinition) {
  const auto reference = [](const unsigned char* p, std::size_t n, std::uint32_t crc) {
    crc = ~crc;
    for (std::size_t i = 0; i < n; ++i) {
      crc ^= p[i];
      for (int k = 0; k < 8; ++k) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
  };
  std::vector<unsigned char> data(3 * 4096 * 3 + 64);
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (unsigned char& b : data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b = static_cast<unsigned char>(x);
  }
  for (const std::size_t n : {std::size_t{767}, std::size_t{768}, std::size_t{769}, std::size_t{1000},
                              std::size_t{12287}, std::size_t{12288}, std::size_t{12289}, std::size_t{13056},
                              std::size_t{30000}, data.size() - 7}) {
    for (const std::size_t at : {std::size_t{0}, std::size_t{1}, std::size_t{5}}) {
      EXPECT_EQ(crc32c(data.data() + at, n), reference(data.data() + at, n, 0)) << n << " at " << at;
      EXPECT_EQ(crc32c(data.data() + at, n, 0x12345678u), reference(data.data() + at, n, 0x12345678u)) << n;
    }
  }
}

TEST(BatchCodec, RoundTripKeepsRecordsOffsetsAndRetiredOffsets) {
  const auto bytes = sample_batch();
  const DecodedBatch d = decode_batch(bytes);
  ASSERT_TRUE(d.ok()) << to_string(d.error) << ": " << d.detail;
  EXPECT_EQ(d.header.base_offset, 100u);
  EXPECT_EQ(d.header.offset_span, 4u);
  EXPECT_EQ(d.header.record_count, 3u);
  EXPECT_EQ(d.header.first_timestamp_ns, 1'000);
  EXPECT_EQ(d.header.max_timestamp_ns, 3'000);
  EXPECT_EQ(d.header.batch_length % kBatchAlign, 0u);
  std::vector<std::pair<std::uint64_t, std::string>> seen;
  for_each_record(d, 7, [&](const Record& r) {
    EXPECT_EQ(r.partition, 7u);
    seen.emplace_back(r.offset, std::string(r.key) + "=" + std::string(r.value.substr(0, 5)));
  });
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], std::make_pair(std::uint64_t{100}, std::string("k0=first")));
  EXPECT_EQ(seen[1], std::make_pair(std::uint64_t{101}, std::string("=vvvvv")));
  EXPECT_EQ(seen[2], std::make_pair(std::uint64_t{103}, std::string("k3=")));
}

TEST(BatchCodec, TrailingBytesAfterABatchAreNotItsBusiness) {
  auto bytes = sample_batch();
  const std::size_t len = bytes.size();
  bytes.resize(len + 1000, std::byte{0x5A});
  const DecodedBatch d = decode_batch(bytes);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.header.batch_length, len);
}

TEST(BatchCodec, TornBatchAtEveryLengthIsTruncated) {
  const auto bytes = sample_batch();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const DecodedBatch d = decode_batch(std::span(bytes).first(n));
    EXPECT_EQ(d.error, BatchError::truncated) << "cut at " << n;
  }
}

TEST(BatchCodec, BitFlipAnywhereIsCaught) {
  const auto good = sample_batch();
  for (std::size_t byte = 0; byte < good.size(); ++byte) {
    for (int bit = 0; bit < 8; bit += 3) {
      auto bad = good;
      bad[byte] ^= static_cast<std::byte>(1 << bit);
      const DecodedBatch d = decode_batch(bad);
      EXPECT_FALSE(d.ok()) << "flip of bit " << bit << " in byte " << byte << " went unnoticed";
    }
  }
}

TEST(BatchCodec, ZeroedBytesAreNoBatch) {
  const std::vector<std::byte> zeros(4096, std::byte{0});
  EXPECT_EQ(decode_batch(zeros).error, BatchError::bad_magic);
}

TEST(BatchCodec, OtherVersionIsRefusedByVersion) {
  auto bytes = sample_batch();
  const std::uint16_t v = kBatchVersion + 1;
  std::memcpy(bytes.data() + offsetof(BatchHeader, version), &v, sizeof v);
  const DecodedBatch d = decode_batch(bytes);
  EXPECT_EQ(d.error, BatchError::bad_version);
  EXPECT_NE(d.detail.find("version 2"), std::string::npos) << d.detail;
}

TEST(BatchCodec, LengthOutOfRangeIsRefusedBeforeReadingIt) {
  auto bytes = sample_batch();
  for (const std::uint32_t len : {0u, 63u, 65u, kMaxBatchLength + kBatchAlign}) {
    auto bad = bytes;
    std::memcpy(bad.data() + offsetof(BatchHeader, batch_length), &len, sizeof len);
    EXPECT_EQ(decode_batch(bad).error, BatchError::bad_length) << len;
  }
}

// A batch with a valid CRC whose records are inconsistent: only a buggy
// writer makes one, and the decoder still refuses it.
TEST(BatchCodec, RecordsOutOfOrderWithAValidCrcAreRefused) {
  BatchBuilder b;
  b.reset(10);
  b.append_record(11, 0, "", "a");
  b.append_record(10, 0, "", "b");  // goes backwards
  const auto bytes = copy(b.finish());
  const DecodedBatch d = decode_batch(bytes);
  EXPECT_EQ(d.error, BatchError::bad_record);
  EXPECT_NE(d.detail.find("out of order"), std::string::npos) << d.detail;
}

TEST(BatchCodec, EmptyBatchOfRetiredOffsetsIsValid) {
  BatchBuilder b;
  b.reset(5);
  b.skip_offsets(3);
  const DecodedBatch d = decode_batch(copy(b.finish()));
  ASSERT_TRUE(d.ok()) << d.detail;
  EXPECT_EQ(d.header.offset_span, 3u);
  EXPECT_EQ(d.header.record_count, 0u);
}

}  // namespace
}  // namespace ringbus::log
