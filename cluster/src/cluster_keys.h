// The keys a cluster keeps in etcd (cluster/README.md, "Keys in etcd"),
// under <prefix> = /ringbus/<cluster>:
//
//   <prefix>/nodes/<node>     {"listen": "host:port"}, under the node's lease:
//                             membership, liveness, where its replication
//                             port is
//   <prefix>/topics/<topic>   {"config": {...}, "replicas": [...],
//                             "min_insync": M, "unclean_election": false};
//                             the key's create_revision is the topic's id
//   <prefix>/leaders/<topic>  the topic's leadership (topic_leadership.h)
//
// The decoders trust nothing (fuzz target tests/fuzz/cluster_keys_fuzz.cpp):
// anyone with access to etcd can write these values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "etcd_client.h"
#include "ringbus/result.h"
#include "ringbus/topic.h"
#include "topic_leadership.h"

namespace ringbus::cluster {

inline constexpr std::uint32_t kMaxReplicas = 5;

std::string cluster_prefix(std::string_view cluster);  // "/ringbus/<cluster>"
std::string node_key(std::string_view prefix, std::string_view node);
std::string topic_key(std::string_view prefix, std::string_view topic);
// The last part of a key ("<prefix>/topics/<name>" -> "<name>").
std::string_view key_name(std::string_view key);

struct NodeRecord {
  std::string listen;  // host:port of its replication port
  bool operator==(const NodeRecord&) const = default;
};
std::string encode_node_record(const NodeRecord& n);
// Errc::corrupt naming `key` and what is wrong.
Result<NodeRecord> decode_node_record(std::string_view json, const std::string& key);

struct TopicRecord {
  TopicConfig config;
  std::vector<std::string> replicas;  // 1..5 nodes; the first leads first
  std::uint32_t min_insync = 1;       // counting the leader; 1..replicas
  bool unclean_election = false;      // may a replica out of sync lead?
  bool replicated_on(std::string_view node) const noexcept {
    for (const auto& r : replicas)
      if (r == node) return true;
    return false;
  }
};
// Refuses (invalid_argument, saying why) a record that could not be a
// topic's: a bad configuration, no replicas or more than 5, a node named
// twice or a bad node name, min_insync outside 1..replicas.
Status validate_topic_record(const TopicRecord& t);
std::string encode_topic_record(const TopicRecord& t);
// Errc::corrupt naming `key` and what is wrong (validate_topic_record's
// reasons included).
Result<TopicRecord> decode_topic_record(std::string_view json, const std::string& key);

// A topic as etcd holds it: its record and its cluster-wide id.
struct ClusterTopic {
  std::uint64_t id = 0;
  TopicRecord record;
};
// Everything a cluster keeps under `prefix`, decoded from one read of it;
// what could not be decoded is left out and named in `refused`.
struct ClusterView {
  std::map<std::string, NodeRecord> nodes;
  std::map<std::string, ClusterTopic> topics;
  std::map<std::string, VersionedLeadership> leaders;
  std::vector<Error> refused;
};
ClusterView decode_cluster(std::string_view prefix, const std::vector<EtcdKv>& kvs);

}  // namespace ringbus::cluster
