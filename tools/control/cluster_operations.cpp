#include "cluster_operations.h"

#include <chrono>
#include <thread>

namespace ringbus::control {

namespace {

// An optional count field of a request: 1 when absent.
Result<std::uint32_t> count_field(const Json& req, const char* key) {
  if (!req.contains(key)) return 1u;
  const Json& v = req[key];
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() < 1 || v.get<std::uint64_t>() > cluster::kMaxReplicas) {
    return Error{Errc::invalid_argument, std::string("\"") + key + "\" must be an integer from 1 to " +
                                             std::to_string(cluster::kMaxReplicas) + ", not " + v.dump()};
  }
  return v.get<std::uint32_t>();
}

}  // namespace

void add_cluster_operations(ControlService& service, cluster::ClusterNode& node, Broker& broker) {
  service.add("create_topic", [&node, &broker](const Json& req) {
    if (!req.contains("topic")) return error_response({Errc::invalid_argument, "the request has no \"topic\""});
    auto config = topic_config_from_json(req["topic"]);
    if (!config) return error_response(config.error());
    auto replicas = count_field(req, "replicas");
    if (!replicas) return error_response(replicas.error());
    auto min_insync = count_field(req, "min_insync");
    if (!min_insync) return error_response(min_insync.error());
    auto record = node.create_topic(config.value(), replicas.value(), min_insync.value());
    if (!record) return error_response(record.error());
    if (!node.wait_leading(config->name, std::chrono::seconds(10))) {
      return error_response({Errc::busy, "topic '" + config->name + "' is created in the cluster, but node '" + node.name() +
                                             "' does not lead it yet: see ringbusd's log"});
    }
    auto info = broker.describe_topic(config->name);
    if (!info) return error_response(info.error());
    return ok_response({{"topic", topic_info_to_json(info.value())},
                        {"replicas", record->replicas},
                        {"min_insync", record->min_insync}});
  });
  // A topic of the cluster is deleted everywhere: its keys in etcd, then
  // each replica's log at its next reconcile. A topic of this broker alone
  // (made before it joined) goes as on a broker alone.
  service.add("delete_topic", [&node, &broker, local = service.handler("delete_topic")](const Json& req) {
    const std::string name = req.contains("name") && req["name"].is_string() ? req["name"].get<std::string>() : "";
    auto view = node.view();
    if (!view) return error_response(view.error());
    if (!view->topics.contains(name)) return local(req);
    if (auto s = node.delete_topic(name); !s) return error_response(s.error());
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (broker.describe_topic(name) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return ok_response();
  });
  // A cluster topic's log settings live in etcd: altered there (a swap),
  // then each replica applies them at its next reconcile. The answer comes
  // once this node's copy has them (it leads or mirrors the topic), or
  // says they are in etcd and on their way. A topic of this broker alone
  // is altered as on a broker alone.
  service.add("alter_topic", [&node, &broker, local = service.handler("alter_topic")](const Json& req) {
    const std::string name = req.contains("name") && req["name"].is_string() ? req["name"].get<std::string>() : "";
    auto view = node.view();
    if (!view) return error_response(view.error());
    if (!view->topics.contains(name)) return local(req);
    if (!req.contains("log")) return error_response({Errc::invalid_argument, "the request has no \"log\" changes"});
    auto record = node.alter_topic(name, req["log"]);
    if (!record) return error_response(record.error());
    const auto applied_here = [&] {
      for (const cluster::TopicRole& r : node.roles()) {
        if (r.topic == name) return r.log == record->config.log;
      }
      return true;  // not replicated here (or not taken up yet): nothing to wait for
    };
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!applied_here()) {
      if (std::chrono::steady_clock::now() > until) {
        return error_response({Errc::busy, "topic '" + name + "': the new log settings are in etcd; node '" + node.name() +
                                               "' has not applied them yet (see ringbusd's log)"});
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto info = broker.describe_topic(name);
    if (!info) {
      // Not on this broker: the topic as etcd holds it.
      const TopicConfig& c = record->config;
      TopicInfo t;
      t.name = c.name;
      t.topic_id = view->topics.at(name).id;
      t.partitions = c.partitions;
      t.ring_bytes = c.ring_bytes;
      t.max_record_size = c.max_record_size;
      t.abandoned_claim_timeout = c.abandoned_claim_timeout;
      info = std::move(t);
    }
    info->log = record->config.log;  // a mirror's copy: the broker does not keep its settings
    return ok_response({{"topic", topic_info_to_json(info.value())}});
  });
  // A dead node's replicas to a live node (ringbus cluster move-replicas).
  service.add("move_replicas", [&node](const Json& req) {
    const std::string from = require_string(req, "from"), to = require_string(req, "to");
    const std::string topic = req.contains("topic") ? require_string(req, "topic") : "";
    auto done = node.move_replicas(from, to, topic);
    if (!done) return error_response(done.error());
    Json kept = Json::array();
    for (const auto& [topic, why] : done->keeping) kept.push_back({{"topic", topic}, {"why", why}});
    return ok_response({{"moved", done->moving}, {"kept", kept}});
  });
  service.add("cluster_status", [&node](const Json&) { return ok_response({{"cluster", cluster_status_json(node)}}); });
}

Json cluster_status_json(cluster::ClusterNode& node) {
  Json out{{"node", node.name()}};
  auto view = node.view();
  if (!view) {
    out["error"] = view.error().message;
  } else {
    Json nodes = Json::array();
    for (const auto& [name, n] : view->nodes) nodes.push_back({{"name", name}, {"listen", n.listen}});
    out["nodes"] = nodes;
    Json topics = Json::array();
    for (const auto& [name, t] : view->topics) {
      Json j{{"name", name}, {"id", t.id}, {"replicas", t.record.replicas}, {"min_insync", t.record.min_insync}};
      if (const auto l = view->leaders.find(name); l != view->leaders.end()) {
        j["leader"] = l->second.state.leader;
        j["epoch"] = l->second.state.epoch;
        j["isr"] = l->second.state.isr;
      }
      topics.push_back(j);
    }
    out["topics"] = topics;
    Json refused = Json::array();
    for (const Error& e : view->refused) refused.push_back(e.message);
    out["refused"] = refused;
  }
  // What this node knows first-hand: the topics it leads, partition by partition.
  Json led = Json::array();
  for (const cluster::TopicRole& r : node.roles()) {
    if (!r.leading) continue;
    Json parts = Json::array();
    for (std::size_t p = 0; p < r.partitions.size(); ++p) {
      const auto& part = r.partitions[p];
      Json mirrors = Json::array();
      for (const auto& m : part.mirrors) {
        const bool in_sync = std::find(r.isr.begin(), r.isr.end(), m.node) != r.isr.end();
        mirrors.push_back({{"node", m.node},
                           {"written", m.written},
                           {"durable", m.durable},
                           {"lag", part.end > m.written ? part.end - m.written : 0},
                           {"lag_bytes", m.lag_bytes},
                           {"in_sync", in_sync}});
      }
      parts.push_back({{"partition", p}, {"end", part.end}, {"high_watermark", part.high_watermark}, {"mirrors", mirrors}});
    }
    led.push_back({{"topic", r.topic}, {"epoch", r.epoch}, {"isr", r.isr}, {"partitions", parts}});
  }
  out["leading"] = led;
  return out;
}

}  // namespace ringbus::control
