// One partition's commit log on disk, as its writer (the flusher) sees it:
// the segment files, the active segment's indexes, rolling, recovery at
// open, retention. Data writes themselves are queued by the flusher
// (append() says where a batch goes); this class keeps the bookkeeping.
//
// Threading: one thread (the flusher that owns the partition). Readers in
// other processes use LogReader on the same files.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "epoch_file.h"
#include "file_io.h"
#include "log_format.h"
#include "ringbus/result.h"
#include "ringbus/topic.h"

namespace ringbus::io {

struct LogSettings {
  std::uint64_t segment_bytes = 1ULL << 30;
  std::int64_t segment_age_ns = 7LL * 24 * 3600 * 1'000'000'000;
  std::uint64_t retention_bytes = 0;  // 0: no limit
  std::int64_t retention_age_ns = 0;  // 0: no limit
  bool retention_consumed = false;    // RetentionPolicy::consumed
  std::uint32_t index_interval_bytes = 4096;
  bool preallocate = true;
  static LogSettings from(const LogConfig& c);
};

// What recovery found and did, for the broker's log.
struct RecoveryReport {
  bool clean = false;                 // opened from the clean-shutdown marker, nothing scanned
  std::uint64_t scanned_bytes = 0;    // bytes of the tail that were checked
  std::uint64_t cut_bytes = 0;        // bytes truncated from the last segment
  std::uint64_t cut_from_offset = 0;  // offsets from here on were lost (if cut_bytes > 0)
  std::vector<std::string> notes;     // one line per repair, naming the file
};

// Segments reserve their blocks in steps of this as they grow, not whole:
// 1024 partitions with 1 GiB segments would reserve 1 TiB at once.
inline constexpr std::uint64_t kPreallocateStep = 16 << 20;

class PartitionLog {
 public:
  // Opens the log in `dir` (creating it, with a first segment at
  // `first_offset`, if it holds no segment). A log without a valid
  // clean-shutdown marker has its last segment's tail checked and repaired.
  static Result<std::unique_ptr<PartitionLog>> open(log::FileIo& io, std::string dir, LogSettings settings,
                                                    std::uint64_t first_offset, RecoveryReport* report);
  ~PartitionLog();

  const std::string& directory() const noexcept { return dir_; }
  std::uint64_t start_offset() const noexcept { return segments_.front().base; }
  std::uint64_t end_offset() const noexcept { return end_offset_; }
  std::size_t segment_count() const noexcept { return segments_.size(); }
  const std::string& active_path() const noexcept { return active_path_; }
  // New settings (the topic was altered): they apply to the next roll,
  // index entry and retention pass.
  void set_settings(const LogSettings& s) noexcept;

  // ---- appending (the flusher) --------------------------------------------
  // Batches are appended in the format of log::kSegmentVersion (Kafka's v2);
  // an active segment of an older version found at open gets no more of
  // them: it is rolled at the first append (or, empty, rewritten).
  // True if a batch of `bytes` should go to a new segment (size, age, or an
  // older format).
  bool should_roll(std::uint64_t bytes, std::int64_t now_ns) const noexcept;
  // Closes the active segment (index written, everything fdatasync'ed) and
  // starts a new one at end_offset(). The caller has reaped every write to
  // the active segment first. A roll that failed may be called again (it
  // goes on where it stopped; should_roll() says true meanwhile), unless
  // sync_failed().
  Status roll(std::int64_t now_ns);
  // An fdatasync of roll() failed: what it covered cannot be trusted.
  bool sync_failed() const noexcept { return sync_failed_; }
  struct Placement {
    int file;
    std::uint64_t position;
  };
  // Books a batch at the end of the active segment and returns where the
  // caller writes it. Index entries are kept and written in groups.
  Placement append(std::span<const std::byte> batch);
  // The active segment's file handle (for fdatasync); -1 between a failed
  // roll and its retry.
  int active_file() const noexcept { return active_fd_; }
  // Writes the index entries not yet on disk (synchronously; small).
  Status write_index();

  // ---- leader epochs ---------------------------------------------------------
  // Every batch carries its partition leader epoch; the log keeps where each
  // epoch begins, in increasing order, in <dir>/leader-epoch-checkpoint
  // (small_file_format.h: a cache of what the batches say, rebuilt from
  // them at open when missing or damaged, trimmed by retention and
  // truncation). Epochs never go down: LogWriter refuses a batch whose
  // epoch is below latest_epoch().
  const std::vector<LeaderEpoch>& epochs() const noexcept { return epochs_; }
  // The epoch of the log's last batch; 0 for a log without one.
  std::int32_t latest_epoch() const noexcept { return epochs_.empty() ? 0 : epochs_.back().epoch; }
  // Kafka's OffsetsForLeaderEpoch, which a mirror asks its new leader to
  // find where their logs diverge (KIP-101, KIP-279): the largest epoch at
  // or below `epoch` and the offset where it ends (where the next epoch
  // begins, or the log's end for the latest). Nothing for an epoch below
  // every epoch the log has.
  std::optional<LeaderEpoch> end_of_epoch(std::int32_t epoch) const noexcept;

  // ---- truncation (a mirror whose log diverged from its leader's) ----------
  // Cuts the log back so that it ends at or below `offset`, in whole
  // batches: a batch that holds `offset` goes too. Segments that start at or
  // past it are deleted, newest first (a crash midway leaves a shorter log
  // that is whole); the segment that holds it is cut at that batch, synced,
  // and its indexes rebuilt as recovery rebuilds them. Refused below
  // start_offset(). The caller has reaped every write first (as for roll).
  // Returns the new end_offset().
  Result<std::uint64_t> truncate_to(std::uint64_t offset);

  // ---- retention and shutdown ---------------------------------------------
  // Deletes whole segments (never the active one) past the retention limits,
  // and, with retention_consumed, those wholly below `consumed` (the offset
  // every consumer group has committed); never one that is not wholly below
  // `replicated` (a cluster leader's high watermark: below it every in-sync
  // mirror has copied the log). Returns how many; start_offset() moves up.
  Result<std::size_t> apply_retention(std::int64_t now_ns, std::uint64_t consumed = 0,
                                      std::uint64_t replicated = UINT64_MAX);
  // Writes the indexes, syncs everything and leaves the clean-shutdown
  // marker. The caller has reaped every write first.
  Status close_clean();

 private:
  struct Segment {
    std::uint64_t base;
    std::uint64_t bytes;  // UINT64_MAX: not looked at yet (retention looks lazily)
  };
  PartitionLog(log::FileIo& io, std::string dir, LogSettings s) : io_(io), dir_(std::move(dir)), settings_(s) {}
  Status create_segment(std::uint64_t base, std::int64_t now_ns);
  Status make_segment_files(std::uint64_t base, std::int64_t now_ns);
  // Reserves the active segment's blocks up to the step after `bytes`.
  void preallocate_to(std::uint64_t bytes);
  Status open_active(RecoveryReport* report, bool clean);
  Status recover_tail(RecoveryReport* report);
  void close_active() noexcept;
  Status add_index_entry(std::uint64_t base_offset, std::uint64_t position, std::int64_t max_ts);
  // The epoch file: read at open (or rebuilt from the batches), written whole.
  Status load_epochs(RecoveryReport* report);
  Status rebuild_epochs();
  void note_epoch(std::int32_t epoch, std::uint64_t base_offset);
  Status write_epochs();

  log::FileIo& io_;
  std::string dir_;
  LogSettings settings_;
  std::vector<Segment> segments_;
  std::uint64_t end_offset_ = 0;
  // The active (last) segment.
  std::string active_path_;
  int active_fd_ = -1;
  int index_fd_ = -1;
  int time_fd_ = -1;
  std::uint64_t active_size_ = 0;       // where the next batch goes
  std::uint64_t allocated_ = 0;         // bytes preallocated (fallocate) for it
  bool sync_failed_ = false;
  std::int64_t active_created_ns_ = 0;
  std::uint32_t active_version_ = log::kSegmentVersion;  // its batches' format
  bool active_has_batches_ = false;
  std::uint64_t last_indexed_position_ = 0;
  std::int64_t max_timestamp_ns_ = INT64_MIN;
  std::uint64_t index_written_ = 0;     // entries on disk
  std::vector<log::IndexEntry> index_;       // all entries of the active segment
  std::vector<log::TimeIndexEntry> time_index_;
  bool sizes_known_ = false;
  std::uint64_t total_bytes_ = 0;
  std::vector<LeaderEpoch> epochs_;
  std::int32_t tail_epoch_ = -1;  // the epoch of the last batch recovery scanned (-1: none)
};

// The clean-shutdown marker (small_file_format.h: CleanMarker).
inline constexpr const char* kCleanMarkerName = "clean";

}  // namespace ringbus::io
