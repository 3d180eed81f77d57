// Replacing a dead node (cluster/README.md, "Replacing a dead node"): which
// topics `ringbus cluster move-replicas FROM TO` changes, and which it keeps
// as they are, and why. A pure function of what etcd holds, so that every
// refusal is tested without a cluster; ClusterNode::move_replicas applies
// the plan, one swap of a topic's key at a time.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "cluster_keys.h"
#include "ringbus/result.h"

namespace ringbus::cluster {

struct ReplicaMovePlan {
  std::vector<std::string> moving;                           // topics whose replicas name `from`, to name `to`
  std::vector<std::pair<std::string, std::string>> keeping;  // topic, why it is not moved
};

// Refuses (saying why) a move that cannot be: `from` alive (only a dead
// node's replicas are moved: a live one may lead them), `to` not a live
// node, the two the same, or `only` (a topic, if not empty) unknown or not
// on `from`. A topic that `to` already replicates is kept, and so is one
// whose acknowledged records may be on `from` alone (no other live member
// of its in-sync set): moving it would delete that copy if `from` came back.
Result<ReplicaMovePlan> plan_replica_move(const ClusterView& view, const std::string& from, const std::string& to,
                                          const std::string& only);

// `replicas` with `from` replaced by `to`, in its place (the first replica
// leads a new topic first; order is kept).
std::vector<std::string> replace_replica(std::vector<std::string> replicas, const std::string& from, const std::string& to);

}  // namespace ringbus::cluster
