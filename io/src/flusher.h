// The flusher: follows a partition's ring as a gating reader and appends
// what producers committed to the partition's commit log.
//
// PartitionFlusher is the state machine of one partition: it copies runs of
// committed claims (their record frames, without the ring's padding) into
// batch buffers and queues the batches' writes; several are in flight. The
// written offset advances over the batches whose writes completed, in
// order, and only then does the flusher's gate release their ring space: a
// broker that dies leaves every record that is not completely written in the
// ring, where the next broker finds it (open_broker_gate). fdatasync follows
// the topic's durability policy, and the durable offset follows it. Both
// marks are published in the partition header, where producers waiting in
// wait_durable() and consumers reading from disk see them.
//
// A write or a roll that fails (ENOSPC, EIO) is logged once with the file
// and cause, the error is published (waiters get log_failed), and it is
// retried with back-off (10 ms doubling to 1 s) until it succeeds; meanwhile
// the ring fills and producers are back-pressured. Nothing already written
// is touched. A failed fdatasync takes the partition offline (go_offline).
//
// FlusherThread runs several PartitionFlushers on one thread with one FileIo
// (one io_uring). Threading: add/remove/stop may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "record_batch.h"
#include "file_io.h"
#include "partition_log.h"
#include "ringbus/topic.h"
#include "topic_files.h"

namespace ringbus::io {

// Where the flusher reports (the broker's logger): level ("info", "warn",
// "error") and a message.
using LogFn = std::function<void(const char* level, const std::string& message)>;

// Per partition of a topic: the offset below which every consumer group of
// the topic has durably committed (0 while a group has not written its
// positions yet, or there is no group). The group keeper writes it; the
// flushers' retention reads it (RetentionPolicy::consumed).
struct ConsumedOffsets {
  explicit ConsumedOffsets(std::uint32_t partitions) : below(partitions) {}
  std::vector<std::atomic<std::uint64_t>> below;
};

class PartitionFlusher {
 public:
  PartitionFlusher(std::shared_ptr<detail::TopicMap> topic, std::uint32_t partition,
                   std::unique_ptr<PartitionLog> log, log::FileIo& io, const LogConfig& config, LogFn log_fn,
                   std::uint64_t tag_base, std::shared_ptr<const ConsumedOffsets> consumed);
  ~PartitionFlusher();

  // Gathers what producers committed, queues writes and syncs, retries
  // failed writes when due, runs retention when due. Returns true if it did
  // anything.
  // With `drain`, writes what is committed at once (stopping).
  bool pump(std::int64_t now_ns, bool drain = false);
  // True if the last pump() left records in the ring to wait for more.
  bool lingering() const noexcept { return lingering_; }
  // A completion whose tag is in [tag_base, tag_base + kTagSpan).
  void on_completion(const log::IoCompletion& c, std::int64_t now_ns);
  bool busy() const noexcept { return !order_.empty() || sync_in_flight_; }
  // True while a write or sync of this partition has not completed.
  bool in_flight() const noexcept;
  // True if the ring may have something for pump() (for the idle wait).
  bool ring_has_news() const noexcept;
  detail::PartitionRing& ring() const noexcept { return ring_; }
  // Stops gathering, lets in-flight requests finish (the caller reaps), and
  // then closes the log cleanly.
  Status close_clean();
  // The topic was altered: the new settings apply from the next pump (sync
  // policy, retention at once) and the next roll (segment size).
  void reconfigure(const LogConfig& config);
  std::uint64_t topic_id() const noexcept { return topic_->topic_id(); }

  static constexpr std::uint64_t kTagSpan = 1 << 16;

 private:
  enum class State : std::uint8_t { free, ready, writing, done, failed };
  struct Buffer {
    log::v2::BatchBuilder builder;  // the batch being encoded (Kafka's v2)
    std::span<const std::byte> bytes;
    State state = State::free;
    std::uint64_t end_offset = 0;
    std::uint64_t end_position = 0;  // the ring position after its last claim
    PartitionLog::Placement place{};
  };
  bool linger(std::int64_t now_ns) noexcept;
  bool gather(Buffer& b);
  void place_ready(std::int64_t now_ns);
  void maybe_sync(std::int64_t now_ns);
  void wake_durable_waiters() noexcept;
  void publish(std::atomic<std::uint64_t>& mark, std::uint64_t value);
  void set_error(int err);
  void report_error(const std::string& what, int err);
  void go_offline(const std::string& why);

  std::shared_ptr<detail::TopicMap> topic_;
  detail::PartitionRing& ring_;
  std::unique_ptr<PartitionLog> log_;
  log::FileIo& io_;
  LogConfig config_;
  LogFn log_fn_;
  std::uint64_t tag_base_;
  std::shared_ptr<const ConsumedOffsets> consumed_;
  detail::ReaderCursor cursor_;
  std::uint64_t log_next_ = 0;           // the offset the log's next batch starts at
  std::vector<Buffer> buffers_;
  std::uint64_t linger_bytes_;
  std::int64_t linger_since_ = 0;
  bool lingering_ = false;
  std::vector<std::size_t> order_;       // buffers ready/writing/done, in offset order
  std::uint64_t written_ = 0;            // offsets below are written
  std::uint64_t durable_ = 0;            // ... and synced
  bool sync_in_flight_ = false;
  std::uint64_t sync_target_ = 0;
  std::int64_t last_sync_ns_ = 0;
  std::uint64_t bytes_since_sync_ = 0;
  std::int64_t next_retention_ns_ = 0;
  std::int64_t retry_at_ns_ = 0;         // failed writes are retried from then
  std::int64_t roll_retry_at_ns_ = 0;    // a failed roll is tried again from then
  std::int64_t backoff_ns_ = 0;
  int error_ = 0;                        // the errno we are stuck on
  bool error_reported_ = false;
  bool offline_ = false;                 // an fdatasync failed: nothing more is taken (go_offline)
};

class FlusherThread {
 public:
  FlusherThread(std::unique_ptr<log::FileIo> io, LogFn log_fn);
  ~FlusherThread();  // stop()

  log::FileIo& io() noexcept { return *io_; }
  // Attaches a partition with its opened (recovered) log. The log's own
  // FileIo serves its synchronous calls (any FdFileIo: they are plain system
  // calls); this thread's serves the batch writes. Does not wait (nothing
  // can fail): the thread takes it at its next turn, before any later
  // command. A broker restarting with hundreds of partitions attaches them
  // while the first ones are already writing.
  void add(std::shared_ptr<detail::TopicMap> topic, std::uint32_t partition, std::unique_ptr<PartitionLog> log,
           const LogConfig& config, std::shared_ptr<const ConsumedOffsets> consumed);
  // Hands new log settings to every partition of a topic. Waits for it.
  void reconfigure(std::uint64_t topic_id, const LogConfig& config);
  // Detaches every partition of a topic, without closing the logs cleanly
  // (the topic is being deleted). Waits for it.
  void remove(std::uint64_t topic_id);
  // Flushes what is committed, closes every log cleanly, ends the thread.
  void stop();

 private:
  struct Command {
    enum class Kind { add, remove, reconfigure } kind;
    std::shared_ptr<detail::TopicMap> topic;
    std::uint32_t partition = 0;
    std::unique_ptr<PartitionLog> log;
    LogConfig config;
    std::shared_ptr<const ConsumedOffsets> consumed;
    std::uint64_t topic_id = 0;
    std::promise<Status> done;
  };
  void run();
  void run_commands();
  void reap(std::size_t min);
  void dispatch(std::span<const log::IoCompletion> done, std::int64_t now_ns);
  // Queues a command and wakes the thread; waits for it if `wait`.
  Status submit(Command c, bool wait = true);

  std::unique_ptr<log::FileIo> io_;
  LogFn log_fn_;
  // By key; a flusher's completion tags are key * kTagSpan + slot.
  std::map<std::uint64_t, std::unique_ptr<PartitionFlusher>> parts_;
  std::mutex mu_;
  std::vector<Command> commands_;
  std::atomic<bool> has_commands_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint32_t> wake_{0};  // bumped with every command (the thread may be asleep)
  std::uint64_t next_key_ = 0;
  std::thread thread_;  // last: started when everything above is ready
};

}  // namespace ringbus::io
