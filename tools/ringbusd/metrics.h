// ringbusd's metrics: sampled once a second from the broker (end, written
// and durable offsets, the log's start and size, the flusher's error), with
// rates computed between samples; and per consumer group and partition the
// committed offset, the lag and the rate the group consumes at; and the
// scrubber's progress and the damage it found; on a cluster node, per topic
// it replicates its leader epoch, and per partition it leads the high
// watermark and each mirror's lag and in-sync state, and the replication
// links' faults. Served as Prometheus text on a
// loopback HTTP port and as JSON on the control channel (`ringbus stats`).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster_node.h"
#include "ringbus/broker.h"
#include "ringbus/result.h"

namespace ringbus::daemon {

struct PartitionSample {
  std::string topic;
  PartitionInfo info;                // offsets and the flusher's error, as the broker describes them
  std::uint64_t retained_bytes = 0;  // the partition's segment files
  double records_in_per_second = 0;
};

// One consumer group's partition: its position and how far behind it is.
struct GroupSample {
  std::string topic;
  std::string group;
  std::string mode;
  std::uint32_t partition = 0;
  std::uint64_t committed = 0;
  std::uint64_t lag = 0;
  double records_out_per_second = 0;  // the committed offset's rate
};

// sample() is called by one thread (the daemon's main loop); the readers
// (HTTP thread, control thread) take a copy under the mutex. Not on any data
// path.
class Metrics {
 public:
  Metrics(Broker& broker, std::string data_dir);
  // A cluster node's replication, sampled with the rest from now on.
  void set_cluster(const cluster::ClusterNode* node) noexcept { node_ = node; }
  void sample(std::int64_t now_ns);
  void count_error() noexcept { errors_.fetch_add(1, std::memory_order_relaxed); }
  std::string prometheus() const;
  nlohmann::json json() const;

 private:
  Broker& broker_;
  std::string data_dir_;
  std::atomic<std::uint64_t> errors_{0};
  mutable std::mutex mu_;
  std::vector<PartitionSample> samples_;
  std::vector<GroupSample> groups_;
  const cluster::ClusterNode* node_ = nullptr;
  std::vector<cluster::TopicRole> roles_;
  std::uint64_t link_faults_ = 0;
  ScrubStats scrub_;
  std::int64_t sampled_ns_ = 0;
  // (topic/group, partition) -> the previous committed offset, for the rate.
  std::map<std::pair<std::string, std::uint32_t>, std::uint64_t> previous_committed_;
  // (topic, partition) -> the previous end offset, for the rate.
  std::map<std::pair<std::string, std::uint32_t>, std::uint64_t> previous_;
};

// GET /metrics on 127.0.0.1:port (0: the kernel picks a free port), HTTP/1.0,
// one request per connection, answered from a thread of its own.
class MetricsHttpServer {
 public:
  static Result<std::unique_ptr<MetricsHttpServer>> start(std::uint16_t port, const Metrics& metrics);
  ~MetricsHttpServer();
  std::uint16_t port() const noexcept { return port_; }

 private:
  MetricsHttpServer() = default;
  void run();
  const Metrics* metrics_ = nullptr;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace ringbus::daemon
