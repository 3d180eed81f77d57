// One partition's log writer: appends whole Kafka v2 batches at the offsets
// they carry, several writes in flight, and keeps the written and durable
// marks. The flusher feeds it batches it encodes from the ring; a mirror
// (issue "Peer mirrors") feeds it batches as they came from the leader.
//
// Batches are written in the order they are submitted; the written offset
// advances over the batches whose writes completed, in order. fdatasync
// follows the topic's durability policy and the durable offset follows it.
// What the marks reach is told to the owner (Events), which publishes it.
//
// A write or a roll that fails (ENOSPC, EIO) is logged once with the file
// and cause, the error is told (Events::failed), and it is retried with
// back-off (10 ms doubling to 1 s) until it succeeds; meanwhile no slot is
// free and the caller's source backs up. Nothing already written is
// touched. A failed fdatasync takes the partition offline (go_offline).
//
// Threading: one thread (the FlusherThread that owns the partition).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "file_io.h"
#include "partition_log.h"
#include "record_batch.h"
#include "ringbus/topic.h"

namespace ringbus::io {

// Where the flusher and the writer report (the broker's logger): level
// ("info", "warn", "error") and a message.
using LogFn = std::function<void(const char* level, const std::string& message)>;

class LogWriter {
 public:
  // What the owner publishes (the flusher: into the partition's header,
  // where producers and consumers see it). Called on the writer's thread.
  class Events {
   public:
    virtual ~Events() = default;
    // Every offset below `offset` is written; `cookie` is the one the last
    // of those batches was submitted with.
    virtual void written(std::uint64_t offset, std::uint64_t cookie) = 0;
    virtual void durable(std::uint64_t offset) = 0;
    // The errno writes are stuck on; 0 when they succeed again.
    virtual void failed(int err) = 0;
    // Retention deleted segments: the log starts there now.
    virtual void start_moved(std::uint64_t offset) = 0;
  };

  // `where` names the partition in logs ("partition 0 of topic 't'").
  LogWriter(std::unique_ptr<PartitionLog> log, log::FileIo& io, const LogConfig& config, LogFn log_fn,
            std::uint64_t tag_base, std::string where, Events& events);

  // The offset the next batch must start at: the end of what was submitted.
  std::uint64_t next_offset() const noexcept { return next_; }
  // The leader epoch the batches it builds carry: the log's last batch's
  // (0 until a cluster elects), or the one lead() set.
  std::int32_t epoch() const noexcept { return epoch_; }
  // A new leadership: batches built from now on carry `epoch`. Refused
  // below epoch() (epochs never go down).
  Status lead(std::int32_t epoch);
  std::uint64_t written() const noexcept { return written_; }
  // Bytes of the batches written since this writer opened the log.
  std::uint64_t bytes_written() const noexcept { return bytes_written_; }
  std::uint64_t durable() const noexcept { return durable_; }
  const PartitionLog& log() const noexcept { return *log_; }

  // ---- submitting ----------------------------------------------------------
  // The builder of a free slot, for the caller to encode a batch into (reset
  // at next_offset(), epoch()), or nullptr while every slot is in flight or
  // the partition is offline.
  log::v2::BatchBuilder* builder() noexcept;
  // Submits the batch built in the slot builder() returned; it starts at
  // next_offset() (the caller's encoder built it: not checked again).
  void submit_built(std::uint64_t cookie);
  // Submits a batch that comes from elsewhere (a leader), copied: checked
  // whole (lengths, magic, CRC, every record), its base offset must be
  // next_offset() and its leader epoch no lower than epoch(). Errc::corrupt
  // or Errc::invalid_argument naming the check that failed, Errc::busy
  // while no slot is free; nothing is submitted then.
  // With `Hold::borrow` the batch is not copied: its bytes must stay as
  // they are until keep_borrowed() (a mirror's receive buffer, written
  // before the buffer is used again; only with a FileIo whose writes are
  // done when queued, make_pwrite_io()).
  enum class Hold : std::uint8_t { copy, borrow };
  Status append(std::span<const std::byte> batch, std::uint64_t cookie, Hold hold = Hold::copy);
  // Copies the bytes of borrowed batches the writer still holds (not yet
  // written, or written and failed: retried later) into its own.
  void keep_borrowed();

  // Places submitted batches and queues their writes, retries failed writes
  // when due, syncs by the policy, runs retention when due (`consumed` and
  // `replicated`: PartitionLog::apply_retention's). True if it did anything.
  bool pump(std::int64_t now_ns, std::uint64_t consumed, std::uint64_t replicated = UINT64_MAX);
  void on_completion(const log::IoCompletion& c, std::int64_t now_ns);
  // True while a batch is submitted and not yet written, or a sync runs.
  bool busy() const noexcept { return !order_.empty() || sync_in_flight_; }
  // True while a write or sync has not completed (its buffer is in use).
  bool in_flight() const noexcept;
  bool stuck() const noexcept { return error_ != 0; }

  // The topic was altered: sync policy and retention at once, segment size
  // at the next roll.
  void reconfigure(const LogConfig& config);
  // Cuts the log to end at or below `offset` (PartitionLog::truncate_to);
  // refused while busy(). The marks and next_offset() follow, without
  // Events (the caller republishes written() and durable()).
  Result<std::uint64_t> truncate_to(std::uint64_t offset);
  // Closes the log cleanly; refused while busy() or stuck().
  Status close_clean();

  static constexpr std::uint64_t kTagSpan = 1 << 16;

 private:
  enum class State : std::uint8_t { free, ready, writing, done, failed };
  struct Slot {
    log::v2::BatchBuilder builder;  // a batch encoded here (submit_built) ...
    std::vector<std::byte> copy;    // ... or copied here (append)
    std::span<const std::byte> bytes;
    bool borrowed = false;          // bytes are the caller's (Hold::borrow)
    State state = State::free;
    std::uint64_t end_offset = 0;
    std::uint64_t cookie = 0;
    PartitionLog::Placement place{};
  };
  Slot* free_slot() noexcept;
  void submit(Slot& s, std::span<const std::byte> bytes, std::uint64_t end_offset, std::int32_t epoch,
              std::uint64_t cookie);
  void place_ready(std::int64_t now_ns);
  void maybe_sync(std::int64_t now_ns);
  void set_durable(std::uint64_t offset);
  void set_error(int err);
  void report_error(const std::string& what, int err);
  void go_offline(const std::string& why);

  std::unique_ptr<PartitionLog> log_;
  log::FileIo& io_;
  LogConfig config_;
  LogFn log_fn_;
  std::uint64_t tag_base_;
  std::string where_;
  Events& events_;
  std::vector<Slot> slots_;
  std::vector<std::size_t> order_;  // slots ready/writing/done, in offset order
  std::vector<std::byte> scratch_;  // append()'s check inflates compressed batches here
  std::uint64_t next_ = 0;
  std::int32_t epoch_ = 0;
  std::uint64_t written_ = 0;       // offsets below are written
  std::uint64_t durable_ = 0;       // ... and synced
  bool sync_in_flight_ = false;
  std::uint64_t sync_target_ = 0;
  std::int64_t last_sync_ns_ = 0;
  std::uint64_t bytes_since_sync_ = 0;
  std::uint64_t bytes_written_ = 0;
  std::int64_t next_retention_ns_ = 0;
  std::int64_t retry_at_ns_ = 0;       // failed writes are retried from then
  std::int64_t roll_retry_at_ns_ = 0;  // a failed roll is tried again from then
  std::int64_t backoff_ns_ = 0;
  int error_ = 0;                      // the errno we are stuck on
  bool error_reported_ = false;
  bool offline_ = false;               // an fdatasync failed: nothing more is taken
};

}  // namespace ringbus::io
