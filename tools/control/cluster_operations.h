// The control channel's operations of a cluster node (tools/README.md,
// "Operations"): create_topic creates the topic in the cluster (its key in
// etcd, with the replicas and minimum in-sync replicas the request asks
// for) and answers once this node leads it; delete_topic deletes a topic
// of the cluster everywhere; alter_topic refuses a topic of the cluster
// (not supported yet); cluster_status says what the
// cluster holds in etcd and what this node knows of the topics it leads
// (each mirror's progress, the high watermarks).
#pragma once

#include "cluster_node.h"
#include "control_protocol.h"
#include "control_service.h"
#include "ringbus/broker.h"

namespace ringbus::control {

// Adds them to `service` (create_topic replaces the broker's own).
void add_cluster_operations(ControlService& service, cluster::ClusterNode& node, Broker& broker);

// cluster_status's answer.
Json cluster_status_json(cluster::ClusterNode& node);

}  // namespace ringbus::control
