#include "replica_move.h"

#include <algorithm>

namespace ringbus::cluster {

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

std::vector<std::string> replace_replica(std::vector<std::string> replicas, const std::string& from, const std::string& to) {
  std::replace(replicas.begin(), replicas.end(), from, to);
  return replicas;
}

Result<ReplicaMovePlan> plan_replica_move(const ClusterView& view, const std::string& from, const std::string& to,
                                          const std::string& only) {
  if (from == to) return Error{Errc::invalid_argument, "node '" + from + "' cannot replace itself"};
  if (view.nodes.contains(from)) {
    return Error{Errc::busy, "node '" + from + "' is alive: only a dead node's replicas are moved (stop it, and its "
                                           "key goes when its lease runs out)"};
  }
  if (!view.nodes.contains(to)) {
    return Error{Errc::not_found, "node '" + to + "' is not a live node of the cluster (ringbus cluster status lists them)"};
  }
  if (!only.empty()) {
    const auto t = view.topics.find(only);
    if (t == view.topics.end()) return Error{Errc::not_found, "topic '" + only + "' does not exist in the cluster"};
    if (!t->second.record.replicated_on(from)) {
      return Error{Errc::invalid_argument, "topic '" + only + "' has no replica on node '" + from + "'"};
    }
  }
  ReplicaMovePlan plan;
  for (const auto& [name, topic] : view.topics) {
    if ((!only.empty() && name != only) || !topic.record.replicated_on(from)) continue;
    if (topic.record.replicated_on(to)) {
      plan.keeping.emplace_back(name, "node '" + to + "' already holds a replica of it");
      continue;
    }
    const auto l = view.leaders.find(name);
    if (l != view.leaders.end() && contains(l->second.state.isr, from)) {
      const auto& isr = l->second.state.isr;
      const bool another = std::any_of(isr.begin(), isr.end(), [&](const std::string& n) {
        return n != from && view.nodes.contains(n);
      });
      if (!another) {
        plan.keeping.emplace_back(name, "no live replica but node '" + from + "' was in sync: what it acknowledged may be "
                                        "there alone (bring the node back, or wait for another replica to catch up)");
        continue;
      }
    }
    plan.moving.push_back(name);
  }
  return plan;
}

}  // namespace ringbus::cluster
