// A mirror's copy of one partition's log: the PartitionLog and LogWriter a
// follower appends its leader's batches through (io/README.md, "The log
// writer"), with a FileIo of its own, driven from the follower's thread.
// The log keeps the leader's offsets and epochs; written and durable follow
// the topic's durability policy, as on the leader.
//
// Threading: one thread (the follower's). written()/durable() may be read
// from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "file_io.h"
#include "log_writer.h"
#include "partition_log.h"
#include "topic_files.h"

namespace ringbus::cluster {

class MirrorLog : private io::LogWriter::Events {
 public:
  // Opens (recovering) the log in `dir`; a directory without a segment gets
  // its first one when the leader says where its log starts (ensure_open).
  // `where` names the partition in logs.
  MirrorLog(std::string dir, LogConfig config, io::LogFn log_fn, std::string where);
  ~MirrorLog() override;

  const std::string& where() const noexcept { return where_; }
  // Opens the log, creating it at `first_offset` if it has no segment yet.
  Status ensure_open(std::uint64_t first_offset);
  bool is_open() const noexcept { return writer_ != nullptr; }

  // (open) The offset the next batch must start at, the log's start.
  std::uint64_t end() const noexcept { return writer_->next_offset(); }
  std::uint64_t start() const noexcept { return writer_->log().start_offset(); }
  // (open) The largest epoch at or below `epoch` and where it ends.
  std::optional<io::LeaderEpoch> end_of_epoch(std::int32_t epoch) const noexcept {
    return writer_->log().end_of_epoch(epoch);
  }
  const std::vector<io::LeaderEpoch>& epochs() const noexcept { return writer_->log().epochs(); }

  // The topic was altered: its settings apply from the next pump (sync
  // policy, retention) and the next roll (segment size), as a flusher's.
  // Only while no follower uses the log.
  void reconfigure(const LogConfig& config);
  const LogConfig& config() const noexcept { return config_; }
  // Hands a batch to the writer (checked whole: LogWriter::append), copied,
  // or (Hold::borrow) written from the caller's bytes, which must then stay
  // as they are until release_input(). Pumps while every slot is in flight;
  // Errc::io_error naming the cause once writes fail (a full disk: the
  // writer goes on retrying what it holds).
  Status append(std::span<const std::byte> batch, io::LogWriter::Hold hold = io::LogWriter::Hold::copy);
  // Writes what it can of the batches borrowed and copies the rest (not
  // yet placed, or failed and retried later): the caller's bytes may change
  // after it.
  void release_input();
  // Queues writes and syncs, reaps what completed.
  void pump();
  // Pumps until every batch handed over is written, unless writes fail (a
  // stream that stops keeps what it accepted).
  void settle();
  // Cuts the log to end at or below `offset` once every write is done.
  Result<std::uint64_t> truncate_to(std::uint64_t offset);
  // Deletes the whole copy and opens it again, empty, at `offset`: for a
  // copy that ends below its leader's log start (it fell behind past the
  // leader's retention), whose records are all gone from the leader too
  // (Kafka's truncateFullyAndStartAt).
  Status start_over(std::uint64_t offset);
  // Writes everything submitted and closes the log cleanly.
  Status close_clean();

  // (open) True while batches it took wait on writes that fail.
  bool stuck() const noexcept { return writer_->busy() && writer_->stuck(); }

  // Publishes the copy's marks in the mirror's rings, for this host's
  // consumers (Broker::serve_mirror): its start, written and durable
  // offsets whenever they move, and the replicated end (the leader's high
  // watermark, within what is written). Called before the follower runs.
  void publish_to(std::shared_ptr<detail::TopicMap> map, std::uint32_t partition);
  // The leader's high watermark, as its stream last said.
  void set_high_watermark(std::uint64_t hw);

  std::uint64_t written() const noexcept { return written_.load(std::memory_order_acquire); }
  std::uint64_t durable() const noexcept { return durable_.load(std::memory_order_acquire); }
  int error() const noexcept { return error_.load(std::memory_order_relaxed); }

 private:
  void written(std::uint64_t offset, std::uint64_t cookie) override;
  void durable(std::uint64_t offset) override;
  void failed(int err) override;
  void start_moved(std::uint64_t offset) override;
  void publish_marks();

  std::string dir_;
  LogConfig config_;
  io::LogFn log_fn_;
  std::string where_;
  std::unique_ptr<log::FileIo> io_;
  std::unique_ptr<io::LogWriter> writer_;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> durable_{0};
  std::shared_ptr<detail::TopicMap> marks_;  // the mirror's rings (publish_to)
  std::uint32_t partition_ = 0;
  std::uint64_t high_watermark_ = 0;
  std::atomic<int> error_{0};
};

}  // namespace ringbus::cluster
