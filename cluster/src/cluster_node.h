// A ringbusd node in a cluster (cluster/README.md, "A node"): keeps its
// membership in etcd under its lease, and reconciles its broker's topics
// with what etcd says, every reconcile interval:
//
// - a topic whose replicas name this node is led here or mirrored here,
//   as its leadership key says (elections when there is no leader or the
//   leader's membership is gone: Leaderships::elect);
// - leading: the broker serves the topic (created with the cluster's topic
//   id, or adopted from a mirror's copy) and stamps the leadership's epoch
//   into its batches; the replication server streams it to the mirrors;
//   each partition's ReplicaTracker keeps the high watermark, and lagging
//   mirrors leave the in-sync set (a swap in etcd) before it relies on that;
// - mirroring: the topic's copy lives in <data-dir>/.mirror/<topic>/ (the
//   broker does not serve it), followed from the leader by one
//   MirrorFollower per leader node;
// - a hand-over moves the log between the two places: Broker::release_topic
//   and a rename to .mirror/ when the node stops leading, the reverse and
//   Broker::adopt_topic when it starts.
//
// A node whose lease is not valid fences itself before etcd can let the
// lease expire: it stops leading (its topics are released, the server
// refuses its streams) until the lease is valid again; a lost lease is
// replaced by a new one.
//
// Threading: a reconcile thread and a high-watermark thread of its own,
// plus the replication server's and one per followed leader node. Methods from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "cluster_keys.h"
#include "etcd_client.h"
#include "lease_keeper.h"
#include "log_writer.h"
#include "mirror_follower.h"
#include "replica_move.h"
#include "replica_tracker.h"
#include "replication_server.h"
#include "ringbus/broker.h"
#include "topic_leadership.h"

namespace ringbus::cluster {

struct NodeOptions {
  std::string cluster = "ringbus";
  std::string node;       // this node's name, unique in the cluster
  std::string listen;     // the replication port, host:port (port 0: any free one)
  std::string advertise;  // what other nodes dial ("": listen's host with the bound port)
  std::string secret;     // the cluster's shared secret (peer_auth.h)
  EtcdOptions etcd;
  LeaseOptions lease;
  std::chrono::milliseconds reconcile_every{200};
  // How long start() waits for etcd to answer (a node and its etcd started
  // together: etcd may be a moment later).
  std::chrono::milliseconds etcd_wait{30'000};
  // A mirror not caught up for this long leaves the in-sync set.
  std::chrono::milliseconds max_lag{10'000};
  io::LogFn log = {};
};

// What a node does with one topic it replicates.
struct TopicRole {
  std::string topic;
  std::uint64_t topic_id = 0;
  bool leading = false;
  std::string leader;  // "": none known
  std::int32_t epoch = 0;
  std::vector<std::string> isr;
  LogConfig log;  // the log settings applied here
  // Leading: per partition, its log's end, the high watermark and what each
  // mirror has written and made durable.
  struct Partition {
    std::uint64_t end = 0;
    std::uint64_t high_watermark = 0;
    std::vector<ReplicaTracker::Progress> mirrors;
  };
  std::vector<Partition> partitions;
};

class ClusterNode {
 public:
  // Registers the node in etcd (waiting up to etcd_wait for etcd to answer,
  // and up to twice the lease's TTL for a key left by its own previous life
  // to expire) and starts reconciling.
  static Result<std::unique_ptr<ClusterNode>> start(NodeOptions options, Broker& broker);
  ~ClusterNode();  // stop()
  // Stops following and serving, gives up the topics it leads (their logs
  // move to .mirror/, as at any hand-over), closes the mirrors' logs cleanly
  // and revokes the lease (other nodes take the leaderships over at once).
  void stop();

  std::uint16_t replication_port() const noexcept;
  const std::string& name() const noexcept { return options_.node; }

  // Creates a topic in the cluster: its key in etcd (already_exists if it
  // is there); its replicas take it up at their next reconcile. The
  // cluster-wide topic id.
  Result<std::uint64_t> create_topic(const TopicRecord& topic);
  // The same, with this node as its first leader and `replicas` - 1 other
  // live nodes as its mirrors (chosen by the topic's name, to spread
  // topics over the nodes): the record written.
  Result<TopicRecord> create_topic(const TopicConfig& config, std::uint32_t replicas, std::uint32_t min_insync);
  // Deletes a topic in the cluster: its keys in etcd (not_found if it has
  // none); each replica deletes its log at its next reconcile.
  Status delete_topic(const std::string& name);
  // Alters a topic's log settings in the cluster: `changes` as the control
  // protocol's alter_topic gives them (topic_config_json.h,
  // log_changes_from_json), applied to the settings in etcd and swapped in
  // there; each replica applies them at its next reconcile (the leader's
  // flushers, the mirrors' logs, and each copy's topic.meta). not_found
  // for an unknown topic, busy if its key changed meanwhile. The record
  // written.
  Result<TopicRecord> alter_topic(const std::string& name, const nlohmann::json& changes);
  // Replaces dead node `from` by live node `to` in the replicas of every
  // topic that names it (or of topic `only`), as plan_replica_move says,
  // one swap of a topic's key each; `to` then copies them from their
  // leaders. What was moved, and what was kept and why.
  Result<ReplicaMovePlan> move_replicas(const std::string& from, const std::string& to, const std::string& only);
  // Waits until this node's broker serves `topic` as its leader.
  bool wait_leading(const std::string& topic, std::chrono::milliseconds limit) const;
  // The cluster as etcd holds it now.
  Result<ClusterView> view() const;
  // The topics this node replicates, as of its last reconcile.
  std::vector<TopicRole> roles() const;
  // Faults its replication links logged (as a leader and as a mirror).
  std::uint64_t link_faults() const noexcept { return link_faults_.load(std::memory_order_relaxed); }

 private:
  struct LedPart;
  class Served;
  struct Local;
  struct Following;
  ClusterNode(NodeOptions options, Broker& broker);
  Status register_node();
  void run();
  // One reconcile pass; errors are logged and the next pass tries again.
  void reconcile();
  Status reconcile_topic(const std::string& name, std::uint64_t id, const TopicRecord& record,
                         VersionedLeadership leadership, const std::map<std::string, NodeRecord>& nodes);
  Status lead(Local& t, const VersionedLeadership& leadership);
  Status mirror(Local& t, const std::string& leader);
  // The log settings in etcd changed: applied to what this node holds.
  Status apply_log_settings(Local& t, const LogConfig& log);
  // The mirror's copy's topic.meta, from t.record.
  Status write_copy_meta(const Local& t) const;
  // Stops leading (release_topic, the log moved to .mirror/).
  Status step_down(Local& t, const std::string& why);
  void step_down_all(const std::string& why);
  // In-sync set changes (mirrors that lag or whose node is gone leave,
  // caught-up ones join), made by a swap in etcd.
  void maintain_isr(Local& t, VersionedLeadership& leadership, const std::function<bool(const std::string&)>& alive);
  // A topic no longer replicated here (deleted in etcd, or moved off this
  // node): its log deleted, whether led or mirrored.
  void forget(Local& t);
  // Serves the mirror's copy of `t` to this host's consumers
  // (Broker::serve_mirror), its logs publishing their marks there.
  Status serve_copy(Local& t);
  // Writes t's leader into the mirror's rings, for this host's producers
  // refused with not_leader (Producer::leader()).
  void name_leader(const Local& t);
  // Removes a mirror's copy of `t` left by an older topic of that name (its
  // topic.meta names another id, or cannot be read).
  void drop_stale_copy(const Local& t);
  // Once, at the first complete read of etcd after start: deletes the
  // mirrors' copies and the led logs of the cluster's topics (topic.meta's
  // min_insync not 0) that this node no longer replicates: deleted, or
  // moved off it, while it was down. forget() does it for those it knew.
  void sweep_strays(const ClusterView& view);
  // Moves each led partition's high watermark with the leader's own log
  // marks (the flusher wakes it), not only when mirrors acknowledge: a
  // leader alone in the in-sync set, or whose mirrors are idle, still
  // acknowledges. Runs on marks_thread_ until stop().
  void watch_own_progress();
  // Restarts the followers whose set of topics changed.
  void update_followers(const std::map<std::string, NodeRecord>& nodes);
  void publish_roles();
  std::string mirror_dir(const std::string& topic) const;
  std::string led_dir(const std::string& topic) const;
  void log(const char* level, const std::string& message) const;

  NodeOptions options_;
  Broker& broker_;
  std::string prefix_;
  std::string advertised_;
  std::unique_ptr<EtcdClient> etcd_;
  std::unique_ptr<Leaderships> leaderships_;
  std::unique_ptr<LeaseKeeper> lease_;  // replaced when lost (reconcile thread)
  std::atomic<std::uint64_t> link_faults_{0};
  io::LogFn link_log_;  // options_.log, counting warnings and errors
  std::unique_ptr<Served> served_;      // what the replication server may stream
  std::unique_ptr<ReplicationServer> server_;
  std::map<std::string, std::unique_ptr<Local>> topics_;   // reconcile thread
  bool swept_ = false;                                      // reconcile thread: sweep_strays done
  std::map<std::string, std::unique_ptr<Following>> following_;  // by leader node; reconcile thread
  std::set<std::string> said_;  // errors logged once (reconcile thread)
  mutable std::mutex roles_mu_;
  std::vector<TopicRole> roles_;  // under roles_mu_
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // under mu_
  std::thread thread_;
  std::thread marks_thread_;  // watch_own_progress
};

}  // namespace ringbus::cluster
