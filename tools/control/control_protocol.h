// The control channel between ringbusd and its clients (the ringbus CLI, the
// tests): admin requests only, never records. Spec in tools/README.md,
// "Control channel".
//
// A Unix stream socket, <instance directory>/control.sock. Each request and
// each response is one line of JSON (at most kMaxLineBytes with its '\n').
// Every request names the protocol version it speaks ("v") and an operation
// ("op"); every response says "ok": true with the operation's fields, or
// "ok": false with "error" (a sentence naming what is wrong) and "code".
//
// This file holds the parts both sides share: the socket's path, the framing
// limits, and the strict decoding of the values inside requests (a topic's
// configuration, in the JSON form a cluster also keeps in etcd). Decoding
// refuses unknown fields and values of the wrong type or range, naming the
// field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ringbus/result.h"
#include "ringbus/group.h"
#include "ringbus/topic.h"
#include "topic_config_json.h"

namespace ringbus::control {

inline constexpr int kProtocolVersion = 1;
inline constexpr std::size_t kMaxLineBytes = 1 << 20;

using Json = nlohmann::json;

// <instance directory>/control.sock
std::string socket_path(std::string_view instance);

// Parses one request line: a JSON object with "v" (== kProtocolVersion) and
// "op" (a string). The error names what is wrong (not JSON, wrong version...).
Result<Json> parse_request(std::string_view line);

// A topic's configuration and log settings as the control channel carries
// them: the cluster's JSON form (cluster/src/topic_config_json.h).
using cluster::log_changes_from_json;
using cluster::log_config_to_json;
using cluster::topic_config_from_json;
using cluster::topic_config_to_json;

// With "log" (log_config_to_json) when the broker knows it.
Json topic_info_to_json(const TopicInfo& info);
Json group_info_to_json(const GroupInfo& info);

// {"ok": false, "code": "<Errc>", "error": message}
Json error_response(const Error& e);
// Turns a response into its Error when "ok" is false (or it is malformed).
Status response_status(const Json& response);

}  // namespace ringbus::control
