// A topic's configuration as stored in its log directory
// (<data-dir>/<topic>/topic.meta), so that a restarted broker recreates the
// topic with the same settings. Binary, with magic, version and a CRC32C;
// the decoder trusts nothing (fuzz target: tests/fuzz/topic_meta_fuzz.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringbus/result.h"
#include "ringbus/topic.h"

namespace ringbus::io {

inline constexpr const char* kTopicMetaName = "topic.meta";

struct TopicMeta {
  TopicConfig config;
  std::uint64_t topic_id = 0;
  // A cluster's topic (cluster/README.md): how many in-sync replicas
  // acks=all needs. 0: not replicated. The broker stamps it into the
  // topic's rings, so that producers and consumers treat the topic as
  // replicated from its first record, before a leader publishes a high
  // watermark.
  std::uint32_t min_insync = 0;
};

std::vector<std::byte> encode_topic_meta(const TopicMeta& meta);
// Checks magic, version, size, CRC, and every field (validate_topic_config);
// the message names `path` and what is wrong.
Result<TopicMeta> decode_topic_meta(std::span<const std::byte> bytes, const std::string& path);
// Reads and decodes `dir`/topic.meta (a read error, or decode_topic_meta's).
Result<TopicMeta> read_topic_meta(const std::string& dir);

}  // namespace ringbus::io
