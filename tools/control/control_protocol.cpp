#include "control_protocol.h"

#include <array>
#include <limits>
#include <utility>

namespace ringbus::control {

namespace {

constexpr std::array<std::pair<Errc, const char*>, 7> kCodes = {{
    {Errc::invalid_argument, "invalid_argument"},
    {Errc::not_found, "not_found"},
    {Errc::already_exists, "already_exists"},
    {Errc::version_mismatch, "version_mismatch"},
    {Errc::corrupt, "corrupt"},
    {Errc::io_error, "io_error"},
    {Errc::deleted, "deleted"},
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

const char* durability_name(Durability d) {
  switch (d) {
    case Durability::page_cache: return "page_cache";
    case Durability::interval: return "interval";
    case Durability::every_ack: return "every_ack";
  }
  return "interval";
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

Json topic_config_to_json(const TopicConfig& c) {
  return Json{
      {"name", c.name},
      {"partitions", c.partitions},
      {"ring_bytes", c.ring_bytes},
      {"max_record_size", c.max_record_size},
      {"abandoned_claim_timeout_ms",
       std::chrono::duration_cast<std::chrono::milliseconds>(c.abandoned_claim_timeout).count()},
      {"segment_bytes", c.log.segment_bytes},
      {"segment_age_ms", c.log.segment_age.count()},
      {"retention_bytes", c.log.retention_bytes},
      {"retention_age_ms", c.log.retention_age.count()},
      {"durability", durability_name(c.log.durability)},
      {"flush_interval_ms", c.log.flush_interval.count()},
      {"flush_bytes", c.log.flush_bytes},
      {"index_interval_bytes", c.log.index_interval_bytes},
  };
}

Result<TopicConfig> topic_config_from_json(const Json& j) {
  if (!j.is_object()) return bad("the topic configuration is not a JSON object");
  TopicConfig c;
  constexpr std::uint64_t u32 = std::numeric_limits<std::uint32_t>::max();
  constexpr std::uint64_t u64 = std::numeric_limits<std::uint64_t>::max();
  constexpr std::uint64_t ms_max = std::uint64_t{1} << 50;  // ~35,000 years: no overflow in nanoseconds below
  for (const auto& [key, value] : j.items()) {
    const char* k = key.c_str();
    if (key == "name") {
      if (!value.is_string()) return bad("field 'name' must be a string");
      c.name = value.get<std::string>();
      continue;
    }
    if (key == "durability") {
      const std::string d = value.is_string() ? value.get<std::string>() : "";
      if (d == "page_cache") {
        c.log.durability = Durability::page_cache;
      } else if (d == "interval") {
        c.log.durability = Durability::interval;
      } else if (d == "every_ack") {
        c.log.durability = Durability::every_ack;
      } else {
        return bad("field 'durability' must be \"page_cache\", \"interval\" or \"every_ack\", not " + value.dump());
      }
      continue;
    }
    std::uint64_t limit = 0;
    if (key == "partitions" || key == "max_record_size" || key == "index_interval_bytes") {
      limit = u32;
    } else if (key == "ring_bytes" || key == "segment_bytes" || key == "retention_bytes" || key == "flush_bytes") {
      limit = u64;
    } else if (key == "abandoned_claim_timeout_ms" || key == "segment_age_ms" || key == "retention_age_ms" ||
               key == "flush_interval_ms") {
      limit = ms_max;
    } else {
      return bad("unknown field '" + key + "' in the topic configuration");
    }
    auto v = get_uint(j, k, limit);
    if (!v) return v.error();
    const std::uint64_t x = v.value();
    const auto ms = std::chrono::milliseconds(static_cast<std::int64_t>(x));
    if (key == "partitions") c.partitions = static_cast<std::uint32_t>(x);
    if (key == "max_record_size") c.max_record_size = static_cast<std::uint32_t>(x);
    if (key == "index_interval_bytes") c.log.index_interval_bytes = static_cast<std::uint32_t>(x);
    if (key == "ring_bytes") c.ring_bytes = x;
    if (key == "segment_bytes") c.log.segment_bytes = x;
    if (key == "retention_bytes") c.log.retention_bytes = x;
    if (key == "flush_bytes") c.log.flush_bytes = x;
    if (key == "abandoned_claim_timeout_ms") c.abandoned_claim_timeout = ms;
    if (key == "segment_age_ms") c.log.segment_age = ms;
    if (key == "retention_age_ms") c.log.retention_age = ms;
    if (key == "flush_interval_ms") c.log.flush_interval = ms;
  }
  if (c.name.empty()) return bad("the topic configuration has no 'name'");
  return c;
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
    });
  }
  return Json{
      {"name", info.name},
      {"topic_id", info.topic_id},
      {"partitions", info.partitions},
      {"ring_bytes", info.ring_bytes},
      {"max_record_size", info.max_record_size},
      {"abandoned_claim_timeout_ms",
       std::chrono::duration_cast<std::chrono::milliseconds>(info.abandoned_claim_timeout).count()},
      {"partition_info", std::move(parts)},
  };
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
