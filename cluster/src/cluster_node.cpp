#include "cluster_node.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "epoch_file.h"
#include "file_io.h"
#include "group_offsets.h"
#include "partition_ring.h"
#include "replica_tracker.h"
#include "segment_files.h"
#include "small_files.h"
#include "topic_files.h"
#include "topic_config_json.h"
#include "topic_meta.h"

namespace ringbus::cluster {

namespace fs = std::filesystem;

namespace {
// Whether the node's lease may have run out: `valid_until` is the lease's
// validity in BootClock nanoseconds (Served::valid_until).
bool fenced(const std::atomic<std::int64_t>& valid_until) noexcept {
  return LeaseKeeper::Clock::now().time_since_epoch().count() >= valid_until.load(std::memory_order_acquire);
}
}  // namespace

// ---------------------------------------------------------------------------
// A partition this node leads, as the replication server sees it: its
// marks from the ring's header (the flusher keeps them), its epochs from
// the log's checkpoint file, and its replicas' tracker. It publishes the
// high watermark and the in-sync count in the ring's header for producers
// waiting for acks=all, but only while the node's lease is valid: a fenced
// leader acknowledges nothing more.
struct ClusterNode::LedPart final : LedPartition {
  LedPart(std::string dir, std::shared_ptr<detail::TopicMap> map, std::uint32_t partition, std::int32_t epoch,
          const std::string& me, std::vector<std::string> isr, std::chrono::milliseconds max_lag,
          std::uint32_t min_insync, const std::atomic<std::int64_t>& valid_until)
      : dir_(std::move(dir)),
        map_(std::move(map)),
        partition_(partition),
        epoch_(epoch),
        valid_until_(valid_until),
        tracker_(me, std::move(isr), max_lag, ReplicaTracker::Clock::now()) {
    header().min_insync.store(min_insync, std::memory_order_release);
    std::lock_guard lock(mu_);
    publish_marks();
  }

  const std::string& log_dir() const override { return dir_; }
  std::int32_t leader_epoch() const override { return epoch_; }
  std::uint64_t written() const override { return header().log_written.load(std::memory_order_acquire); }
  std::uint64_t log_start() const override { return header().log_start_offset.load(std::memory_order_acquire); }
  std::uint64_t durable() const { return header().log_durable.load(std::memory_order_acquire); }
  std::uint64_t high_watermark() const override {
    std::lock_guard lock(mu_);
    leader_progress();
    publish_marks();
    return tracker_.high_watermark();
  }
  // The leader's own progress moves the high watermark too (alone in the
  // in-sync set, or with idle mirrors): ClusterNode::watch_own_progress
  // calls this whenever the flusher moves the log's marks.
  void refresh() const { (void)high_watermark(); }
  // The word the flusher bumps when it moves the log's marks (and the
  // waiter count it looks at first).
  detail::PartitionHeader& marks() const { return header(); }
  Result<std::optional<io::LeaderEpoch>> end_of_epoch(std::int32_t epoch) const override {
    // The flusher rewrites the file in place when an epoch begins (rarely):
    // a read torn by that fails its CRC, and is read again.
    const std::string path = dir_ + "/" + io::kEpochFileName;
    std::vector<io::LeaderEpoch> epochs;
    for (int attempt = 0;; ++attempt) {
      auto bytes = io::read_small_file(path);
      if (!bytes && bytes.error().code == Errc::not_found && written() == log_start()) break;  // no batch: no epoch
      auto decoded = bytes ? io::decode_epoch_file(bytes.value(), path) : Result<std::vector<io::LeaderEpoch>>(bytes.error());
      if (decoded) {
        epochs = std::move(decoded.value());
        break;
      }
      if (attempt == 20) return decoded.error();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const auto above = std::upper_bound(epochs.begin(), epochs.end(), epoch,
                                        [](std::int32_t e, const io::LeaderEpoch& x) { return e < x.epoch; });
    if (above == epochs.begin()) return std::optional<io::LeaderEpoch>();
    return std::optional(io::LeaderEpoch{std::prev(above)->epoch, above == epochs.end() ? written() : above->start_offset});
  }
  void acknowledged(const std::string& mirror, std::uint64_t w, std::uint64_t d) override {
    std::lock_guard lock(mu_);
    tracker_.acknowledged(mirror, w, d, ReplicaTracker::Clock::now());
    publish_marks();
  }

  // The reconcile thread's questions.
  std::vector<std::string> lagging() const {
    std::lock_guard lock(mu_);
    return tracker_.lagging(ReplicaTracker::Clock::now());
  }
  std::vector<std::string> caught_up() const {
    std::lock_guard lock(mu_);
    return tracker_.caught_up();
  }
  TopicRole::Partition progress() const {
    std::lock_guard lock(mu_);
    leader_progress();
    return {tracker_.leader_end(), tracker_.high_watermark(), tracker_.progress()};
  }
  void set_isr(const std::vector<std::string>& isr) {
    std::lock_guard lock(mu_);
    if (tracker_.isr() == isr) return;
    tracker_.set_isr(isr);
    publish_marks();
  }

 private:
  detail::PartitionHeader& header() const { return map_->ring(partition_).header(); }
  // (under mu_) The log's marks into the tracker. The flusher stores its
  // byte count before the written offset: read after it, the count covers
  // at least what lies below.
  void leader_progress() const {
    const std::uint64_t end = written();
    tracker_.leader_progress(end, durable(), header().log_bytes.load(std::memory_order_acquire),
                             ReplicaTracker::Clock::now());
  }
  // (under mu_) The tracker's high watermark and in-sync count into the
  // header, and a wake-up for producers waiting on them (Dekker with
  // wait_replicated: the marks are stored seq_cst, then the waiters read).
  // The lease is checked after the acknowledgements the high watermark
  // counts arrived: what it covers was durable on the in-sync set while
  // this node still led.
  void publish_marks() const {
    if (fenced(valid_until_)) return;
    detail::PartitionHeader& h = header();
    const std::uint64_t hw = tracker_.high_watermark();
    const auto count = static_cast<std::uint32_t>(tracker_.isr().size());
    bool moved = false;
    if (h.log_replicated.load(std::memory_order_relaxed) < hw) {
      h.log_replicated.store(hw, std::memory_order_seq_cst);
      moved = true;
    }
    if (h.insync_replicas.load(std::memory_order_relaxed) != count) {
      h.insync_replicas.store(count, std::memory_order_seq_cst);
      moved = true;
    }
    if (moved) detail::wake_mark_waiters(h);
  }

  const std::string dir_;
  const std::shared_ptr<detail::TopicMap> map_;
  const std::uint32_t partition_;
  const std::int32_t epoch_;
  const std::atomic<std::int64_t>& valid_until_;
  mutable std::mutex mu_;
  mutable ReplicaTracker tracker_;
};

// What the replication server may stream: the partitions of the topics
// this node leads, while its lease is valid.
class ClusterNode::Served final : public LedPartitions {
 public:
  explicit Served(std::string node) : node_(std::move(node)) {}

  Found find(std::string_view topic, std::uint64_t topic_id, std::uint32_t partition) override {
    if (fenced(valid_until_)) {
      return {nullptr, wire::ErrorCode::not_leader, "node '" + node_ + "' is fenced: its etcd lease is not valid"};
    }
    std::lock_guard lock(mu_);
    const auto it = topics_.find(topic);
    if (it == topics_.end()) {
      return {nullptr, wire::ErrorCode::not_leader, "node '" + node_ + "' does not lead topic '" + std::string(topic) + "'"};
    }
    if (it->second.id != topic_id) {
      return {nullptr, wire::ErrorCode::unknown_topic,
              "topic '" + std::string(topic) + "' has id " + std::to_string(it->second.id) + ", not " + std::to_string(topic_id)};
    }
    if (partition >= it->second.parts.size()) {
      return {nullptr, wire::ErrorCode::unknown_topic,
              "topic '" + std::string(topic) + "' has no partition " + std::to_string(partition)};
    }
    return {it->second.parts[partition], {}, {}};
  }

  void set(const std::string& topic, std::uint64_t id, std::vector<std::shared_ptr<LedPart>> parts) {
    std::lock_guard lock(mu_);
    topics_[topic] = Topic{id, std::move(parts)};
  }
  // Every partition served now.
  std::vector<std::shared_ptr<LedPart>> all() const {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<LedPart>> out;
    for (const auto& [name, t] : topics_) out.insert(out.end(), t.parts.begin(), t.parts.end());
    return out;
  }
  void erase(const std::string& topic) {
    std::lock_guard lock(mu_);
    topics_.erase(topic);
  }
  // Streams are served until this moment (BootClock nanoseconds): the
  // lease's validity, copied at each reconcile (earlier than the lease's
  // own, never later).
  void valid_until(LeaseKeeper::Clock::time_point t) { valid_until_.store(t.time_since_epoch().count(), std::memory_order_release); }
  const std::atomic<std::int64_t>& valid_until() const noexcept { return valid_until_; }

 private:
  struct Topic {
    std::uint64_t id = 0;
    std::vector<std::shared_ptr<LedPart>> parts;
  };
  const std::string node_;
  mutable std::mutex mu_;
  std::map<std::string, Topic, std::less<>> topics_;
  std::atomic<std::int64_t> valid_until_{0};
};

// A topic this node replicates.
struct ClusterNode::Local {
  enum class Role : std::uint8_t { none, leading, mirroring };
  std::string name;
  std::uint64_t id = 0;
  TopicRecord record;
  Role role = Role::none;
  std::string leader;
  std::int32_t epoch = -1;
  std::vector<std::string> isr;
  std::vector<std::shared_ptr<LedPart>> led;       // leading
  std::vector<std::unique_ptr<MirrorLog>> logs;    // mirroring
};

// One leader node's follower, and the topics it follows from it.
struct ClusterNode::Following {
  std::string address;
  std::vector<std::string> topics;  // sorted
  std::unique_ptr<MirrorFollower> follower;
};

// ---------------------------------------------------------------------------

ClusterNode::ClusterNode(NodeOptions options, Broker& broker)
    : options_(std::move(options)), broker_(broker), prefix_(cluster_prefix(options_.cluster)) {}

Result<std::unique_ptr<ClusterNode>> ClusterNode::start(NodeOptions options, Broker& broker) {
  if (options.node.empty() || options.node.size() > wire::kMaxNameSize) {
    return Error{Errc::invalid_argument, "the node name must be 1 to " + std::to_string(wire::kMaxNameSize) + " bytes"};
  }
  if (options.cluster.empty() || options.cluster.size() > wire::kMaxNameSize) {
    return Error{Errc::invalid_argument, "the cluster name must be 1 to " + std::to_string(wire::kMaxNameSize) + " bytes"};
  }
  if (options.secret.empty()) return Error{Errc::invalid_argument, "a cluster needs a shared secret (cluster_secret)"};
  if (broker.data_dir().empty()) return Error{Errc::invalid_argument, "a cluster node needs a data directory"};
  if (!options.log) options.log = [](const char*, const std::string&) {};
  std::unique_ptr<ClusterNode> node(new ClusterNode(std::move(options), broker));
  NodeOptions& o = node->options_;
  node->link_log_ = [n = node.get()](const char* level, const std::string& message) {
    if (std::string_view(level) != "info") n->link_faults_.fetch_add(1, std::memory_order_relaxed);
    n->options_.log(level, message);
  };
  auto etcd = EtcdClient::create(o.etcd);
  if (!etcd) return etcd.error();
  node->etcd_ = std::move(etcd.value());
  node->leaderships_ = std::make_unique<Leaderships>(*node->etcd_, node->prefix_);
  node->served_ = std::make_unique<Served>(o.node);
  ServerOptions so;
  so.me = PeerIdentity{o.cluster, o.node, o.secret};
  so.listen = o.listen;
  so.log = node->link_log_;
  auto server = ReplicationServer::start(so, *node->served_);
  if (!server) return server.error();
  node->server_ = std::move(server.value());
  if (o.advertise.empty()) {
    const auto colon = o.listen.rfind(':');
    const std::string host = colon == std::string::npos ? o.listen : o.listen.substr(0, colon);
    if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") {
      return Error{Errc::invalid_argument, "listen address '" + o.listen +
                                               "' is not one other nodes can dial: give the address to advertise"};
    }
    node->advertised_ = host + ":" + std::to_string(node->server_->port());
  } else {
    node->advertised_ = o.advertise;
  }
  if (auto s = node->register_node(); !s) return s.error();
  node->log("info", "node '" + o.node + "' joined cluster '" + o.cluster + "' (replication port " + node->advertised_ +
                        ", etcd lease " + std::to_string(node->lease_->id()) + ")");
  node->thread_ = std::thread([n = node.get()] { n->run(); });
  node->marks_thread_ = std::thread([n = node.get()] { n->watch_own_progress(); });
  return node;
}

ClusterNode::~ClusterNode() { stop(); }

void ClusterNode::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (marks_thread_.joinable()) marks_thread_.join();
  following_.clear();  // followers stop before their logs close
  server_.reset();
  // Local producers are refused from now on, not served by a broker that
  // no longer leads (the lease goes next, and another node with it).
  step_down_all("the node is stopping");
  for (auto& [name, t] : topics_) {
    for (auto& l : t->logs) {
      if (l->is_open()) {
        if (auto s = l->close_clean(); !s) log("error", s.error().message);
      }
    }
    if (t->role == Local::Role::mirroring) (void)broker_.stop_mirror(name);
  }
  topics_.clear();
  lease_.reset();  // revokes: other nodes take over what this one led at once
}

std::uint16_t ClusterNode::replication_port() const noexcept { return server_ ? server_->port() : 0; }

void ClusterNode::log(const char* level, const std::string& message) const { options_.log(level, message); }

std::string ClusterNode::led_dir(const std::string& topic) const { return broker_.data_dir() + "/" + topic; }
std::string ClusterNode::mirror_dir(const std::string& topic) const { return broker_.data_dir() + "/.mirror/" + topic; }

void ClusterNode::watch_own_progress() {
  detail::CommitSleep sleep;
  for (;;) {
    const std::vector<std::shared_ptr<LedPart>> parts = served_->all();
    if (parts.empty()) {
      std::unique_lock lock(mu_);
      if (wake_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_; })) return;
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    // Announced before the marks are read: a move after the refresh wakes
    // the sleep. Bounded: stop() is seen within it, and a topic led
    // meanwhile joins.
    for (const auto& p : parts) sleep.watch_marks(p->marks());
    sleep.sleep(
        [&] {
          for (const auto& p : parts) p->refresh();
          // Mirrors waiting at the log's end get the new batches now.
          if (server_) server_->logs_moved();
          return false;
        },
        std::chrono::milliseconds(100));
  }
}

Status ClusterNode::register_node() {
  const auto give_up = std::chrono::steady_clock::now() + options_.etcd_wait;
  for (bool said = false;; said = true) {
    auto lease = LeaseKeeper::start(options_.etcd, options_.lease, [this](const std::string& why) {
      log("warn", "node '" + options_.node + "': " + why);
    });
    if (lease) {
      lease_ = std::move(lease.value());
      break;
    }
    // Only an etcd that cannot be reached is waited for; a refusal is final.
    if (lease.error().code != Errc::io_error || std::chrono::steady_clock::now() > give_up) return lease.error();
    if (!said) log("warn", "node '" + options_.node + "' waits for etcd: " + lease.error().message);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const std::string key = node_key(prefix_, options_.node);
  const std::string value = encode_node_record({advertised_});
  // A key left by this node's previous life lives until its lease expires.
  const auto deadline = std::chrono::steady_clock::now() + 2 * options_.lease.ttl + std::chrono::seconds(1);
  for (;;) {
    std::optional<EtcdKv> current;
    auto put = etcd_->put_if(key, value, 0, lease_->id(), &current);
    if (!put) return put.error();
    if (put.value()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Error{Errc::already_exists, "node '" + options_.node + "' is already in cluster '" + options_.cluster +
                                             "': its key " + key + " lives under another lease (" +
                                             (current ? std::to_string(current->lease) : std::string("?")) +
                                             "); is another process running with this name?"};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  served_->valid_until(lease_->valid_until());
  return {};
}

Result<std::uint64_t> ClusterNode::create_topic(const TopicRecord& topic) {
  if (auto s = validate_topic_record(topic); !s) return s.error();
  std::int64_t revision = 0;
  auto put = etcd_->put_if(topic_key(prefix_, topic.config.name), encode_topic_record(topic), 0, 0, nullptr, &revision);
  if (!put) return put.error();
  if (!put.value()) {
    return Error{Errc::already_exists, "topic '" + topic.config.name + "' already exists in cluster '" + options_.cluster + "'"};
  }
  return static_cast<std::uint64_t>(revision);
}

Result<TopicRecord> ClusterNode::create_topic(const TopicConfig& config, std::uint32_t replicas, std::uint32_t min_insync) {
  TopicRecord t;
  t.config = config;
  t.min_insync = min_insync;
  t.replicas.push_back(options_.node);
  if (replicas > 1) {
    auto v = view();
    if (!v) return v.error();
    std::vector<std::string> others;
    for (const auto& [name, n] : v->nodes)
      if (name != options_.node) others.push_back(name);
    if (others.size() + 1 < replicas) {
      return Error{Errc::invalid_argument, "topic '" + config.name + "' asks for " + std::to_string(replicas) +
                                               " replicas; cluster '" + options_.cluster + "' has " +
                                               std::to_string(others.size() + 1) + " live node(s)"};
    }
    const std::size_t first = std::hash<std::string>{}(config.name) % others.size();
    for (std::uint32_t i = 0; i + 1 < replicas; ++i) t.replicas.push_back(others[(first + i) % others.size()]);
  }
  auto id = create_topic(t);
  if (!id) return id.error();
  return t;
}

Status ClusterNode::delete_topic(const std::string& name) {
  auto erased = etcd_->erase(topic_key(prefix_, name));
  if (!erased) return erased.error();
  if (!erased.value()) return Error{Errc::not_found, "topic '" + name + "' does not exist in cluster '" + options_.cluster + "'"};
  if (auto l = etcd_->erase(leaderships_->key(name)); !l) return l.error();
  log("info", "topic '" + name + "' deleted from cluster '" + options_.cluster + "'");
  return {};
}

Result<TopicRecord> ClusterNode::alter_topic(const std::string& name, const nlohmann::json& changes) {
  const std::string key = topic_key(prefix_, name);
  auto kv = etcd_->get(key);
  if (!kv) return kv.error();
  if (!kv.value()) return Error{Errc::not_found, "topic '" + name + "' does not exist in cluster '" + options_.cluster + "'"};
  auto record = decode_topic_record(kv.value()->value, key);
  if (!record) return record.error();
  auto settings = log_changes_from_json(record->config.log, changes);
  if (!settings) return settings.error();
  record->config.log = settings.value();
  if (auto s = validate_topic_record(record.value()); !s) return s.error();
  auto put = etcd_->put_if(key, encode_topic_record(record.value()), kv.value()->mod_revision);
  if (!put) return put.error();
  if (!put.value()) return Error{Errc::busy, "topic '" + name + "' changed in etcd meanwhile: alter it again"};
  log("info", "topic '" + name + "': its log settings were altered in cluster '" + options_.cluster + "'");
  return record;
}

Result<ReplicaMovePlan> ClusterNode::move_replicas(const std::string& from, const std::string& to,
                                                   const std::string& only) {
  auto v = view();
  if (!v) return v.error();
  auto plan = plan_replica_move(v.value(), from, to, only);
  if (!plan) return plan.error();
  ReplicaMovePlan done;
  done.keeping = plan->keeping;
  for (const std::string& name : plan->moving) {
    // Read again for the revision the swap compares: a key changed since
    // the plan is left for the next run, which plans again.
    const std::string key = topic_key(prefix_, name);
    auto kv = etcd_->get(key);
    if (!kv) return kv.error();
    auto record = kv.value() ? decode_topic_record(kv.value()->value, key) : Result<TopicRecord>(Error{Errc::not_found, ""});
    bool swapped = false;
    if (record && record->replicated_on(from) && !record->replicated_on(to)) {
      record->replicas = replace_replica(record->replicas, from, to);
      auto put = etcd_->put_if(key, encode_topic_record(record.value()), kv.value()->mod_revision);
      if (!put) return put.error();
      swapped = put.value();
    }
    if (!swapped) {
      done.keeping.emplace_back(name, "its key changed meanwhile: run the command again");
      continue;
    }
    log("info", "topic '" + name + "': its replica on node '" + from + "' moves to node '" + to + "'");
    done.moving.push_back(name);
  }
  return done;
}

bool ClusterNode::wait_leading(const std::string& topic, std::chrono::milliseconds limit) const {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    for (const TopicRole& r : roles()) {
      if (r.topic == topic && r.leading) return true;
    }
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<ClusterView> ClusterNode::view() const {
  auto all = etcd_->get_prefix(prefix_ + "/");
  if (!all) return all.error();
  return decode_cluster(prefix_, all.value());
}

std::vector<TopicRole> ClusterNode::roles() const {
  std::lock_guard lock(roles_mu_);
  return roles_;
}

void ClusterNode::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    reconcile();
    lock.lock();
    wake_.wait_for(lock, options_.reconcile_every, [&] { return stopping_; });
  }
}

// ---------------------------------------------------------------------------

namespace {

// Logs an error once per distinct message, so that a pass every 200 ms
// does not repeat one forever.
bool first_time(std::set<std::string>& said, const std::string& message) {
  if (said.size() > 1000) said.clear();
  return said.insert(message).second;
}

}  // namespace

void ClusterNode::reconcile() {
  auto complain = [&](const char* level, const std::string& m) {
    if (first_time(said_, m)) log(level, m);
  };
  if (lease_->lost()) {
    step_down_all("its etcd lease was lost");
    lease_.reset();
    if (auto s = register_node(); !s) {
      complain("error", "node '" + options_.node + "' cannot rejoin the cluster: " + s.error().message);
      return;
    }
    log("info", "node '" + options_.node + "' rejoined with etcd lease " + std::to_string(lease_->id()));
  }
  served_->valid_until(lease_->valid_until());
  if (!lease_->valid()) {
    step_down_all("its etcd lease is not valid (etcd does not answer): fenced until it is");
    return;
  }
  auto all = etcd_->get_prefix(prefix_ + "/");
  if (!all) {
    // Leaders go on until their lease runs out.
    complain("warn", "node '" + options_.node + "' cannot read the cluster's state: " + all.error().message);
    return;
  }
  ClusterView view = decode_cluster(prefix_, all.value());
  for (const Error& e : view.refused) complain("error", e.message);
  auto& nodes = view.nodes;
  const auto& topics = view.topics;
  if (!nodes.contains(options_.node)) {
    // Someone deleted the key while the lease lives: put it back.
    (void)etcd_->put_if(node_key(prefix_, options_.node), encode_node_record({advertised_}), 0, lease_->id());
    nodes[options_.node] = NodeRecord{advertised_};
  }
  if (!swept_ && view.refused.empty()) {  // (a key it could not read may be a topic of its own)
    sweep_strays(view);
    swept_ = true;
  }
  for (const auto& [name, topic] : topics) {
    if (!topic.record.replicated_on(options_.node)) continue;
    if (auto s = reconcile_topic(name, topic.id, topic.record, view.leaders[name], nodes); !s) {
      complain("error", s.error().message);
    }
  }
  // Topics gone from etcd, or no longer replicated here: their logs here go (forget).
  for (auto it = topics_.begin(); it != topics_.end();) {
    Local& t = *it->second;
    const auto found = topics.find(it->first);
    const bool keep = found != topics.end() && found->second.id == t.id && found->second.record.replicated_on(options_.node);
    if (keep) {
      ++it;
      continue;
    }
    forget(t);
    it = topics_.erase(it);
  }
  update_followers(nodes);
  publish_roles();
}

Status ClusterNode::reconcile_topic(const std::string& name, std::uint64_t id, const TopicRecord& record,
                                    VersionedLeadership leadership, const std::map<std::string, NodeRecord>& nodes) {
  auto& slot = topics_[name];
  if (!slot) {
    slot = std::make_unique<Local>();
    slot->name = name;
    slot->id = id;
    slot->record = record;
  }
  Local& t = *slot;
  // Who replicates it changes (ringbus cluster move-replicas), and its log
  // settings (alter_topic); the rest is fixed at its creation.
  t.record.replicas = record.replicas;
  t.record.unclean_election = record.unclean_election;
  if (record.config.log != t.record.config.log) {
    if (auto s = apply_log_settings(t, record.config.log); !s) return s;
  }
  const auto alive = [&](const std::string& n) { return nodes.contains(n); };
  const Leadership& l = leadership.state;
  if (l.leader.empty() || !alive(l.leader)) {
    // The first leader is the first replica, while it lives.
    const bool first_waits = leadership.revision == 0 && record.replicas.front() != options_.node && alive(record.replicas.front());
    if (!first_waits) {
      auto won = leaderships_->elect(name, leadership, options_.node, record.replicas, record.unclean_election, alive);
      if (!won) return won.error();
      if (won.value()) {
        log("info", "node '" + options_.node + "' was elected leader of topic '" + name + "' in epoch " +
                        std::to_string(leadership.state.epoch));
      }
    }
  }
  if (leadership.state.leader == options_.node) {
    if (auto s = lead(t, leadership); !s) return s;
    maintain_isr(t, leadership, alive);
    return {};
  }
  if (!leadership.state.leader.empty() && alive(leadership.state.leader)) return mirror(t, leadership.state.leader);
  if (t.role == Local::Role::leading) return step_down(t, "it has no live leader in etcd");
  return {};
}

Status ClusterNode::lead(Local& t, const VersionedLeadership& leadership) {
  const Leadership& l = leadership.state;
  if (t.role == Local::Role::leading && t.epoch == l.epoch) {
    for (auto& p : t.led) p->set_isr(l.isr);
    t.isr = l.isr;
    return {};
  }
  const std::string dir = led_dir(t.name);
  const std::string copy = mirror_dir(t.name);
  if (t.role == Local::Role::mirroring) {
    // The follower first: the logs are its until it stops.
    if (auto it = following_.find(t.leader); it != following_.end()) it->second->follower.reset();
    for (auto& m : t.logs) {
      if (m->is_open()) {
        if (auto s = m->close_clean(); !s) return s;
      }
    }
    t.logs.clear();
    t.role = Local::Role::none;
  }
  if (t.role == Local::Role::none) {
    (void)broker_.stop_mirror(t.name);  // this host's readers of the copy see topic_deleted, then open the topic again
    auto served = broker_.describe_topic(t.name);
    if (served) {
      // The broker recovered it at start: this node led it before.
      if (served->topic_id != t.id) {
        return Error{Errc::invalid_argument, "topic '" + t.name + "' of this broker has id " + std::to_string(served->topic_id) +
                                                 ", the cluster's has " + std::to_string(t.id) + ": not led here until it is moved away"};
      }
    } else {
      drop_stale_copy(t);
      if (fs::exists(copy)) {
        if (fs::exists(dir)) {
          return Error{Errc::already_exists, "topic '" + t.name + "': " + dir + " exists beside the mirror's copy " + copy +
                                                 "; move one away"};
        }
        std::error_code ec;
        fs::rename(copy, dir, ec);
        if (ec) return Error{Errc::io_error, "rename " + copy + " to " + dir + ": " + ec.message()};
      }
      auto made = fs::exists(dir) ? broker_.adopt_topic(t.name) : broker_.create_topic(t.record.config, t.id, t.record.min_insync);
      if (!made) return made.error();
    }
    // Settings altered in etcd while this copy was elsewhere (a node that
    // was down, a mirror's copy from before) are the cluster's now.
    if (auto now = broker_.describe_topic(t.name); now && now->log && *now->log != t.record.config.log) {
      if (auto altered = broker_.alter_topic(t.name, t.record.config.log); !altered) return altered.error();
    }
  }
  for (std::uint32_t p = 0; p < t.record.config.partitions; ++p) {
    if (auto s = broker_.set_leader_epoch(t.name, p, l.epoch); !s) return s;
  }
  auto map = detail::TopicMap::open(broker_.instance(), t.name, /*populate=*/false);
  if (!map) return map.error();
  t.led.clear();
  for (std::uint32_t p = 0; p < t.record.config.partitions; ++p) {
    t.led.push_back(std::make_shared<LedPart>(log::partition_log_directory(dir, p), map.value(), p, l.epoch, options_.node,
                                              l.isr, options_.max_lag, t.record.min_insync, served_->valid_until()));
  }
  served_->set(t.name, t.id, t.led);
  t.role = Local::Role::leading;
  t.leader = options_.node;
  t.epoch = l.epoch;
  t.isr = l.isr;
  log("info", "node '" + options_.node + "' leads topic '" + t.name + "' in epoch " + std::to_string(l.epoch));
  return {};
}

Status ClusterNode::apply_log_settings(Local& t, const LogConfig& settings) {
  if (t.role == Local::Role::leading) {
    if (auto altered = broker_.alter_topic(t.name, settings); !altered) return altered.error();  // tried again next pass
  } else if (t.role == Local::Role::mirroring) {
    // The follower writes the logs from its own thread: it lets go of them
    // first, and is made again at the end of this pass.
    following_.erase(t.leader);
    for (auto& m : t.logs) m->reconfigure(settings);
  }
  const LogConfig before = t.record.config.log;
  t.record.config.log = settings;
  if (t.role == Local::Role::mirroring) {
    if (auto s = write_copy_meta(t); !s) {
      t.record.config.log = before;  // tried again next pass
      return s;
    }
  }
  log("info", "topic '" + t.name + "': the log settings altered in the cluster apply here");
  return {};
}

// So that a promotion (Broker::adopt_topic) finds the topic's settings, id
// and min_insync as the cluster has them now (rewritten each time: a copy
// from an older version may lack min_insync).
Status ClusterNode::write_copy_meta(const Local& t) const {
  const io::TopicMeta meta{t.record.config, t.id, t.record.min_insync};
  return io::replace_file_durably(mirror_dir(t.name), io::kTopicMetaName, io::encode_topic_meta(meta));
}

Status ClusterNode::step_down(Local& t, const std::string& why) {
  served_->erase(t.name);
  t.led.clear();
  t.role = Local::Role::none;
  log("warn", "node '" + options_.node + "' stops leading topic '" + t.name + "': " + why);
  if (auto s = broker_.release_topic(t.name); !s) return s;
  const std::string copy = mirror_dir(t.name);
  std::error_code ec;
  fs::create_directories(broker_.data_dir() + "/.mirror", ec);
  if (fs::exists(copy)) {
    return Error{Errc::already_exists, "topic '" + t.name + "': a mirror's copy " + copy + " exists beside " + led_dir(t.name) +
                                           "; move one away"};
  }
  fs::rename(led_dir(t.name), copy, ec);
  if (ec) return Error{Errc::io_error, "rename " + led_dir(t.name) + " to " + copy + ": " + ec.message()};
  return {};
}

void ClusterNode::forget(Local& t) {
  log("warn", "topic '" + t.name + "' (id " + std::to_string(t.id) + ") is no longer replicated by node '" + options_.node +
                  "' (deleted in etcd, or moved off it): its log here is deleted");
  if (t.role == Local::Role::leading) {
    served_->erase(t.name);
    t.led.clear();
    if (auto s = broker_.delete_topic(t.name); !s) log("error", s.error().message);
  }
  if (t.role == Local::Role::mirroring) {
    if (auto it = following_.find(t.leader); it != following_.end()) it->second->follower.reset();
    t.logs.clear();
    (void)broker_.stop_mirror(t.name);
    std::error_code ec;
    fs::remove_all(mirror_dir(t.name), ec);
  }
  t.role = Local::Role::none;
}

Status ClusterNode::serve_copy(Local& t) {
  auto served = broker_.serve_mirror(t.record.config, t.id, t.record.min_insync, mirror_dir(t.name));
  if (!served) return served.error();
  auto map = detail::TopicMap::open(broker_.instance(), t.name, /*populate=*/false);
  if (!map) return map.error();
  for (std::uint32_t p = 0; p < t.logs.size(); ++p) t.logs[p]->publish_to(map.value(), p);
  return {};
}

void ClusterNode::drop_stale_copy(const Local& t) {
  const std::string copy = mirror_dir(t.name);
  if (!fs::exists(copy)) return;
  auto meta = io::read_topic_meta(copy);
  if (meta && meta->topic_id == t.id) return;
  log("warn", "topic '" + t.name + "': " + copy + " is a copy of " +
                  (meta ? "an older topic of that name (id " + std::to_string(meta->topic_id) + ")" : "nothing readable (" + meta.error().message + ")") +
                  ": removed");
  std::error_code ec;
  fs::remove_all(copy, ec);
}

void ClusterNode::sweep_strays(const ClusterView& view) {
  const auto stray = [&](const std::string& dir, const std::string& name, bool led) {
    auto meta = io::read_topic_meta(dir);
    if (!meta || (led && meta->min_insync == 0)) return false;  // unreadable (the broker says so), or the broker's own
    const auto t = view.topics.find(name);
    const bool ours = t != view.topics.end() && t->second.id == meta->topic_id && t->second.record.replicated_on(options_.node);
    if (!ours) {
      log("warn", "topic '" + name + "' (id " + std::to_string(meta->topic_id) + ") is no longer replicated by node '" +
                      options_.node + "' (deleted in etcd, or moved off it, while it was down): its " +
                      (led ? "log" : "mirror's copy") + " here is deleted");
    }
    return !ours;
  };
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(broker_.data_dir() + "/.mirror", ec)) {
    const std::string name = e.path().filename().string();
    if (!stray(e.path().string(), name, false)) continue;
    (void)broker_.stop_mirror(name);
    std::error_code rm;
    fs::remove_all(e.path(), rm);
  }
  auto led = broker_.list_topics();
  if (!led) return;
  for (const std::string& name : led.value()) {
    if (!stray(led_dir(name), name, true)) continue;
    if (auto s = broker_.delete_topic(name); !s) log("error", s.error().message);
  }
}

void ClusterNode::step_down_all(const std::string& why) {
  for (auto& [name, t] : topics_) {
    if (t->role != Local::Role::leading) continue;
    if (auto s = step_down(*t, why); !s) log("error", s.error().message);
  }
  publish_roles();
}

Status ClusterNode::mirror(Local& t, const std::string& leader) {
  if (t.role == Local::Role::mirroring && t.leader == leader) return {};
  if (t.role == Local::Role::leading) {
    if (auto s = step_down(t, "node '" + leader + "' leads it now"); !s) return s;
  }
  if (t.role == Local::Role::mirroring) {
    // Another leader: the old one's follower lets go of the logs, which
    // the new one's follower takes on as they are.
    if (auto it = following_.find(t.leader); it != following_.end()) it->second->follower.reset();
  } else {
    const std::string copy = mirror_dir(t.name);
    (void)broker_.stop_mirror(t.name);  // rings of an earlier copy (made again below)
    if (broker_.describe_topic(t.name)) {
      // The broker recovered it at start, from when this node led it.
      t.role = Local::Role::leading;
      if (auto s = step_down(t, "node '" + leader + "' leads it now"); !s) return s;
    }
    drop_stale_copy(t);
    auto io = log::make_pwrite_io();
    if (auto s = io->make_directories(copy); !s) return s;
    if (auto s = write_copy_meta(t); !s) return s;
    t.logs.clear();
    for (std::uint32_t p = 0; p < t.record.config.partitions; ++p) {
      t.logs.push_back(std::make_unique<MirrorLog>(log::partition_log_directory(copy, p), t.record.config.log, options_.log,
                                                   "partition " + std::to_string(p) + " of topic '" + t.name + "' (mirror)"));
    }
    // This host's consumers read the copy through the mirror's rings; the
    // logs publish their marks there once the follower opens them.
    if (auto s = serve_copy(t); !s) log("warn", "topic '" + t.name + "': this host's consumers cannot read the mirror's copy: " + s.error().message);
  }
  t.role = Local::Role::mirroring;
  t.leader = leader;
  t.epoch = -1;
  name_leader(t);
  log("info", "node '" + options_.node + "' mirrors topic '" + t.name + "' from node '" + leader + "'");
  return {};
}

void ClusterNode::name_leader(const Local& t) {
  auto map = detail::TopicMap::open(broker_.instance(), t.name, /*populate=*/false);
  if (!map || !map.value()->ring(0).mirror()) return;
  for (std::uint32_t p = 0; p < map.value()->partition_count(); ++p) map.value()->ring(p).set_leader_elsewhere(t.leader);
}

void ClusterNode::maintain_isr(Local& t, VersionedLeadership& leadership,
                               const std::function<bool(const std::string&)>& alive) {
  std::set<std::string> out;
  // A mirror whose node is gone (its lease expired or revoked) leaves at
  // once, as Kafka's controller takes a dead broker out; one that lags
  // leaves after max_lag.
  for (const auto& n : leadership.state.isr)
    if (n != options_.node && !alive(n)) out.insert(n);
  std::map<std::string, std::uint32_t> back;  // caught up in how many partitions
  for (const auto& p : t.led) {
    for (const auto& m : p->lagging()) out.insert(m);
    for (const auto& m : p->caught_up()) ++back[m];
  }
  Leadership next = leadership.state;
  next.isr.erase(std::remove_if(next.isr.begin(), next.isr.end(), [&](const std::string& n) { return out.contains(n); }),
                 next.isr.end());
  for (const auto& [m, partitions] : back) {
    // (Only a live node: the tracker remembers a dead mirror as caught up
    // as of its last acknowledgement.)
    const bool replica = t.record.replicated_on(m);
    if (partitions == t.led.size() && replica && alive(m) && std::find(next.isr.begin(), next.isr.end(), m) == next.isr.end()) {
      next.isr.push_back(m);
    }
  }
  if (next.isr == leadership.state.isr) return;
  const std::vector<std::string> before = leadership.state.isr;
  // A member that joins is counted by the high watermark before etcd has
  // it (Kafka's maximal ISR): once etcd says it is in sync it may be
  // elected, and it must then hold whatever the high watermark covered. A
  // member that leaves is counted until etcd no longer has it.
  std::vector<std::string> counted = before;
  for (const auto& n : next.isr)
    if (std::find(counted.begin(), counted.end(), n) == counted.end()) counted.push_back(n);
  for (auto& p : t.led) p->set_isr(counted);
  auto swapped = leaderships_->swap(t.name, leadership, next);
  if (!swapped || !swapped.value()) {
    for (auto& p : t.led) p->set_isr(before);
    return;  // the next pass reads again
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& n : v) s += (s.empty() ? "" : ",") + n;
    return "[" + s + "]";
  };
  log("info", "topic '" + t.name + "': in-sync replicas " + join(before) + " -> " + join(next.isr));
  for (auto& p : t.led) p->set_isr(next.isr);
  t.isr = next.isr;
}

void ClusterNode::update_followers(const std::map<std::string, NodeRecord>& nodes) {
  std::map<std::string, std::vector<std::string>> wanted;  // leader -> topics, sorted (topics_ is)
  for (const auto& [name, t] : topics_) {
    if (t->role == Local::Role::mirroring) wanted[t->leader].push_back(name);
  }
  for (auto it = following_.begin(); it != following_.end();) {
    const auto w = wanted.find(it->first);
    const auto n = nodes.find(it->first);
    const bool same = w != wanted.end() && n != nodes.end() && w->second == it->second->topics &&
                      n->second.listen == it->second->address && it->second->follower;
    if (same) {
      ++it;
    } else {
      it = following_.erase(it);
    }
  }
  for (const auto& [leader, names] : wanted) {
    if (following_.contains(leader)) continue;
    const auto n = nodes.find(leader);
    if (n == nodes.end()) continue;
    std::vector<FollowTarget> targets;
    for (const std::string& name : names) {
      const Local& t = *topics_.at(name);
      for (std::uint32_t p = 0; p < t.logs.size(); ++p) {
        targets.push_back({name, t.id, p, t.logs[p].get(), p == 0 ? mirror_dir(name) + "/" + io::kGroupsDirName : ""});
      }
    }
    FollowerOptions fo;
    fo.me = PeerIdentity{options_.cluster, options_.node, options_.secret};
    fo.leader = n->second.listen;
    fo.log = link_log_;
    auto f = std::make_unique<Following>();
    f->address = n->second.listen;
    f->topics = names;
    f->follower = std::make_unique<MirrorFollower>(fo, std::move(targets));
    following_[leader] = std::move(f);
  }
}

void ClusterNode::publish_roles() {
  std::vector<TopicRole> roles;
  for (const auto& [name, t] : topics_) {
    if (t->role == Local::Role::none) continue;
    TopicRole r;
    r.topic = name;
    r.topic_id = t->id;
    r.leading = t->role == Local::Role::leading;
    r.leader = t->leader;
    r.epoch = t->epoch;
    r.isr = t->isr;
    r.log = t->record.config.log;
    for (const auto& p : t->led) r.partitions.push_back(p->progress());
    roles.push_back(std::move(r));
  }
  std::lock_guard lock(roles_mu_);
  roles_ = std::move(roles);
}

}  // namespace ringbus::cluster
