// ringbus cluster status: what the broker's cluster holds in etcd (nodes,
// topics, their leaders, epochs and in-sync replicas), and, for the topics
// this broker leads, each partition's high watermark and each mirror's
// progress and lag. ringbus cluster move-replicas: a dead node replaced.
#include <algorithm>
#include <string>

#include "cli.h"

namespace ringbus::cli {

namespace {

using control::Json;

std::string joined(const Json& names) {
  std::string s;
  for (const Json& n : names) s += (s.empty() ? "" : ",") + n.get<std::string>();
  return s.empty() ? "-" : s;
}

void print_status(const Json& c) {
  fmt::print("node {}\n", c["node"].get<std::string>());
  if (c.contains("error")) fmt::print("etcd: {}\n", c["error"].get<std::string>());
  if (c.contains("nodes")) {
    fmt::print("\n{:<20} {}\n", "NODE", "REPLICATION ADDRESS");
    for (const Json& n : c["nodes"]) fmt::print("{:<20} {}\n", n["name"].get<std::string>(), n["listen"].get<std::string>());
    fmt::print("\n{:<24} {:>12} {:<14} {:>6} {:<20} {:<20} {}\n", "TOPIC", "ID", "LEADER", "EPOCH", "REPLICAS", "IN SYNC",
               "MIN IN SYNC");
    for (const Json& t : c["topics"]) {
      fmt::print("{:<24} {:>12} {:<14} {:>6} {:<20} {:<20} {}\n", t["name"].get<std::string>(), t["id"].get<std::uint64_t>(),
                 t.value("leader", std::string("-")), t.contains("epoch") ? std::to_string(t["epoch"].get<int>()) : "-",
                 joined(t["replicas"]), t.contains("isr") ? joined(t["isr"]) : "-", t["min_insync"].get<std::uint32_t>());
    }
    for (const Json& r : c["refused"]) fmt::print("refused: {}\n", r.get<std::string>());
  }
  for (const Json& t : c["leading"]) {
    fmt::print("\nled here: topic {} (epoch {}, in sync {})\n", t["topic"].get<std::string>(), t["epoch"].get<int>(),
               joined(t["isr"]));
    fmt::print("{:>9} {:>14} {:>14}  {:<14} {:>14} {:>14} {:>12} {:>14} {}\n", "partition", "end", "high watermark", "mirror",
               "written", "durable", "lag", "lag bytes", "in sync");
    for (const Json& p : t["partitions"]) {
      const std::string head = fmt::format("{:>9} {:>14} {:>14}", p["partition"].get<std::uint32_t>(),
                                           p["end"].get<std::uint64_t>(), p["high_watermark"].get<std::uint64_t>());
      if (p["mirrors"].empty()) fmt::print("{}  (no mirror has acknowledged anything)\n", head);
      for (const Json& m : p["mirrors"]) {
        fmt::print("{}  {:<14} {:>14} {:>14} {:>12} {:>14} {}\n", head, m["node"].get<std::string>(),
                   m["written"].get<std::uint64_t>(), m["durable"].get<std::uint64_t>(), m["lag"].get<std::uint64_t>(),
                   m["lag_bytes"].get<std::uint64_t>(), m["in_sync"].get<bool>() ? "yes" : "no");
      }
    }
  }
}

}  // namespace

void add_cluster_commands(CLI::App& app, const Global& g, int& code) {
  CLI::App* cluster = app.add_subcommand("cluster", "the broker's cluster (ringbusd --etcd): its nodes and topics");
  cluster->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  CLI::App* status = cluster->add_subcommand("status", "nodes, leaders, epochs, in-sync replicas, mirrors' lag");
  status->footer(
      "Asks this host's broker (a node of the cluster). Lag and high watermarks are known to a topic's\n"
      "leader: run it on the leader's host for those. Example:\n"
      "  ringbus cluster status");
  status->add_flag("--json", *json, "print the answer as JSON");
  status->callback([&g, &code, json] {
    Json r;
    if (!call(g, "cluster_status", Json::object(), r, code)) return;
    if (*json) {
      fmt::print("{}\n", r["cluster"].dump(2));
    } else {
      print_status(r["cluster"]);
    }
  });

  struct Move {
    std::string from, to, topic;
  };
  auto move = std::make_shared<Move>();
  CLI::App* mv = cluster->add_subcommand("move-replicas", "replace a dead node: its replicas go to another node");
  mv->footer(
      "Every topic with a replica on FROM (a dead node: its key in etcd gone) gets TO in its place; TO then copies\n"
      "the logs from their leaders and joins their in-sync sets once caught up, and FROM, if it comes back, deletes\n"
      "its copies. A topic whose acknowledged records may be on FROM alone (no other live in-sync replica) is kept,\n"
      "and so is one TO already replicates (the exit status is then 1). Example:\n"
      "  ringbus cluster move-replicas c d");
  mv->add_option("from", move->from, "the dead node")->required();
  mv->add_option("to", move->to, "a live node to take its replicas")->required();
  mv->add_option("--topic", move->topic, "only this topic");
  mv->add_flag("--json", *json, "print the answer as JSON");
  mv->callback([&g, &code, json, move] {
    Json req{{"from", move->from}, {"to", move->to}};
    if (!move->topic.empty()) req["topic"] = move->topic;
    Json r;
    if (!call(g, "move_replicas", req, r, code)) return;
    if (!r["kept"].empty()) code = kExitError;  // a script sees that not every replica moved
    if (*json) {
      fmt::print("{}\n", Json{{"moved", r["moved"]}, {"kept", r["kept"]}}.dump(2));
      return;
    }
    for (const Json& t : r["moved"])
      fmt::print("topic {}: replica moved from node {} to node {}\n", t.get<std::string>(), move->from, move->to);
    for (const Json& k : r["kept"])
      fmt::print("topic {}: kept on node {}: {}\n", k["topic"].get<std::string>(), move->from, k["why"].get<std::string>());
    if (r["moved"].empty() && r["kept"].empty()) fmt::print("no topic has a replica on node {}\n", move->from);
  });
}

}  // namespace ringbus::cli
