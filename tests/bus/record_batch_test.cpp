// Kafka record batches v2 (record_batch.h): round trips with every codec, and
// one test per way a batch can be refused. The cross-check against an
// encoder no one here wrote is record_batch_crosscheck.py (python3-kafka).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "compression.h"
#include "crc32c.h"
#include "record_batch.h"

namespace ringbus::log::v2 {
namespace {

constexpr Compression kCodecs[] = {Compression::none, Compression::gzip, Compression::snappy, Compression::lz4,
                                   Compression::zstd};

struct Seen {
  std::int64_t offset;
  std::int64_t ts;
  std::string key, value;
  bool has_key;
  std::vector<std::pair<std::string, std::string>> headers;
};

std::vector<Seen> records_of(const DecodedBatch& d) {
  std::vector<Seen> out;
  for_each_record(d, [&](const BatchRecord& r) {
    Seen s{r.offset, r.timestamp_ms, std::string(r.key), std::string(r.value), r.has_key, {}};
    for (const Header& h : r.headers) s.headers.emplace_back(h.name, h.value);
    out.push_back(std::move(s));
  });
  return out;
}

std::vector<std::byte> build(Compression c = Compression::none) {
  BatchBuilder b;
  b.reset(1000, 7, c);
  const Header h[] = {{"trace", "t-1"}, {"empty", ""}};
  b.append(1000, 1'700'000'000'000, "key-a", std::string(300, 'a'), h);
  b.append(1001, 1'700'000'000'005, "", "no key");
  b.cover_until(1003);  // 1001..1002: 1002 retired (an aborted claim)
  b.append(1003, 1'699'999'999'990, "key-c", "older timestamp");
  b.cover_until(1006);  // the last two retired
  const auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

// Rewrites the CRC after a test changed bytes it covers.
void reseal(std::vector<std::byte>& b) {
  std::uint32_t crc = crc32c(b.data() + kAttributesAt, b.size() - kAttributesAt);
  crc = __builtin_bswap32(crc);
  std::memcpy(b.data() + kCrcAt, &crc, 4);
}

void put_be32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(b.data() + at, &v, 4);
}

DecodedBatch decode(const std::vector<std::byte>& b) {
  static std::vector<std::byte> scratch;
  return decode_batch(b, scratch);
}

TEST(RecordBatch, RoundTripsWithEveryCodec) {
  for (const Compression c : kCodecs) {
    const auto bytes = build(c);
    const DecodedBatch d = decode(bytes);
    ASSERT_TRUE(d.ok()) << to_string(c) << ": " << d.detail;
    EXPECT_EQ(d.header.compression(), c);
    EXPECT_EQ(d.header.base_offset, 1000);
    EXPECT_EQ(d.header.leader_epoch, 7);
    EXPECT_EQ(d.header.next_offset(), 1006u);
    EXPECT_EQ(d.header.record_count, 3);
    EXPECT_EQ(d.header.base_timestamp, 1'700'000'000'000);
    EXPECT_EQ(d.header.max_timestamp, 1'700'000'000'005);
    EXPECT_EQ(d.header.producer_id, -1);
    EXPECT_EQ(d.bytes.size(), bytes.size());
    const auto r = records_of(d);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].offset, 1000);
    EXPECT_EQ(r[0].key, "key-a");
    EXPECT_EQ(r[0].value, std::string(300, 'a'));
    EXPECT_EQ(r[0].headers, (std::vector<std::pair<std::string, std::string>>{{"trace", "t-1"}, {"empty", ""}}));
    EXPECT_EQ(r[1].offset, 1001);
    EXPECT_FALSE(r[1].has_key);  // ringbus's empty key is Kafka's null key
    EXPECT_EQ(r[1].ts, 1'700'000'000'005);
    EXPECT_EQ(r[2].offset, 1003);
    EXPECT_EQ(r[2].ts, 1'699'999'999'990);  // timestamps may go back: a negative delta
  }
}

TEST(RecordBatch, CompressionShrinksRepetitiveRecords) {
  for (const Compression c : kCodecs) {
    if (c == Compression::none) continue;
    EXPECT_LT(build(c).size(), build(Compression::none).size()) << to_string(c);
  }
}

TEST(RecordBatch, AllOffsetsRetiredIsABatchWithNoRecords) {
  BatchBuilder b;
  b.reset(50);
  b.cover_until(53);
  const auto bytes = b.finish();
  const DecodedBatch d = decode({bytes.begin(), bytes.end()});
  ASSERT_TRUE(d.ok()) << d.detail;
  EXPECT_EQ(d.header.record_count, 0);
  EXPECT_EQ(d.header.next_offset(), 53u);
  EXPECT_EQ(d.header.base_timestamp, -1);
}

TEST(RecordBatch, ShorterThanAHeaderIsTruncated) {
  auto b = build();
  b.resize(60);
  EXPECT_EQ(decode(b).error, BatchError::truncated);
}

TEST(RecordBatch, ShorterThanItsLengthIsTruncated) {
  auto b = build();
  b.pop_back();
  const DecodedBatch d = decode(b);
  EXPECT_EQ(d.error, BatchError::truncated);
  EXPECT_NE(d.detail.find("batchLength says"), std::string::npos) << d.detail;
}

TEST(RecordBatch, LengthBelowAHeaderIsBadLength) {
  auto b = build();
  put_be32(b, kBatchLengthAt, 48);
  EXPECT_EQ(decode(b).error, BatchError::bad_length);
}

TEST(RecordBatch, AnotherMagicIsRefusedByName) {
  auto b = build();
  b[kMagicAt] = std::byte{1};
  const DecodedBatch d = decode(b);
  EXPECT_EQ(d.error, BatchError::bad_magic);
  EXPECT_NE(d.detail.find("magic 1"), std::string::npos) << d.detail;
}

TEST(RecordBatch, AFlippedBitIsABadCrc) {
  for (const Compression c : kCodecs) {
    auto b = build(c);
    b[b.size() - 3] ^= std::byte{0x10};
    EXPECT_EQ(decode(b).error, BatchError::bad_crc) << to_string(c);
  }
}

TEST(RecordBatch, FieldsOutsideTheCrcAreNotInIt) {
  // baseOffset, batchLength's neighbours and partitionLeaderEpoch may be
  // rewritten without touching the CRC (a broker stamps offsets and epochs).
  auto b = build();
  put_be32(b, kLeaderEpochAt, 9);
  b[kBaseOffsetAt + 7] = std::byte{0x10};
  const DecodedBatch d = decode(b);
  ASSERT_TRUE(d.ok()) << d.detail;
  EXPECT_EQ(d.header.leader_epoch, 9);
}

TEST(RecordBatch, AnUnknownCodecIsBadCompression) {
  auto b = build();
  b[kAttributesAt + 1] = std::byte{5};
  reseal(b);
  const DecodedBatch d = decode(b);
  EXPECT_EQ(d.error, BatchError::bad_compression);
  EXPECT_NE(d.detail.find("codec 5"), std::string::npos) << d.detail;
}

TEST(RecordBatch, DataTheCodecRefusesIsBadCompression) {
  for (const Compression c : kCodecs) {
    if (c == Compression::none) continue;
    auto b = build(c);
    for (std::size_t i = kRecordsAt; i < b.size(); i += 3) b[i] ^= std::byte{0x5a};
    reseal(b);
    EXPECT_EQ(decode(b).error, BatchError::bad_compression) << to_string(c);
  }
}

TEST(RecordBatch, ACompressionBombIsRefusedAtTheLimit) {
  BatchBuilder bb;
  bb.reset(0, 0, Compression::zstd);
  bb.append(0, 1, "k", std::string(4 << 20, 'z'));
  const auto bytes = bb.finish();
  std::vector<std::byte> scratch;
  const DecodedBatch d = decode_batch(bytes, scratch, 1 << 20);
  EXPECT_EQ(d.error, BatchError::bad_compression);
  EXPECT_NE(d.detail.find("more than 1048576 bytes"), std::string::npos) << d.detail;
  EXPECT_LE(scratch.size(), 1u << 20);
}

TEST(RecordBatch, ACountThatDisagreesWithTheRecordsIsABadRecord) {
  auto b = build();
  put_be32(b, kRecordCountAt, 4);
  reseal(b);
  EXPECT_EQ(decode(b).error, BatchError::bad_record);
  put_be32(b, kRecordCountAt, 2);
  reseal(b);
  const DecodedBatch d = decode(b);
  EXPECT_EQ(d.error, BatchError::bad_record);
  EXPECT_NE(d.detail.find("bytes after the last of 2 records"), std::string::npos) << d.detail;
}

TEST(RecordBatch, MoreRecordsThanOffsetsIsABadRecord) {
  auto b = build();
  put_be32(b, kLastOffsetDeltaAt, 1);  // 2 offsets, 3 records
  reseal(b);
  EXPECT_EQ(decode(b).error, BatchError::bad_record);
}

// A batch of two small records, at offsets 0 and `second`.
std::vector<std::byte> two_records(std::uint64_t second) {
  BatchBuilder bb;
  bb.reset(0);
  bb.append(0, 1, "k", "v");
  bb.append(second, 1, "k", "v");
  const auto bytes = bb.finish();
  return {bytes.begin(), bytes.end()};
}

TEST(RecordBatch, AnOffsetDeltaPastLastOffsetDeltaIsABadRecord) {
  auto b = two_records(5);
  put_be32(b, kLastOffsetDeltaAt, 3);
  reseal(b);
  EXPECT_EQ(decode(b).error, BatchError::bad_record);
}

TEST(RecordBatch, OffsetDeltasThatDoNotIncreaseAreABadRecord) {
  auto b = two_records(1);
  // The second record's offset delta (after length, attributes, ts delta) from 1 to 0.
  const std::size_t second = kRecordsAt + 1 + static_cast<std::size_t>(b[kRecordsAt]) / 2;
  ASSERT_EQ(b[second + 3], std::byte{2});  // zigzag(1)
  b[second + 3] = std::byte{0};
  reseal(b);
  const DecodedBatch d = decode(b);
  EXPECT_EQ(d.error, BatchError::bad_record);
  EXPECT_NE(d.detail.find("offset delta 0, not above 0"), std::string::npos) << d.detail;
}

TEST(RecordBatch, ANegativeBaseOffsetIsABadRecord) {
  auto b = build();
  b[kBaseOffsetAt] = std::byte{0x80};
  EXPECT_EQ(decode(b).error, BatchError::bad_record);
}

TEST(RecordBatch, LogAppendTimeGivesEveryRecordTheMaxTimestamp) {
  auto b = build();
  b[kAttributesAt + 1] |= std::byte{kLogAppendTime};
  reseal(b);
  const DecodedBatch d = decode(b);
  ASSERT_TRUE(d.ok()) << d.detail;
  for (const Seen& s : records_of(d)) EXPECT_EQ(s.ts, d.header.max_timestamp);
}

TEST(RecordBatch, HeadersAreTheRingsEncodingAsIs) {
  // Kafka's header block: count 2; "a" -> null; "b" -> "xy". The ring stores
  // the same encoding, so HeaderView reads both.
  const unsigned char block[] = {4, 2, 'a', 1, 2, 'b', 4, 'x', 'y'};
  const HeaderView v(std::string_view(reinterpret_cast<const char*>(block), sizeof block));
  ASSERT_TRUE(v.valid());
  std::vector<std::pair<std::string, std::string>> seen;
  for (const Header& h : v) seen.emplace_back(h.name, h.value);
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::string>>{{"a", ""}, {"b", "xy"}}));
  const unsigned char none[] = {0};
  EXPECT_TRUE(HeaderView(std::string_view(reinterpret_cast<const char*>(none), 1)).empty());
  EXPECT_TRUE(HeaderView().empty());
  const unsigned char short_count[] = {6, 2, 'a', 0};  // says 3 headers, holds 1
  EXPECT_FALSE(HeaderView(std::string_view(reinterpret_cast<const char*>(short_count), sizeof short_count)).valid());
}

TEST(Compression, RawSnappyIsReadAsWellAsXerialFraming) {
  const std::string text(1000, 'q');
  std::vector<std::byte> xerial;
  compress(Compression::snappy, std::as_bytes(std::span(text)), xerial);
  ASSERT_EQ(static_cast<unsigned char>(xerial[0]), 0x82);
  // The xerial framing's one block, without the framing: raw snappy.
  const std::span raw = std::span<const std::byte>(xerial).subspan(20);
  std::vector<std::byte> out;
  std::string error;
  ASSERT_TRUE(decompress(Compression::snappy, raw, 1 << 20, out, error)) << error;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out.data()), out.size()), text);
}

}  // namespace
}  // namespace ringbus::log::v2
