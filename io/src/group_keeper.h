// The broker's keeper of consumer-group positions: it writes every group's
// committed offsets to its topic's log directory (group_offsets.h), so they
// survive a broker restart and a host crash, and it evicts dead members of
// groups nobody polls. At start the broker restores the groups from those
// files before clients can join.
//
// After each pass it tells the broker, per topic with a commit log, the
// offsets below which every group has durably committed (retention policy
// consumed): the lowest written position of any group, per partition; 0
// while a group's positions are not written yet, and 0 with no group.
//
// Threading: one thread of its own. Each pass takes the broker's topic mutex,
// so a topic is never deleted under a write (and on_consumed runs under it).
#pragma once

#include <condition_variable>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flusher.h"
#include "ringbus/result.h"

namespace ringbus::detail {
class GroupFile;
}

namespace ringbus::io {

class GroupKeeper {
 public:
  using ConsumedFn = std::function<void(const std::string& topic, const std::vector<std::uint64_t>& below)>;
  // Whether a topic's groups are the broker's to keep (called under
  // topics_mu): not a cluster mirror's copy, whose group files are its
  // leader's (cluster/README.md, "Consumer groups across a failover").
  using OwnsFn = std::function<bool(const std::string& topic)>;
  GroupKeeper(std::string instance, std::mutex& topics_mu, LogFn log, OwnsFn owns, ConsumedFn on_consumed);
  ~GroupKeeper();  // stop()
  // A last pass (so what members committed just before is written), then the thread ends.
  void stop();

  // Recreates a topic's groups in shared memory from <topic_dir>/groups/.
  // A file that fails its checks is logged and left for the operator. A
  // position past a partition's log end (`ends`: records a crashed broker
  // never wrote, which a member had read) is moved back to the end, so the
  // group reads what producers publish there next.
  static void restore(const std::string& instance, const std::string& topic, std::uint64_t topic_id,
                      const std::vector<std::uint64_t>& ends, const std::string& topic_dir, const LogFn& log);

 private:
  struct Known {
    std::shared_ptr<detail::GroupFile> file;
    std::uint64_t inode = 0;
    std::vector<std::uint64_t> written;  // offsets last written
    std::uint64_t written_seq = 0;       // commit_seq covered by the last write
    std::int64_t written_ns = 0;
    bool failing = false;                // an error was logged; log again only once it works
  };
  void run();
  void pass(bool final);
  // Returns the group's positions as last written (empty: none yet).
  const std::vector<std::uint64_t>* keep(const std::string& topic, const std::string& topic_dir,
                                         const std::string& group, bool final);

  std::string instance_;
  std::mutex& topics_mu_;
  LogFn log_;
  OwnsFn owns_;
  ConsumedFn on_consumed_;
  std::map<std::string, Known> known_;  // "<topic>/<group>"
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ringbus::io
