// The flusher: follows a partition's ring as a gating reader, encodes what
// producers committed into Kafka v2 batches and hands them to the
// partition's LogWriter (log_writer.h), which writes them, several in
// flight, and keeps the written and durable marks.
//
// PartitionFlusher is the ring side of one partition: it encodes runs of
// committed claims into the writer's free slots and publishes what the
// writer reports in the partition header, where producers waiting in
// wait_durable() and consumers reading from disk see it. Only when a batch's
// write has completed does the flusher's gate release its ring space: a
// broker that dies leaves every record that is not completely written in the
// ring, where the next broker finds it (open_broker_gate). While writes fail
// (the writer retries them) no slot is free and producers are back-pressured
// by the ring.
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

#include "file_io.h"
#include "log_writer.h"
#include "partition_log.h"
#include "ringbus/topic.h"
#include "topic_files.h"

namespace ringbus::io {

// Per partition of a topic: the offset below which every consumer group of
// the topic has durably committed (0 while a group has not written its
// positions yet, or there is no group). The group keeper writes it; the
// flushers' retention reads it (RetentionPolicy::consumed).
struct ConsumedOffsets {
  explicit ConsumedOffsets(std::uint32_t partitions) : below(partitions) {}
  std::vector<std::atomic<std::uint64_t>> below;
};

class PartitionFlusher : private LogWriter::Events {
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
  bool busy() const noexcept { return writer_.busy(); }
  // True while a write or sync of this partition has not completed.
  bool in_flight() const noexcept { return writer_.in_flight(); }
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
  std::uint32_t partition() const noexcept { return partition_; }
  // LogWriter::lead: the batches it encodes from now on carry `epoch`.
  Status lead(std::int32_t epoch) { return writer_.lead(epoch); }

  static constexpr std::uint64_t kTagSpan = LogWriter::kTagSpan;

 private:
  bool linger(std::int64_t now_ns) noexcept;
  enum class Gathered : std::uint8_t { nothing, built, foreign };
  Gathered gather(log::v2::BatchBuilder& b);
  void wake_durable_waiters() noexcept;
  void publish(std::atomic<std::uint64_t>& mark, std::uint64_t value);
  // LogWriter::Events: into the partition header.
  void written(std::uint64_t offset, std::uint64_t ring_position) override;
  void durable(std::uint64_t offset) override;
  void failed(int err) override;
  void start_moved(std::uint64_t offset) override;

  std::shared_ptr<detail::TopicMap> topic_;
  std::uint32_t partition_;
  detail::PartitionRing& ring_;
  LogFn log_fn_;
  std::shared_ptr<const ConsumedOffsets> consumed_;
  std::string where_;                    // "partition N of topic 'T'", for logs
  detail::ReaderCursor cursor_;
  LogWriter writer_;
  Durability durability_;
  Compression compression_;              // of the batches it encodes
  std::vector<std::byte> foreign_;       // a batch frame's batch, on its way to the writer
  std::uint64_t linger_bytes_;
  std::uint64_t bytes_base_;  // the ring's log_bytes when this flusher began (a dead one's count goes on)
  std::int64_t linger_since_ = 0;
  bool lingering_ = false;
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
  // LogWriter::lead for one partition of a topic. Waits for it; not_found if
  // this thread has no such partition.
  Status lead(std::uint64_t topic_id, std::uint32_t partition, std::int32_t epoch);
  // Detaches every partition of a topic, without closing the logs cleanly
  // (the topic is being deleted). Waits for it.
  void remove(std::uint64_t topic_id);
  // Detaches every partition of a topic after writing what its rings hold
  // committed, closing the logs cleanly (the topic is handed to someone
  // else: a cluster's mirror). Waits for it; the first close that failed.
  Status release(std::uint64_t topic_id);
  // Flushes what is committed, closes every log cleanly, ends the thread.
  void stop();

 private:
  struct Command {
    enum class Kind { add, remove, release, reconfigure, lead } kind;
    std::shared_ptr<detail::TopicMap> topic;
    std::uint32_t partition = 0;
    std::unique_ptr<PartitionLog> log;
    LogConfig config;
    std::shared_ptr<const ConsumedOffsets> consumed;
    std::uint64_t topic_id = 0;
    std::int32_t epoch = 0;
    std::promise<Status> done;
  };
  void run();
  void run_commands();
  void reap(std::size_t min);
  void dispatch(std::span<const log::IoCompletion> done, std::int64_t now_ns);
  // Writes what the rings of the partitions `pick` chooses hold committed,
  // waits for every request, closes their logs cleanly and detaches them;
  // the first close that failed.
  template <class Pick>
  Status finish(Pick&& pick);
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
