#include "cluster_keys.h"

#include <nlohmann/json.hpp>

#include <set>

#include "replication_protocol.h"
#include "topic_config_json.h"

namespace ringbus::cluster {

using nlohmann::json;

std::string cluster_prefix(std::string_view cluster) { return "/ringbus/" + std::string(cluster); }
std::string node_key(std::string_view prefix, std::string_view node) {
  return std::string(prefix) + "/nodes/" + std::string(node);
}
std::string topic_key(std::string_view prefix, std::string_view topic) {
  return std::string(prefix) + "/topics/" + std::string(topic);
}
std::string_view key_name(std::string_view key) {
  const auto slash = key.rfind('/');
  return slash == std::string_view::npos ? key : key.substr(slash + 1);
}

namespace {

Result<json> parse_object(std::string_view text, const std::string& what) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{Errc::corrupt, what + ": not JSON"};
  if (!j.is_object()) return Error{Errc::corrupt, what + ": not a JSON object"};
  return j;
}

Status check_node_name(const std::string& name, const std::string& where) {
  if (name.empty() || name.size() > wire::kMaxNameSize) {
    return Error{Errc::invalid_argument, where + " names a node of " + std::to_string(name.size()) + " bytes (1 to " +
                                             std::to_string(wire::kMaxNameSize) + ")"};
  }
  return {};
}

}  // namespace

std::string encode_node_record(const NodeRecord& n) { return json{{"listen", n.listen}}.dump(); }

Result<NodeRecord> decode_node_record(std::string_view text, const std::string& key) {
  auto j = parse_object(text, "node record at " + key);
  if (!j) return j.error();
  const auto listen = j->find("listen");
  if (listen == j->end() || !listen->is_string() || listen->get<std::string>().empty()) {
    return Error{Errc::corrupt, "node record at " + key + ": 'listen' is missing, empty or not a string"};
  }
  return NodeRecord{listen->get<std::string>()};
}

Status validate_topic_record(const TopicRecord& t) {
  if (auto s = validate_topic_config(t.config); !s) return s;
  const std::string what = "topic '" + t.config.name + "'";
  if (t.replicas.empty() || t.replicas.size() > kMaxReplicas) {
    return Error{Errc::invalid_argument, what + " has " + std::to_string(t.replicas.size()) + " replicas; it may have 1 to " +
                                             std::to_string(kMaxReplicas)};
  }
  std::set<std::string> seen;
  for (const std::string& r : t.replicas) {
    if (auto s = check_node_name(r, what + "'s replica list"); !s) return s;
    if (!seen.insert(r).second) return Error{Errc::invalid_argument, what + " names replica '" + r + "' twice"};
  }
  if (t.min_insync < 1 || t.min_insync > t.replicas.size()) {
    return Error{Errc::invalid_argument, what + ": min_insync is " + std::to_string(t.min_insync) + "; it must be 1 to its " +
                                             std::to_string(t.replicas.size()) + " replicas"};
  }
  return {};
}

std::string encode_topic_record(const TopicRecord& t) {
  return json{{"config", topic_config_to_json(t.config)},
              {"replicas", t.replicas},
              {"min_insync", t.min_insync},
              {"unclean_election", t.unclean_election}}
      .dump();
}

Result<TopicRecord> decode_topic_record(std::string_view text, const std::string& key) {
  const std::string what = "topic record at " + key;
  auto bad = [&](const std::string& why) { return Error{Errc::corrupt, what + ": " + why}; };
  auto j = parse_object(text, what);
  if (!j) return j.error();
  for (const auto& item : j->items()) {
    const std::string& k = item.key();
    if (k != "config" && k != "replicas" && k != "min_insync" && k != "unclean_election") return bad("unknown field '" + k + "'");
  }
  TopicRecord t;
  const auto config = j->find("config");
  if (config == j->end()) return bad("'config' is missing");
  auto c = topic_config_from_json(*config);
  if (!c) return bad(c.error().message);
  t.config = std::move(c.value());
  const auto replicas = j->find("replicas");
  if (replicas == j->end() || !replicas->is_array()) return bad("'replicas' is missing or not an array");
  for (const auto& r : *replicas) {
    if (!r.is_string()) return bad("'replicas' holds something other than a node name");
    t.replicas.push_back(r.get<std::string>());
  }
  const auto min_insync = j->find("min_insync");
  if (min_insync == j->end() || !min_insync->is_number_unsigned() || min_insync->get<std::uint64_t>() > kMaxReplicas) {
    return bad("'min_insync' is missing or not an integer from 1 to " + std::to_string(kMaxReplicas));
  }
  t.min_insync = min_insync->get<std::uint32_t>();
  const auto unclean = j->find("unclean_election");
  if (unclean != j->end()) {
    if (!unclean->is_boolean()) return bad("'unclean_election' is not true or false");
    t.unclean_election = unclean->get<bool>();
  }
  if (auto s = validate_topic_record(t); !s) return bad(s.error().message);
  return t;
}

ClusterView decode_cluster(std::string_view prefix, const std::vector<EtcdKv>& kvs) {
  ClusterView v;
  for (const EtcdKv& kv : kvs) {
    if (kv.key.size() <= prefix.size() + 1 || !kv.key.starts_with(prefix)) continue;
    const std::string_view rest = std::string_view(kv.key).substr(prefix.size() + 1);
    const std::string name(key_name(kv.key));
    const std::string_view kind = rest.substr(0, rest.find('/'));
    if (name.empty() || rest.size() != kind.size() + 1 + name.size()) continue;  // not one of ours
    if (kind == "nodes") {
      auto n = decode_node_record(kv.value, kv.key);
      if (n) v.nodes[name] = std::move(n.value());
      else v.refused.push_back(n.error());
    } else if (kind == "topics") {
      auto t = decode_topic_record(kv.value, kv.key);
      if (t && t->config.name != name) {
        t = Error{Errc::corrupt, "topic record at " + kv.key + " names topic '" + t->config.name + "'"};
      }
      if (t) v.topics[name] = ClusterTopic{static_cast<std::uint64_t>(kv.create_revision), std::move(t.value())};
      else v.refused.push_back(t.error());
    } else if (kind == "leaders") {
      auto l = decode_leadership(kv.value, kv.key);
      if (l) v.leaders[name] = VersionedLeadership{std::move(l.value()), kv.mod_revision};
      else v.refused.push_back(l.error());
    }
  }
  return v;
}

}  // namespace ringbus::cluster
