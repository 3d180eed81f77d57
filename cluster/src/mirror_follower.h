// A mirror node's side of one link: connects to a leader node, proves
// itself, and follows some of its partitions, each into a MirrorLog
// (cluster/README.md, "A stream"): follow, find where the logs diverge by
// epoch and truncate there (KIP-101, KIP-279), fetch, then append the
// batches the leader streams and acknowledge what is written and durable.
//
// A link that fails (the leader went away, refused, or sent what we cannot
// take) is logged with the peer and the fault and dialled again after a
// pause; so is one whose log cannot write (a full disk), once the log's
// writes go through again, and one whose leader says it does not lead a
// partition (not yet, or no longer: the node re-points the follower). A
// stream whose batches the log refuses, or that the leader refuses for
// another reason, stops with the reason (state() says it) and nothing
// already written is touched.
//
// Threading: one thread of its own; state() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "log_writer.h"
#include "mirror_log.h"
#include "peer_link.h"
#include "stop_signal.h"

namespace ringbus::cluster {

struct FollowerOptions {
  PeerIdentity me;
  std::string leader;  // the leader node's replication address, host:port
  io::LogFn log = {};
  std::chrono::milliseconds timeout{2000};      // dial, handshake
  std::chrono::milliseconds redial_pause{200};  // after a link failed
  // A link heard nothing on for this long is closed (and dialled again); a
  // heartbeat goes out when nothing was sent for a quarter of it.
  std::chrono::milliseconds idle_timeout{5000};
};

// One partition to follow, into `log` (which the follower then owns the
// use of, from its thread).
struct FollowTarget {
  std::string topic;
  std::uint64_t topic_id = 0;
  std::uint32_t partition = 0;
  MirrorLog* log = nullptr;
  // Partition 0: where the topic's consumer-group files go (the leader
  // sends them on this stream, group_files.h); "": they are not kept.
  std::string groups_dir = {};
};

class MirrorFollower {
 public:
  enum class Phase : std::uint8_t { connecting, finding_divergence, following, failed };
  struct StreamState {
    Phase phase = Phase::connecting;
    std::int32_t leader_epoch = -1;
    std::uint64_t high_watermark = 0;  // as the leader last said
    std::string error;                 // failed: why
  };

  MirrorFollower(FollowerOptions options, std::vector<FollowTarget> targets);
  ~MirrorFollower();  // stop()
  void stop();
  StreamState state(std::size_t target) const;

 private:
  struct Stream {
    FollowTarget target;
    StreamState state;
    std::int32_t query_epoch = -1;  // the epoch asked about (finding_divergence)
    std::uint64_t leader_start = 0;  // the leader's log start, as its following said
    std::uint64_t acked_written = UINT64_MAX;
    std::uint64_t acked_durable = UINT64_MAX;
  };
  // A stream's id on the wire: its target's index + 1.
  std::uint32_t id_of(const Stream& s) const noexcept { return static_cast<std::uint32_t>(&s - streams_.data() + 1); }
  void run();
  // One link's life: false when stopping.
  void serve(PeerLink& link);
  // Handles a frame; an error ends the link.
  Status handle(PeerLink& link, const wire::Message& m);
  Status on_following(PeerLink& link, Stream& s, const wire::Following& f);
  Status on_epoch_end(PeerLink& link, Stream& s, const wire::EpochEnd& e);
  // Starts the copy over at the leader's log start if it ends below it (an
  // error, which ends the link, if the copy cannot be deleted).
  Status start_over_if_behind(PeerLink& link, Stream& s);
  Status on_batches(PeerLink& link, Stream& s, const wire::Batches& b);
  void fail_stream(PeerLink& link, Stream& s, wire::ErrorCode code, const std::string& why);
  // The log cannot write (a full disk): tells the leader, ends the link;
  // the next link tries again (the leader's tracker sees this mirror lag).
  Status storage_failure(PeerLink& link, Stream& s, const std::string& why);
  void send_acks(PeerLink& link);
  void publish(const Stream& s);
  void log(const char* level, const std::string& message) const;

  FollowerOptions options_;
  std::vector<Stream> streams_;  // stream id i + 1
  mutable std::mutex mu_;
  std::vector<StreamState> published_;  // state() reads these
  StopSignal stop_;
  std::thread thread_;
};

}  // namespace ringbus::cluster
