#include "topic_config_json.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <limits>

namespace ringbus::cluster {

using Json = nlohmann::json;

namespace {

Error bad(const std::string& what) { return Error{Errc::invalid_argument, what}; }

// Reads an unsigned integer field no larger than `max`.
Result<std::uint64_t> get_uint(const Json& j, const char* key, std::uint64_t max) {
  const Json& v = j.at(key);
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    return bad(std::string("field '") + key + "' must be a non-negative integer, not " + v.dump());
  }
  const std::uint64_t x = v.get<std::uint64_t>();
  if (x > max) return bad(std::string("field '") + key + "' is " + std::to_string(x) + "; at most " + std::to_string(max));
  return x;
}

// The unsigned fields of a topic's configuration, each once: its key, its
// largest value, and how it is read from and written into a TopicConfig.
struct UintField {
  const char* key;
  std::uint64_t max;
  Json (*get)(const TopicConfig&);
  void (*set)(TopicConfig&, std::uint64_t);
};

using Ms = std::chrono::milliseconds;
constexpr std::uint64_t kU32 = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t kU64 = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kMaxMs = std::uint64_t{1} << 50;  // ~35,000 years: no overflow in nanoseconds

Ms ms(std::uint64_t x) { return Ms(static_cast<std::int64_t>(x)); }

constexpr UintField kUintFields[] = {
    {"partitions", kU32, [](const TopicConfig& c) { return Json(c.partitions); },
     [](TopicConfig& c, std::uint64_t x) { c.partitions = static_cast<std::uint32_t>(x); }},
    {"ring_bytes", kU64, [](const TopicConfig& c) { return Json(c.ring_bytes); },
     [](TopicConfig& c, std::uint64_t x) { c.ring_bytes = x; }},
    {"max_record_size", kU32, [](const TopicConfig& c) { return Json(c.max_record_size); },
     [](TopicConfig& c, std::uint64_t x) { c.max_record_size = static_cast<std::uint32_t>(x); }},
    {"abandoned_claim_timeout_ms", kMaxMs,
     [](const TopicConfig& c) { return Json(std::chrono::duration_cast<Ms>(c.abandoned_claim_timeout).count()); },
     [](TopicConfig& c, std::uint64_t x) { c.abandoned_claim_timeout = ms(x); }},
    {"segment_bytes", kU64, [](const TopicConfig& c) { return Json(c.log.segment_bytes); },
     [](TopicConfig& c, std::uint64_t x) { c.log.segment_bytes = x; }},
    {"segment_age_ms", kMaxMs, [](const TopicConfig& c) { return Json(c.log.segment_age.count()); },
     [](TopicConfig& c, std::uint64_t x) { c.log.segment_age = ms(x); }},
    {"retention_bytes", kU64, [](const TopicConfig& c) { return Json(c.log.retention_bytes); },
     [](TopicConfig& c, std::uint64_t x) { c.log.retention_bytes = x; }},
    {"retention_age_ms", kMaxMs, [](const TopicConfig& c) { return Json(c.log.retention_age.count()); },
     [](TopicConfig& c, std::uint64_t x) { c.log.retention_age = ms(x); }},
    {"flush_interval_ms", kMaxMs, [](const TopicConfig& c) { return Json(c.log.flush_interval.count()); },
     [](TopicConfig& c, std::uint64_t x) { c.log.flush_interval = ms(x); }},
    {"flush_bytes", kU64, [](const TopicConfig& c) { return Json(c.log.flush_bytes); },
     [](TopicConfig& c, std::uint64_t x) { c.log.flush_bytes = x; }},
    {"index_interval_bytes", kU32, [](const TopicConfig& c) { return Json(c.log.index_interval_bytes); },
     [](TopicConfig& c, std::uint64_t x) { c.log.index_interval_bytes = static_cast<std::uint32_t>(x); }},
};

constexpr Durability kDurabilities[] = {Durability::page_cache, Durability::interval, Durability::every_ack};
constexpr RetentionPolicy kRetentionPolicies[] = {RetentionPolicy::limits, RetentionPolicy::consumed};
constexpr Compression kCompressions[] = {Compression::none, Compression::gzip, Compression::snappy, Compression::lz4,
                                         Compression::zstd};

}  // namespace

Json topic_config_to_json(const TopicConfig& c) {
  Json j{{"name", c.name},
         {"durability", to_string(c.log.durability)},
         {"retention_policy", to_string(c.log.retention_policy)},
         {"compression", to_string(c.log.compression)}};
  for (const UintField& f : kUintFields) j[f.key] = f.get(c);
  return j;
}

namespace {

// One of the names `values` print as, for field `key`.
template <typename Enum, std::size_t N>
Result<Enum> enum_field(const char* key, const Json& value, const Enum (&values)[N]) {
  const std::string v = value.is_string() ? value.get<std::string>() : "";
  std::string names;
  for (const Enum x : values) {
    if (v == to_string(x)) return x;
    names += std::string(names.empty() ? "" : ", ") + "\"" + to_string(x) + "\"";
  }
  return bad(std::string("field '") + key + "' must be one of " + names + ", not " + value.dump());
}

// Sets the fields present in `j` on `c`.
Status apply_topic_fields(const Json& j, TopicConfig& c) {
  for (const auto& item : j.items()) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
    const std::string& key = item.key();
    const Json& value = item.value();
    if (key == "name") {
      if (!value.is_string()) return bad("field 'name' must be a string");
      c.name = value.get<std::string>();
      continue;
    }
    if (key == "durability") {
      auto d = enum_field("durability", value, kDurabilities);
      if (!d) return d.error();
      c.log.durability = d.value();
      continue;
    }
    if (key == "retention_policy") {
      auto p = enum_field("retention_policy", value, kRetentionPolicies);
      if (!p) return p.error();
      c.log.retention_policy = p.value();
      continue;
    }
    if (key == "compression") {
      auto z = enum_field("compression", value, kCompressions);
      if (!z) return z.error();
      c.log.compression = z.value();
      continue;
    }
    const auto* f = std::find_if(std::begin(kUintFields), std::end(kUintFields),
                                 [&](const UintField& x) { return key == x.key; });
    if (f == std::end(kUintFields)) return bad("unknown field '" + key + "' in the topic configuration");
    auto v = get_uint(j, f->key, f->max);
    if (!v) return v.error();
    f->set(c, v.value());
  }
  return {};
}

}  // namespace

Result<TopicConfig> topic_config_from_json(const Json& j) {
  if (!j.is_object()) return bad("the topic configuration is not a JSON object");
  TopicConfig c;
  if (auto s = apply_topic_fields(j, c); !s) return s.error();
  if (c.name.empty()) return bad("the topic configuration has no 'name'");
  return c;
}

Result<LogConfig> log_changes_from_json(const LogConfig& current, const Json& changes) {
  if (!changes.is_object() || changes.empty()) return bad("the changes are not a non-empty JSON object");
  for (const char* fixed : {"name", "partitions", "ring_bytes", "max_record_size", "abandoned_claim_timeout_ms"}) {
    if (changes.contains(fixed)) {
      return bad(std::string("'") + fixed +
                 "' cannot be altered: it is fixed when the topic is created (it shapes the shared-memory rings "
                 "that live producers and consumers have mapped, and the partitioning of keys); create a new topic instead");
    }
  }
  TopicConfig c;
  c.log = current;
  if (auto s = apply_topic_fields(changes, c); !s) return s.error();
  return c.log;
}

Json log_config_to_json(const LogConfig& l) {
  TopicConfig c;
  c.log = l;
  Json j = topic_config_to_json(c);
  for (const char* ring : {"name", "partitions", "ring_bytes", "max_record_size", "abandoned_claim_timeout_ms"}) j.erase(ring);
  return j;
}

}  // namespace ringbus::cluster
