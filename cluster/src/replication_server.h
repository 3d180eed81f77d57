// A leader node's replication port: accepts links from mirror nodes, checks
// their proof (peer_link.h), and serves the streams they open
// (cluster/README.md, "A stream"): answers follow and epoch queries, and
// streams each partition's batches from its segment files (LogReader, below
// the written offset) as they are written, with the high watermark, and
// each topic's consumer-group files with its partition 0; hands each
// mirror's acknowledgements to the partition.
//
// Threading: one thread of its own. The LedPartition callbacks are called
// on it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "epoch_file.h"
#include "log_reader.h"
#include "log_writer.h"
#include "peer_link.h"
#include "stop_signal.h"

namespace ringbus::cluster {

// What the leader's node tells the server about one partition it leads.
class LedPartition {
 public:
  virtual ~LedPartition() = default;
  virtual const std::string& log_dir() const = 0;
  virtual std::int32_t leader_epoch() const = 0;
  // Batches below are wholly on disk: the streams' limit.
  virtual std::uint64_t written() const = 0;
  virtual std::uint64_t log_start() const = 0;
  virtual std::uint64_t high_watermark() const = 0;
  // The largest epoch at or below `epoch` and where it ends
  // (PartitionLog::end_of_epoch); nothing if the log has no epoch that old.
  // Called on the server's thread while the log is written on another: the
  // implementation locks what it reads. An error (the epochs cannot be
  // read) closes the link: the mirror asks again on its next one.
  virtual Result<std::optional<io::LeaderEpoch>> end_of_epoch(std::int32_t epoch) const = 0;
  // A mirror's acknowledgement (the in-sync set and high watermark follow).
  virtual void acknowledged(const std::string& mirror, std::uint64_t written, std::uint64_t durable) = 0;
};

// How the server finds the partitions the node leads.
class LedPartitions {
 public:
  virtual ~LedPartitions() = default;
  struct Found {
    std::shared_ptr<LedPartition> partition;  // null: refused, as `code` and `why` say
    wire::ErrorCode code = wire::ErrorCode::unknown_topic;
    std::string why;
  };
  virtual Found find(std::string_view topic, std::uint64_t topic_id, std::uint32_t partition) = 0;
};

struct ServerOptions {
  PeerIdentity me;
  std::string listen;  // host:port (port 0: any free one)
  io::LogFn log = {};
  std::chrono::milliseconds handshake_timeout{2000};
  // A link heard nothing on for this long is closed; a heartbeat goes out
  // when nothing was sent for a quarter of it.
  std::chrono::milliseconds idle_timeout{5000};
};

class ReplicationServer {
 public:
  static Result<std::unique_ptr<ReplicationServer>> start(ServerOptions options, LedPartitions& partitions);
  ~ReplicationServer();  // stop()
  std::uint16_t port() const noexcept { return listener_.port; }
  void stop();
  // The led logs moved (the node's watcher of their marks calls this, from
  // its own thread): streams at their log's end look again at once, not at
  // the next poll (1 ms). A latency matter only: without it they still do.
  void logs_moved() noexcept { news_.notify(); }

 private:
  struct Stream {
    std::shared_ptr<LedPartition> part;
    std::string where;  // "partition P of topic 'T' to node 'N'"
    std::unique_ptr<log::FileIo> io;
    std::unique_ptr<log::LogReader> reader;
    // The reader's segment, open for sendfile while the link sends from it.
    std::shared_ptr<const SharedFile> file;
    std::uint64_t file_segment = 0;
    bool sending = false;
    std::uint64_t next = 0;              // the next offset to send
    std::uint64_t sent_hw = UINT64_MAX;  // the high watermark last sent
    // A topic's partition 0 also carries its consumer groups' files
    // (group_files.h): where they are ("": not this stream), what was last
    // sent, and when the directory was last looked at.
    std::string groups_dir;
    std::optional<std::string> groups_signature;
    std::chrono::steady_clock::time_point groups_checked{};
  };
  struct Link {
    std::unique_ptr<PeerLink> link;
    std::string mirror;
    std::map<std::uint32_t, Stream> streams;
  };
  ReplicationServer(ServerOptions options, LedPartitions& partitions, Listener listener);
  void run();
  // Accepts one waiting connection and runs its handshake.
  void accept_link_waiting();
  // Reads and answers a link's frames; false when it is to be closed.
  bool serve(Link& l);
  Status handle(Link& l, const wire::Message& m);
  // Queues what the link's streams have, a frame of each in turn, until
  // the link's queue is full or every stream is at its log's written end;
  // true if a stream is waiting for more to be written.
  bool feed(Link& l);
  enum class Fed : std::uint8_t { more, at_end, full, failed };
  // One frame of one stream.
  Fed feed_frame(Link& l, std::uint32_t id, Stream& s);
  // Sends a topic's group files on its partition 0's stream when they
  // changed (looked at every kGroupsEvery).
  void feed_groups(Link& l, std::uint32_t id, Stream& s);
  void log(const char* level, const std::string& message) const;

  ServerOptions options_;
  LedPartitions& partitions_;
  Listener listener_;
  std::vector<std::unique_ptr<Link>> links_;
  StopSignal stop_;
  WakeSignal news_;
  std::thread thread_;
};

}  // namespace ringbus::cluster
