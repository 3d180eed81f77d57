// topic.meta across its versions: the current one round-trips every field
// the broker keeps; older versions read with the defaults of what they lack;
// a value no version has, or a version from the future, is refused by name.
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "small_file_format.h"
#include "small_files.h"
#include "topic_meta.h"

namespace ringbus::io {
namespace {

TopicMeta sample() {
  TopicMeta m;
  m.topic_id = 42;
  m.config.name = "orders";
  m.config.partitions = 3;
  m.config.log.retention_policy = RetentionPolicy::consumed;
  m.config.log.compression = Compression::lz4;
  m.min_insync = 2;
  return m;
}

// The record rewritten as `version` (and resealed: a file that version wrote).
std::vector<std::byte> as_version(std::vector<std::byte> bytes, std::uint32_t version, std::size_t size) {
  bytes.resize(size);
  if (version < 3) std::memset(bytes.data() + offsetof(TopicMetaRecord, compression), 0, sizeof(std::uint32_t));
  seal_envelope(bytes, kTopicMetaMagic, version);
  return bytes;
}

TEST(TopicMeta, TheCurrentVersionKeepsCompressionAndEveryLogSetting) {
  auto m = decode_topic_meta(encode_topic_meta(sample()), "t/topic.meta");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->topic_id, 42u);
  EXPECT_EQ(m->config.name, "orders");
  EXPECT_EQ(m->config.log.compression, Compression::lz4);
  EXPECT_EQ(m->config.log.retention_policy, RetentionPolicy::consumed);
  EXPECT_EQ(m->min_insync, 2u);
}

TEST(TopicMeta, OlderVersionsReadAsUncompressedAndNotReplicated) {
  const std::vector<std::byte> current = encode_topic_meta(sample());
  auto v3 = decode_topic_meta(as_version(current, 3, kTopicMetaVersion3Size), "t/topic.meta");
  ASSERT_TRUE(v3.ok()) << v3.error().message;
  EXPECT_EQ(v3->config.log.compression, Compression::lz4);
  EXPECT_EQ(v3->min_insync, 0u);
  auto v2 = decode_topic_meta(as_version(current, 2, kTopicMetaVersion3Size), "t/topic.meta");
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  EXPECT_EQ(v2->config.log.compression, Compression::none);
  EXPECT_EQ(v2->config.log.retention_policy, RetentionPolicy::consumed);
  auto v1 = decode_topic_meta(as_version(current, 1, kTopicMetaVersion1Size), "t/topic.meta");
  ASSERT_TRUE(v1.ok()) << v1.error().message;
  EXPECT_EQ(v1->config.log.compression, Compression::none);
  EXPECT_EQ(v1->config.log.retention_policy, RetentionPolicy::limits);
}

// The current record with one u32 field at `offset` set to `value` (resealed).
std::vector<std::byte> with_field(std::size_t offset, std::uint32_t value) {
  std::vector<std::byte> bytes = encode_topic_meta(sample());
  std::memcpy(bytes.data() + offset, &value, sizeof value);
  seal_envelope(bytes, kTopicMetaMagic, kTopicMetaVersion);
  return bytes;
}

TEST(TopicMeta, AnUnknownCodecIsRefusedByName) {
  auto m = decode_topic_meta(with_field(offsetof(TopicMetaRecord, compression), 9), "t/topic.meta");  // brotli
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::corrupt);
  EXPECT_NE(m.error().message.find("t/topic.meta: unknown compression 9"), std::string::npos) << m.error().message;
}

TEST(TopicMeta, AMinInsyncAboveFiveReplicasIsRefusedByName) {
  auto m = decode_topic_meta(with_field(offsetof(TopicMetaRecord, min_insync), 6), "t/topic.meta");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("t/topic.meta: min_insync 6"), std::string::npos) << m.error().message;
}

TEST(TopicMeta, AVersionFromTheFutureIsRefused) {
  std::vector<std::byte> bytes = encode_topic_meta(sample());
  seal_envelope(bytes, kTopicMetaMagic, kTopicMetaVersion + 1);
  auto m = decode_topic_meta(bytes, "t/topic.meta");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::version_mismatch) << m.error().message;
}

}  // namespace
}  // namespace ringbus::io
