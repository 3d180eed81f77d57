#include "control_protocol.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <iterator>
#include <limits>
#include <utility>

namespace ringbus::control {

namespace {

constexpr std::array<std::pair<Errc, const char*>, 8> kCodes = {{
    {Errc::invalid_argument, "invalid_argument"},
    {Errc::not_found, "not_found"},
    {Errc::already_exists, "already_exists"},
    {Errc::version_mismatch, "version_mismatch"},
    {Errc::corrupt, "corrupt"},
    {Errc::io_error, "io_error"},
    {Errc::deleted, "deleted"},
    {Errc::busy, "busy"},
}};

const char* code_name(Errc e) {
  for (const auto& [c, n] : kCodes) {
    if (c == e) return n;
  }
  return "io_error";
}

Errc code_from_name(std::string_view s) {
  for (const auto& [c, n] : kCodes) {
    if (s == n) return c;
  }
  return Errc::io_error;
}

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

}  // namespace

std::string socket_path(std::string_view instance) { return instance_directory(instance) + "/control.sock"; }

Result<Json> parse_request(std::string_view line) {
  Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("the request is not valid JSON");
  if (!j.is_object()) return bad("the request is not a JSON object");
  if (!j.contains("v") || !j["v"].is_number_integer()) return bad("the request has no protocol version (\"v\")");
  if (j["v"].get<std::int64_t>() != kProtocolVersion) {
    return Error{Errc::version_mismatch, "the client speaks control protocol version " + j["v"].dump() +
                                             "; this broker speaks version " + std::to_string(kProtocolVersion)};
  }
  if (!j.contains("op") || !j["op"].is_string()) return bad("the request has no operation (\"op\")");
  return j;
}

namespace {

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

Json topic_info_to_json(const TopicInfo& info) {
  Json parts = Json::array();
  for (const PartitionInfo& p : info.partition_info) {
    parts.push_back(Json{
        {"partition", p.partition},
        {"end_offset", p.end_offset},
        {"gating_readers", p.gating_readers},
        {"has_log", p.has_log},
        {"log_start_offset", p.log_start_offset},
        {"written_offset", p.written_offset},
        {"durable_offset", p.durable_offset},
        {"log_error", p.log_error},
        {"offline", p.offline},
        {"damaged_segments", p.damaged_segments},
    });
  }
  Json j{
      {"name", info.name},
      {"topic_id", info.topic_id},
      {"partitions", info.partitions},
      {"ring_bytes", info.ring_bytes},
      {"max_record_size", info.max_record_size},
      {"abandoned_claim_timeout_ms",
       std::chrono::duration_cast<std::chrono::milliseconds>(info.abandoned_claim_timeout).count()},
      {"partition_info", std::move(parts)},
  };
  if (info.log) j["log"] = log_config_to_json(*info.log);
  return j;
}

Json group_info_to_json(const GroupInfo& info) {
  Json members = Json::array();
  for (const GroupMemberInfo& m : info.members) {
    members.push_back(Json{{"slot", m.slot},
                           {"pid", m.pid},
                           {"client", m.client},
                           {"joined_ns", m.joined_ns},
                           {"heartbeat_age_ms", m.heartbeat_age_ns / 1'000'000},
                           {"partitions", m.partitions}});
  }
  Json parts = Json::array();
  for (const GroupPartitionInfo& p : info.partitions) {
    parts.push_back(Json{{"partition", p.partition},
                         {"committed", p.has_committed ? Json(p.committed) : Json(nullptr)},
                         {"end_offset", p.end_offset},
                         {"lag", p.lag},
                         {"in_flight", p.in_flight},
                         {"redelivered", p.redelivered},
                         {"dead_lettered", p.dead_lettered}});
  }
  const GroupSettings& s = info.settings;
  return Json{{"topic", info.topic},
              {"name", info.name},
              {"mode", to_string(s.mode)},
              {"start", s.start == StartPosition::Kind::earliest ? "earliest" : "latest"},
              {"lease_ms", s.lease.count()},
              {"max_deliveries", s.max_deliveries},
              {"dead_letter_topic", s.dead_letter_topic},
              {"session_timeout_ms", s.session_timeout.count()},
              {"generation", info.generation},
              {"members", std::move(members)},
              {"partitions", std::move(parts)}};
}

Json error_response(const Error& e) { return Json{{"ok", false}, {"code", code_name(e.code)}, {"error", e.message}}; }

Status response_status(const Json& r) {
  if (!r.is_object() || !r.contains("ok") || !r["ok"].is_boolean()) {
    return Error{Errc::corrupt, "the broker's response is malformed (no \"ok\")"};
  }
  if (r["ok"].get<bool>()) return {};
  const std::string msg = r.contains("error") && r["error"].is_string() ? r["error"].get<std::string>()
                                                                       : std::string("the broker refused (no reason given)");
  const Errc code = r.contains("code") && r["code"].is_string() ? code_from_name(r["code"].get<std::string>()) : Errc::io_error;
  return Error{code, msg};
}

}  // namespace ringbus::control
