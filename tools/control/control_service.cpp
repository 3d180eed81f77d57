#include "control_service.h"

#include <stdexcept>

namespace ringbus::control {
namespace {

// A missing or mistyped field: thrown by the accessors below, answered by
// handle() as an invalid_argument response.
struct BadRequest : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

std::string require_name(const Json& req) {
  if (!req.contains("name") || !req["name"].is_string()) throw BadRequest("the request has no topic \"name\"");
  return req["name"].get<std::string>();
}

// "to": "earliest" | "latest" | an offset | {"time_ms": unix milliseconds}
Result<GroupPosition> group_position_from_json(const Json& req) {
  if (!req.contains("to")) return Error{Errc::invalid_argument, "the request has no \"to\""};
  const Json& to = req["to"];
  if (to == "earliest") return GroupPosition{GroupPosition::Kind::earliest};
  if (to == "latest") return GroupPosition{GroupPosition::Kind::latest};
  if (to.is_number_unsigned()) return GroupPosition{GroupPosition::Kind::offset, to.get<std::uint64_t>()};
  if (to.is_object() && to.size() == 1 && to.contains("time_ms") && to["time_ms"].is_number_integer()) {
    return GroupPosition{GroupPosition::Kind::time, 0, to["time_ms"].get<std::int64_t>() * 1'000'000};
  }
  return Error{Errc::invalid_argument, "\"to\" must be \"earliest\", \"latest\", an offset or {\"time_ms\": N}"};
}

}  // namespace

std::string require_string(const Json& req, const char* key) {
  if (!req.contains(key) || !req[key].is_string()) throw BadRequest(std::string("the request has no \"") + key + "\" string");
  return req[key].get<std::string>();
}

Json ok_response(Json fields) {
  fields["ok"] = true;
  return fields;
}

ControlService::ControlService(Broker& broker, ChangeLog changes) {
  Broker* b = &broker;
  auto changed = [changes = std::move(changes)](const std::string& what) {
    if (changes) changes(what);
  };
  add("create_topic", [b, changed](const Json& req) {
    if (!req.contains("topic")) return error_response({Errc::invalid_argument, "the request has no \"topic\""});
    auto cfg = topic_config_from_json(req["topic"]);
    if (!cfg) return error_response(cfg.error());
    for (const char* key : {"replicas", "min_insync"}) {
      if (req.contains(key) && req[key] != 1) {
        return error_response({Errc::invalid_argument, std::string("\"") + key + "\" other than 1 needs a cluster: this "
                                                       "ringbusd runs alone (start it with --etcd to join one)"});
      }
    }
    auto info = b->create_topic(cfg.value());
    if (!info) return error_response(info.error());
    changed("created topic '" + info->name + "' (" + std::to_string(info->partitions) + " partitions)");
    return ok_response({{"topic", topic_info_to_json(info.value())}});
  });
  add("delete_topic", [b, changed](const Json& req) {
    const std::string name = require_name(req);
    if (auto s = b->delete_topic(name); !s) return error_response(s.error());
    changed("deleted topic '" + name + "'");
    return ok_response();
  });
  add("list_topics", [b](const Json&) {
    auto topics = b->list_topics();
    if (!topics) return error_response(topics.error());
    return ok_response({{"topics", topics.value()}});
  });
  add("describe_topic", [b](const Json& req) {
    auto info = b->describe_topic(require_name(req));
    if (!info) return error_response(info.error());
    return ok_response({{"topic", topic_info_to_json(info.value())}});
  });
  add("alter_topic", [b, changed](const Json& req) {
    const std::string name = require_name(req);
    if (!req.contains("log")) return error_response({Errc::invalid_argument, "the request has no \"log\" changes"});
    auto current = b->describe_topic(name);
    if (!current) return error_response(current.error());
    if (!current->log) {
      return error_response({Errc::invalid_argument, "topic '" + name +
                                                         "' has no commit log (the broker runs without a data "
                                                         "directory): there are no log settings to alter"});
    }
    auto log = log_changes_from_json(*current->log, req["log"]);
    if (!log) return error_response(log.error());
    auto info = b->alter_topic(name, log.value());
    if (!info) return error_response(info.error());
    changed("altered topic '" + name + "': " + req["log"].dump());
    return ok_response({{"topic", topic_info_to_json(info.value())}});
  });
  add("list_groups", [b](const Json& req) {
    auto groups = b->list_groups(require_string(req, "topic"));
    if (!groups) return error_response(groups.error());
    return ok_response({{"groups", groups.value()}});
  });
  add("describe_group", [b](const Json& req) {
    auto info = b->describe_group(require_string(req, "topic"), require_string(req, "group"));
    if (!info) return error_response(info.error());
    return ok_response({{"group", group_info_to_json(info.value())}});
  });
  add("reset_group", [b, changed](const Json& req) {
    const std::string topic = require_string(req, "topic");
    const std::string group = require_string(req, "group");
    auto pos = group_position_from_json(req);
    if (!pos) return error_response(pos.error());
    GroupSettings settings;  // for a group that does not exist yet
    if (req.contains("mode")) {
      if (req["mode"] != "pubsub" && req["mode"] != "queue") {
        return error_response({Errc::invalid_argument, "\"mode\" must be \"pubsub\" or \"queue\""});
      }
      settings.mode = req["mode"] == "queue" ? GroupMode::queue : GroupMode::pubsub;
    }
    auto info = b->reset_group(topic, group, pos.value(), settings);
    if (!info) return error_response(info.error());
    changed("reset group '" + group + "' of topic '" + topic + "'");
    return ok_response({{"group", group_info_to_json(info.value())}});
  });
  add("delete_group", [b, changed](const Json& req) {
    const std::string topic = require_string(req, "topic");
    const std::string group = require_string(req, "group");
    if (auto s = b->delete_group(topic, group); !s) return error_response(s.error());
    changed("deleted group '" + group + "' of topic '" + topic + "'");
    return ok_response();
  });
}

void ControlService::add(std::string op, Handler handler) { ops_[std::move(op)] = std::move(handler); }

ControlService::Handler ControlService::handler(std::string_view op) const {
  const auto it = ops_.find(op);
  return it == ops_.end() ? Handler() : it->second;
}

Json ControlService::handle(const Json& request) const {
  const std::string op = request.contains("op") && request["op"].is_string() ? request["op"].get<std::string>() : "";
  const auto it = ops_.find(op);
  if (it == ops_.end()) return error_response({Errc::invalid_argument, "unknown operation '" + op + "'"});
  try {
    return it->second(request);
  } catch (const BadRequest& e) {
    return error_response({Errc::invalid_argument, e.what()});
  }
}

std::vector<std::string> ControlService::operations() const {
  std::vector<std::string> names;
  for (const auto& [name, handler] : ops_) names.push_back(name);
  return names;
}

}  // namespace ringbus::control
