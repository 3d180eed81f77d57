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
        {"exclusive_owner", p.exclusive_owner},
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
  if (info.mirror) j["mirror"] = true;
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
