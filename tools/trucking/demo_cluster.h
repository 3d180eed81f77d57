// ringbus-trucking-demo --mirrors: the pipeline's cluster, all on this
// machine with the real parts (cluster/README.md): an etcd (Debian's
// etcd-server) and two ringbusd nodes, a and b, on loopback, each with its
// own shared-memory instance (<instance>-a, <instance>-b) and data
// directory, as two hosts would have. The topics are replicated on both
// and led by a first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "demo_processes.h"

namespace ringbus::trucking {

class DemoCluster {
 public:
  struct Topic {
    std::string name;
    std::uint32_t partitions;
  };
  // Everything it starts goes into `processes` (stopped on any way out).
  DemoCluster(Processes& processes, std::string instance, std::string dir);
  ~DemoCluster();  // removes the shared memory of nodes that were killed

  // Starts etcd and the nodes, creates the topics on a (two replicas,
  // acks=all needing one), and waits until b is in sync in every one.
  // False, having said why on stderr, if any of it fails.
  bool start(const std::vector<Topic>& topics);
  std::string instance(char node) const { return instance_ + "-" + node; }
  // The node's host dies: SIGKILL of its ringbusd.
  void kill(char node);
  // Waits until `node` serves every topic as its leader; false after
  // `timeout_s`.
  bool wait_leading(char node, double timeout_s) const;

 private:
  bool start_node(char node, const std::string& etcd_url);
  // Runs the ringbus command line on node's instance; its exit code, and
  // its output in *out if given.
  int ringbus(char node, std::vector<std::string> args, std::string* out = nullptr) const;
  bool in_sync() const;

  Processes& processes_;
  const std::string instance_;
  const std::string dir_;
  std::string ringbusd_path_;
  std::string ringbus_path_;
  std::vector<Topic> topics_;
  pid_t node_pid_[2] = {0, 0};
};

}  // namespace ringbus::trucking
