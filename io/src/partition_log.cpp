#include "partition_log.h"

#include <algorithm>
#include <cstring>

#include "batch_codec.h"
#include "crc32c.h"
#include "epoch_file.h"
#include "segment_files.h"
#include "small_file_format.h"
#include "small_files.h"
#include "sync.h"

namespace ringbus::io {

namespace {

constexpr std::size_t kScanChunk = 1 << 20;
// Index entries are written in groups of this many (a reader scans batch
// headers past the last entry on disk, so this bounds that scan).
constexpr std::size_t kIndexWriteGroup = 256;

template <class T>
std::span<const std::byte> bytes_of(const T& v) {
  return std::span(reinterpret_cast<const std::byte*>(&v), sizeof v);
}

// Reads a file through a window, for scans.
class Window {
 public:
  Window(log::FileIo& io, int fd) : io_(io), fd_(fd) {}
  // The bytes at [pos, pos + need) or as many as the file has; empty on error.
  Result<std::span<const std::byte>> at(std::uint64_t pos, std::size_t need) {
    if (pos < at_ || pos + need > at_ + len_) {
      const std::size_t want = std::max(need, kScanChunk);
      if (buf_.size() < want) buf_.resize(want);
      auto got = io_.read(fd_, pos, std::span(buf_.data(), want));
      if (!got) return got.error();
      at_ = pos;
      len_ = got.value();
    }
    return std::span<const std::byte>(buf_.data() + (pos - at_), at_ + len_ - pos);
  }

 private:
  log::FileIo& io_;
  int fd_;
  std::vector<std::byte> buf_;
  std::uint64_t at_ = 0;
  std::size_t len_ = 0;
};

// Adds the batch at `position` to a segment's indexes if it is due: the
// segment's first batch, then the first after every `interval` bytes. The
// writer, recovery and the rebuild of a missing index share this rule, so
// that recovery rewrites exactly what the writer wrote. `max_ts` is the
// largest timestamp up to and including this batch.
bool index_batch(std::vector<log::IndexEntry>& index, std::vector<log::TimeIndexEntry>& times, std::uint64_t& last_indexed,
                 std::uint32_t interval, std::uint64_t segment_base, std::uint64_t batch_base, std::uint64_t position,
                 std::int64_t max_ts) {
  if (!index.empty() && position - last_indexed < interval) return false;
  const auto rel = static_cast<std::uint32_t>(batch_base - segment_base);
  index.push_back({rel, static_cast<std::uint32_t>(position)});
  times.push_back({max_ts, rel, 0});
  last_indexed = position;
  return true;
}

// Rewrites an index file whole from memory (recovery, repairs).
template <class Entry>
Status write_entries(log::FileIo& io, const std::string& path, bool time, std::uint64_t base,
                     const std::vector<Entry>& entries) {
  auto fd = io.open(path, true);
  if (!fd) return fd.error();
  std::vector<std::byte> bytes(sizeof(log::IndexHeader) + entries.size() * sizeof(Entry));
  const log::IndexHeader h = log::make_index_header(time, base);
  std::memcpy(bytes.data(), &h, sizeof h);
  if (!entries.empty()) std::memcpy(bytes.data() + sizeof h, entries.data(), entries.size() * sizeof(Entry));
  Status s = io.truncate(fd.value(), 0);
  if (s) s = io.write_now(fd.value(), 0, bytes);
  if (s) s = io.sync_now(fd.value());
  io.close(fd.value());
  return s;
}

// Scans the batches of a segment from `position`, calling on_batch(info,
// position) for each good one; returns the position after the last good
// batch and, in *reason, why the scan stopped ("" at the end of the file):
// a batch that fails its checks, does not continue the offsets, or has a
// lower leader epoch than the one before it.
// The batches are read in the format the segment's header names.
template <class F>
Result<std::uint64_t> scan_batches(log::FileIo& io, int fd, std::uint64_t position, std::uint64_t expected_offset,
                                   std::string* reason, F&& on_batch) {
  Window w(io, fd);
  std::uint32_t format = log::kSegmentVersionRbb1;
  {
    auto head = w.at(0, sizeof(log::SegmentHeader));
    if (!head) return head.error();
    log::SegmentHeader sh{};
    std::memcpy(&sh, head.value().data(), std::min(sizeof sh, head.value().size()));
    if (sh.version == log::kSegmentVersionKafka) format = sh.version;
  }
  const std::size_t header_size = log::batch_header_size(format);
  std::vector<std::byte> scratch;
  std::int32_t epoch = INT32_MIN;
  for (;;) {
    auto head = w.at(position, header_size);
    if (!head) return head.error();
    if (head.value().empty()) {
      reason->clear();
      return position;
    }
    log::BatchInfo peeked;
    const bool plausible = log::peek_batch(head.value(), format, peeked) == log::Peek::plausible;
    auto bytes = w.at(position, plausible ? std::max<std::size_t>(peeked.batch_length, header_size) : header_size);
    if (!bytes) return bytes.error();
    const log::DecodedBatch b = log::decode_batch(bytes.value(), format, scratch);
    if (!b.ok()) {
      *reason = std::string(to_string(b.error)) + (b.detail.empty() ? "" : " (" + b.detail + ")");
      return position;
    }
    if (b.header.base_offset != expected_offset) {
      *reason = "batch base offset " + std::to_string(b.header.base_offset) + " where " +
                std::to_string(expected_offset) + " was expected";
      return position;
    }
    // The CRC leaves the leader epoch out: a damaged one shows as an epoch
    // that goes down.
    if (b.header.leader_epoch < epoch) {
      *reason = "leader epoch " + std::to_string(b.header.leader_epoch) + " below the previous batch's " +
                std::to_string(epoch) + " (epochs never go down)";
      return position;
    }
    epoch = b.header.leader_epoch;
    on_batch(b.header, position);
    expected_offset = b.header.base_offset + b.header.offset_span;
    position += b.header.batch_length;
  }
}

}  // namespace

LogSettings LogSettings::from(const LogConfig& c) {
  LogSettings s;
  s.segment_bytes = c.segment_bytes;
  s.segment_age_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(c.segment_age).count();
  s.retention_bytes = c.retention_bytes;
  s.retention_age_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(c.retention_age).count();
  s.retention_consumed = c.retention_policy == RetentionPolicy::consumed;
  s.index_interval_bytes = c.index_interval_bytes;
  return s;
}

void PartitionLog::set_settings(const LogSettings& s) noexcept {
  // Sizes are looked at lazily, only while there is a size limit.
  if (s.retention_bytes != 0 && settings_.retention_bytes == 0) sizes_known_ = false;
  settings_ = s;
}

Result<std::unique_ptr<PartitionLog>> PartitionLog::open(log::FileIo& io, std::string dir, LogSettings settings,
                                                         std::uint64_t first_offset, RecoveryReport* report) {
  RecoveryReport scratch;
  if (report == nullptr) report = &scratch;
  *report = RecoveryReport{};
  std::unique_ptr<PartitionLog> log(new PartitionLog(io, std::move(dir), settings));
  if (auto s = io.make_directories(log->dir_); !s) return s.error();
  auto names = io.list(log->dir_);
  if (!names) return names.error();
  const log::SegmentNames files = log::sort_segment_names(names.value());
  const std::vector<std::uint64_t>& bases = files.logs;
  if (bases.empty()) {
    if (auto s = log->create_segment(first_offset, detail::realtime_ns()); !s) return s.error();
    log->end_offset_ = first_offset;
    report->clean = true;
    if (auto s = log->load_epochs(report); !s) return s.error();
    return log;
  }
  for (const std::uint64_t b : bases) log->segments_.push_back({b, UINT64_MAX});

  // The clean-shutdown marker: read, then removed before anything is
  // appended, so that a crash from here on is seen as one.
  const std::string marker_path = log->dir_ + "/" + kCleanMarkerName;
  CleanMarker m{};
  bool clean = false;
  if (std::find(names.value().begin(), names.value().end(), kCleanMarkerName) != names.value().end()) {
    if (auto fd = io.open_read(marker_path)) {
      const std::span bytes(reinterpret_cast<std::byte*>(&m), sizeof m);
      auto got = io.read(fd.value(), 0, bytes);
      io.close(fd.value());
      clean = got && got.value() == sizeof m &&
              open_envelope(bytes, kCleanMagic, kCleanVersion, kCleanVersion, marker_path, "clean marker") &&
              envelope_crc_ok(bytes) && m.last_base == log->segments_.back().base;
      if (!clean) report->notes.push_back(marker_path + ": not a valid clean-shutdown marker; checking the tail");
    }
    if (auto s = io.remove(marker_path); !s) return s.error();
    if (auto s = io.sync_directory(log->dir_); !s) return s.error();
  }

  // Older segments were synced when they rolled; only a missing index is
  // repaired (found by name: their data is not read).
  for (std::size_t i = 0; i + 1 < log->segments_.size(); ++i) {
    const std::uint64_t base = log->segments_[i].base;
    if (std::binary_search(files.indexes.begin(), files.indexes.end(), base) &&
        std::binary_search(files.time_indexes.begin(), files.time_indexes.end(), base)) {
      continue;
    }
    auto fd = io.open_read(log::segment_path(log->dir_, base, log::kLogExt));
    if (!fd) return fd.error();
    std::vector<log::IndexEntry> index;
    std::vector<log::TimeIndexEntry> times;
    std::uint64_t last = sizeof(log::SegmentHeader);
    std::int64_t max_ts = INT64_MIN;
    std::string reason;
    auto end = scan_batches(io, fd.value(), sizeof(log::SegmentHeader), base, &reason,
                            [&](const log::BatchInfo& h, std::uint64_t pos) {
                              max_ts = std::max(max_ts, h.max_timestamp_ns);
                              index_batch(index, times, last, settings.index_interval_bytes, base, h.base_offset, pos,
                                          max_ts);
                            });
    io.close(fd.value());
    if (!end) return end.error();
    if (auto s = write_entries(io, log::segment_path(log->dir_, base, log::kIndexExt), false, base, index); !s) return s.error();
    if (auto s = write_entries(io, log::segment_path(log->dir_, base, log::kTimeIndexExt), true, base, times); !s) {
      return s.error();
    }
    report->notes.push_back(log::segment_path(log->dir_, base, log::kIndexExt) + ": missing; rebuilt (" +
                            std::to_string(index.size()) + " entries)");
  }

  if (clean) {
    if (auto s = log->open_active(report, true); !s) return s.error();
    // A marker that does not match the file (written, then the file changed) is not trusted.
    if (log->active_size_ == m.last_size) {
      log->end_offset_ = m.end_offset;
      log->max_timestamp_ns_ = std::max(log->max_timestamp_ns_, m.max_timestamp_ns);
      report->clean = true;
      if (auto s = log->load_epochs(report); !s) return s.error();
      return log;
    }
    report->notes.push_back(marker_path + ": the last segment's size differs from the marker's; checking the tail");
    log->close_active();
  }
  if (auto s = log->open_active(report, false); !s) return s.error();
  if (auto s = log->load_epochs(report); !s) return s.error();
  return log;
}

PartitionLog::~PartitionLog() { close_active(); }

void PartitionLog::close_active() noexcept {
  for (int* fd : {&active_fd_, &index_fd_, &time_fd_}) {
    if (*fd >= 0) io_.close(*fd);
    *fd = -1;
  }
}

// Opens the last segment as the active one. Clean: trust its size and read
// its indexes. Otherwise recover its tail first.
Status PartitionLog::open_active(RecoveryReport* report, bool clean) {
  const std::uint64_t base = segments_.back().base;
  active_path_ = log::segment_path(dir_, base, log::kLogExt);
  auto fd = io_.open(active_path_, false);
  if (!fd) return fd.error();
  active_fd_ = fd.value();
  auto size = io_.size(active_fd_);
  if (!size) return size.error();
  active_size_ = size.value();
  if (clean) {
    log::SegmentHeader h{};
    auto got = io_.read(active_fd_, 0, std::span(reinterpret_cast<std::byte*>(&h), sizeof h));
    if (!got) return got.error();
    if (auto s = log::check_segment_header(std::span(reinterpret_cast<const std::byte*>(&h), got.value()), active_path_, base);
        !s) {
      if (s.error().code == Errc::version_mismatch) return s;
      active_size_ = UINT64_MAX;  // damaged since the clean close: recovery repairs what it can
      return {};
    }
    active_created_ns_ = h.created_ns;
    active_version_ = h.version;
    std::string index_problem;
    std::string time_problem;
    index_ = log::read_index_entries<log::IndexEntry>(io_, log::segment_path(dir_, base, log::kIndexExt), base, &index_problem);
    time_index_ = log::read_index_entries<log::TimeIndexEntry>(io_, log::segment_path(dir_, base, log::kTimeIndexExt), base, &time_problem);
    if (!index_problem.empty() || !time_problem.empty() || index_.size() != time_index_.size()) {
      active_size_ = UINT64_MAX;  // makes the caller fall back to recovery
      return {};
    }
  } else {
    if (auto s = recover_tail(report); !s) return s;
  }
  index_written_ = index_.size();
  last_indexed_position_ = index_.empty() ? sizeof(log::SegmentHeader) : index_.back().position;
  if (!time_index_.empty()) max_timestamp_ns_ = std::max(max_timestamp_ns_, time_index_.back().timestamp_ns);
  active_has_batches_ = active_size_ > sizeof(log::SegmentHeader);
  if (!active_has_batches_ && active_version_ != log::kSegmentVersion) {
    // An empty segment of an older format: it takes the current one.
    const log::SegmentHeader h = log::make_segment_header(base, active_created_ns_);
    if (auto s = io_.truncate(active_fd_, 0); !s) return s;
    if (auto s = io_.write_now(active_fd_, 0, bytes_of(h)); !s) return s;
    if (auto s = io_.sync_now(active_fd_); !s) return s;
    active_size_ = sizeof h;
    active_version_ = h.version;
  }
  segments_.back().bytes = active_size_;
  for (auto [fdp, ext] : {std::pair{&index_fd_, log::kIndexExt}, std::pair{&time_fd_, log::kTimeIndexExt}}) {
    auto f = io_.open(log::segment_path(dir_, base, ext), true);
    if (!f) return f.error();
    *fdp = f.value();
  }
  return {};
}

Status PartitionLog::recover_tail(RecoveryReport* report) {
  const std::uint64_t base = segments_.back().base;
  // The header: a file of another version is refused (never "repaired");
  // a torn or garbage header means nothing in the file can be trusted.
  log::SegmentHeader h{};
  auto got = io_.read(active_fd_, 0, std::span(reinterpret_cast<std::byte*>(&h), sizeof h));
  if (!got) return got.error();
  const Status header = log::check_segment_header(std::span(reinterpret_cast<const std::byte*>(&h), got.value()), active_path_, base);
  if (!header && header.error().code == Errc::version_mismatch) return header;
  if (!header) {
    report->notes.push_back(header.error().message + "; the segment is emptied (" + std::to_string(active_size_) +
                            " bytes, offsets from " + std::to_string(base) + ")");
    report->cut_bytes = active_size_;
    report->cut_from_offset = base;
    h = log::make_segment_header(base, detail::realtime_ns());
    if (auto s = io_.truncate(active_fd_, 0); !s) return s;
    if (auto s = io_.write_now(active_fd_, 0, bytes_of(h)); !s) return s;
    active_size_ = sizeof h;
  }
  active_created_ns_ = h.created_ns;
  active_version_ = h.version;

  // The indexes: keep the entries that agree with each other and point
  // inside the file, in increasing order; the scan starts at the last one.
  std::string index_note;
  std::string time_note;
  index_ = log::read_index_entries<log::IndexEntry>(io_, log::segment_path(dir_, base, log::kIndexExt), base, &index_note);
  time_index_ = log::read_index_entries<log::TimeIndexEntry>(io_, log::segment_path(dir_, base, log::kTimeIndexExt), base, &time_note);
  for (const std::string* n : {&index_note, &time_note}) {
    if (!n->empty()) report->notes.push_back(*n + "; rebuilt from the segment");
  }
  std::size_t k = 0;
  const std::size_t stored = index_.size();
  for (; k < std::min(index_.size(), time_index_.size()); ++k) {
    const log::IndexEntry& e = index_[k];
    const bool inside = e.position >= sizeof(log::SegmentHeader) && e.position < active_size_ &&
                        e.position % log::batch_alignment(h.version) == 0;
    const bool increasing = k == 0 || (e.position > index_[k - 1].position && e.relative_offset > index_[k - 1].relative_offset &&
                                       time_index_[k].timestamp_ns >= time_index_[k - 1].timestamp_ns);
    if (!inside || !increasing || time_index_[k].relative_offset != e.relative_offset) break;
  }
  if (k < stored && index_note.empty()) {
    report->notes.push_back(log::segment_path(dir_, base, log::kIndexExt) + ": " + std::to_string(stored - k) +
                            " entries past the end of the segment or out of order; rebuilt");
  }
  index_.resize(k);
  time_index_.resize(k);
  std::uint64_t position = k > 0 ? index_[k - 1].position : sizeof(log::SegmentHeader);
  end_offset_ = k > 0 ? base + index_[k - 1].relative_offset : base;
  max_timestamp_ns_ = k > 0 ? time_index_[k - 1].timestamp_ns : INT64_MIN;
  last_indexed_position_ = position;

  const std::uint64_t scan_from = position;
  std::string reason;
  auto end = scan_batches(io_, active_fd_, position, end_offset_, &reason, [&](const log::BatchInfo& b, std::uint64_t pos) {
    max_timestamp_ns_ = std::max(max_timestamp_ns_, b.max_timestamp_ns);
    tail_epoch_ = b.leader_epoch;
    index_batch(index_, time_index_, last_indexed_position_, settings_.index_interval_bytes, base, b.base_offset, pos,
                max_timestamp_ns_);
    end_offset_ = b.base_offset + b.offset_span;
  });
  if (!end) return end.error();
  report->scanned_bytes = active_size_ - scan_from;
  if (end.value() < active_size_) {
    const std::uint64_t cut = active_size_ - end.value();
    report->cut_bytes += cut;
    report->cut_from_offset = end_offset_;
    report->notes.push_back(active_path_ + ": cut " + std::to_string(cut) + " bytes at position " +
                            std::to_string(end.value()) + " (offsets from " + std::to_string(end_offset_) +
                            " on): " + reason);
    if (auto s = io_.truncate(active_fd_, end.value()); !s) return s;
    active_size_ = end.value();
  }
  if (auto s = io_.sync_now(active_fd_); !s) return s;
  // The indexes are rewritten whole: they are small, and this leaves them
  // exactly what the writer would have written.
  if (auto s = write_entries(io_, log::segment_path(dir_, base, log::kIndexExt), false, base, index_); !s) return s;
  return write_entries(io_, log::segment_path(dir_, base, log::kTimeIndexExt), true, base, time_index_);
}

Status PartitionLog::create_segment(std::uint64_t base, std::int64_t now_ns) {
  Status s = make_segment_files(base, now_ns);
  if (!s) {
    // Nothing half-made stays behind (a disk that filled up mid-way): the
    // next try, or the next start, finds the log as it was.
    close_active();
    for (const std::string_view ext : {log::kLogExt, log::kIndexExt, log::kTimeIndexExt}) (void)io_.remove(log::segment_path(dir_, base, ext));
    return s;
  }
  segments_.push_back({base, sizeof(log::SegmentHeader)});
  total_bytes_ += sizeof(log::SegmentHeader);
  active_size_ = sizeof(log::SegmentHeader);
  active_created_ns_ = now_ns;
  active_has_batches_ = false;
  last_indexed_position_ = sizeof(log::SegmentHeader);
  index_.clear();
  time_index_.clear();
  index_written_ = 0;
  return {};
}

Status PartitionLog::make_segment_files(std::uint64_t base, std::int64_t now_ns) {
  const std::string path = log::segment_path(dir_, base, log::kLogExt);
  auto fd = io_.open(path, true);
  if (!fd) return fd.error();
  active_fd_ = fd.value();
  active_path_ = path;
  allocated_ = 0;
  const log::SegmentHeader h = log::make_segment_header(base, now_ns);
  active_version_ = h.version;
  if (auto s = io_.truncate(active_fd_, 0); !s) return s;
  if (auto s = io_.write_now(active_fd_, 0, bytes_of(h)); !s) return s;
  preallocate_to(sizeof h);
  if (auto s = io_.sync_now(active_fd_); !s) return s;
  for (auto [fdp, time] : {std::pair{&index_fd_, false}, std::pair{&time_fd_, true}}) {
    auto f = io_.open(log::segment_path(dir_, base, time ? log::kTimeIndexExt : log::kIndexExt), true);
    if (!f) return f.error();
    *fdp = f.value();
    const log::IndexHeader ih = log::make_index_header(time, base);
    if (auto s = io_.truncate(*fdp, 0); !s) return s;
    if (auto s = io_.write_now(*fdp, 0, bytes_of(ih)); !s) return s;
    if (auto s = io_.sync_now(*fdp); !s) return s;
  }
  return io_.sync_directory(dir_);
}

void PartitionLog::preallocate_to(std::uint64_t bytes) {
  if (!settings_.preallocate || active_fd_ < 0) return;
  const std::uint64_t target =
      std::min<std::uint64_t>(settings_.segment_bytes, (bytes / kPreallocateStep + 1) * kPreallocateStep);
  if (target <= allocated_) return;
  // Best effort: on a full disk the write itself reports it.
  if (io_.allocate(active_fd_, allocated_, target)) allocated_ = target;
}

bool PartitionLog::should_roll(std::uint64_t bytes, std::int64_t now_ns) const noexcept {
  if (active_fd_ < 0) return true;  // a roll failed half-way: try again
  return active_has_batches_ && (active_size_ + bytes > settings_.segment_bytes ||
                                 now_ns - active_created_ns_ >= settings_.segment_age_ns ||
                                 active_version_ != log::kSegmentVersion);
}

PartitionLog::Placement PartitionLog::append(std::span<const std::byte> batch) {
  log::BatchInfo h;
  (void)log::peek_batch(batch, active_version_, h);  // the caller built it: plausible
  const std::uint64_t position = active_size_;
  active_size_ += batch.size();
  preallocate_to(active_size_);
  segments_.back().bytes = active_size_;
  total_bytes_ += batch.size();
  max_timestamp_ns_ = std::max(max_timestamp_ns_, h.max_timestamp_ns);
  if (index_batch(index_, time_index_, last_indexed_position_, settings_.index_interval_bytes, segments_.back().base,
                  h.base_offset, position, max_timestamp_ns_) &&
      index_.size() - index_written_ >= kIndexWriteGroup) {
    (void)write_index();  // not fatal: an index is a hint that recovery rebuilds
  }
  end_offset_ = h.base_offset + h.offset_span;
  active_has_batches_ = true;
  note_epoch(h.leader_epoch, h.base_offset);
  return {active_fd_, position};
}

Status PartitionLog::write_index() {
  const std::size_t from = index_written_;
  const std::size_t n = index_.size() - from;
  if (n == 0) return {};
  const auto* ie = reinterpret_cast<const std::byte*>(index_.data() + from);
  const auto* te = reinterpret_cast<const std::byte*>(time_index_.data() + from);
  if (auto s = io_.write_now(index_fd_, sizeof(log::IndexHeader) + from * sizeof(log::IndexEntry), std::span(ie, n * sizeof(log::IndexEntry)));
      !s) {
    return s;
  }
  if (auto s = io_.write_now(time_fd_, sizeof(log::IndexHeader) + from * sizeof(log::TimeIndexEntry),
                             std::span(te, n * sizeof(log::TimeIndexEntry)));
      !s) {
    return s;
  }
  index_written_ = index_.size();
  return {};
}

Status PartitionLog::roll(std::int64_t now_ns) {
  // Restartable: a roll that failed after the old segment was closed only
  // has the new one to make.
  if (active_fd_ >= 0) {
    if (auto s = write_index(); !s) return s;
    if (auto s = io_.truncate(active_fd_, active_size_); !s) return s;  // gives back the preallocated rest
    for (const int fd : {active_fd_, index_fd_, time_fd_}) {
      if (auto s = io_.sync_now(fd); !s) {
        // Never synced again and then trusted (after EIO the kernel may have
        // dropped the dirty pages): the caller takes the partition offline.
        sync_failed_ = true;
        return s;
      }
    }
    close_active();
  }
  return create_segment(end_offset_, now_ns);
}

Result<std::uint64_t> PartitionLog::truncate_to(std::uint64_t offset) {
  if (offset >= end_offset_) return end_offset_;
  if (offset < start_offset()) {
    return Error{Errc::invalid_argument, dir_ + ": cannot truncate to offset " + std::to_string(offset) +
                                             ", below the log's start " + std::to_string(start_offset())};
  }
  close_active();
  allocated_ = 0;
  // Whole segments first, newest first. The first segment always stays: cut
  // to its header if the offset is its base.
  bool removed = false;
  while (segments_.size() > 1 && segments_.back().base >= offset) {
    for (const std::string_view ext : {log::kLogExt, log::kIndexExt, log::kTimeIndexExt}) {
      if (auto s = io_.remove(log::segment_path(dir_, segments_.back().base, ext)); !s) return s.error();
    }
    segments_.pop_back();
    removed = true;
  }
  if (removed) {
    if (auto s = io_.sync_directory(dir_); !s) return s.error();
  }
  sizes_known_ = false;  // retention by size counts again
  // The last segment: cut at the first batch that reaches `offset`.
  const std::uint64_t base = segments_.back().base;
  const std::string path = log::segment_path(dir_, base, log::kLogExt);
  auto fd = io_.open(path, false);
  if (!fd) return fd.error();
  std::uint64_t cut = UINT64_MAX;
  std::string reason;
  auto end = scan_batches(io_, fd.value(), sizeof(log::SegmentHeader), base, &reason,
                          [&](const log::BatchInfo& h, std::uint64_t pos) {
                            if (cut == UINT64_MAX && h.base_offset + h.offset_span > offset) cut = pos;
                          });
  Status s = end ? Status{} : Status(end.error());
  if (s && cut != UINT64_MAX) s = io_.truncate(fd.value(), cut);
  if (s) s = io_.sync_now(fd.value());
  io_.close(fd.value());
  if (!s) return s.error();
  // Reopened as after a crash: the index entries past the cut are dropped
  // and the tail scanned, so the indexes are what the writer would have
  // written for what is left.
  RecoveryReport report;
  if (auto r = open_active(&report, false); !r) return r.error();
  // Epochs that began at or past the new end are gone with their batches.
  const std::size_t kept = static_cast<std::size_t>(
      std::find_if(epochs_.begin(), epochs_.end(), [&](const LeaderEpoch& e) { return e.start_offset >= end_offset_; }) -
      epochs_.begin());
  if (kept < epochs_.size()) {
    epochs_.resize(kept);
    if (auto w = write_epochs(); !w) return w.error();
  }
  return end_offset_;
}

Result<std::size_t> PartitionLog::apply_retention(std::int64_t now_ns, std::uint64_t consumed, std::uint64_t replicated) {
  if (settings_.retention_bytes == 0 && settings_.retention_age_ns <= 0 && !settings_.retention_consumed) {
    return std::size_t{0};
  }
  if (settings_.retention_bytes != 0 && !sizes_known_) {
    // Once, lazily: the sizes of segments this run did not write.
    total_bytes_ = 0;
    for (Segment& seg : segments_) {
      if (seg.bytes == UINT64_MAX) {
        auto fd = io_.open_read(log::segment_path(dir_, seg.base, log::kLogExt));
        if (!fd) return fd.error();
        auto size = io_.size(fd.value());
        io_.close(fd.value());
        if (!size) return size.error();
        seg.bytes = size.value();
      }
      total_bytes_ += seg.bytes;
    }
    sizes_known_ = true;
  }
  std::size_t deleted = 0;
  while (segments_.size() > 1) {
    const Segment& seg = segments_.front();
    // Every record of this segment is below the next one's base.
    if (segments_[1].base > replicated) break;  // an in-sync mirror may still need it
    bool expired = (settings_.retention_bytes != 0 && total_bytes_ > settings_.retention_bytes) ||
                   (settings_.retention_consumed && segments_[1].base <= consumed);
    if (!expired && settings_.retention_age_ns > 0) {
      // A segment's records are no newer than the moment the next segment
      // was created (when this one rolled).
      log::SegmentHeader next{};
      auto fd = io_.open_read(log::segment_path(dir_, segments_[1].base, log::kLogExt));
      if (!fd) return fd.error();
      auto got = io_.read(fd.value(), 0, std::span(reinterpret_cast<std::byte*>(&next), sizeof next));
      io_.close(fd.value());
      expired = got && got.value() == sizeof next && next.created_ns < now_ns - settings_.retention_age_ns;
    }
    if (!expired) break;
    for (const std::string_view ext : {log::kLogExt, log::kIndexExt, log::kTimeIndexExt}) {
      if (auto s = io_.remove(log::segment_path(dir_, seg.base, ext)); !s) return s.error();
    }
    if (seg.bytes != UINT64_MAX) total_bytes_ -= std::min(total_bytes_, seg.bytes);
    segments_.erase(segments_.begin());
    ++deleted;
  }
  if (deleted > 0) {
    if (auto s = io_.sync_directory(dir_); !s) return s.error();
    // Epochs wholly below the new start go; the first left starts there.
    bool changed = false;
    while (epochs_.size() >= 2 && epochs_[1].start_offset <= start_offset()) {
      epochs_.erase(epochs_.begin());
      changed = true;
    }
    if (!epochs_.empty() && epochs_.front().start_offset < start_offset()) {
      epochs_.front().start_offset = start_offset();
      changed = true;
    }
    if (changed) (void)write_epochs();  // a cache: a stale first entry only names an older start
  }
  return deleted;
}

std::optional<LeaderEpoch> PartitionLog::end_of_epoch(std::int32_t epoch) const noexcept {
  // The first epoch above the one asked for begins where it ends.
  const auto above = std::upper_bound(epochs_.begin(), epochs_.end(), epoch,
                                      [](std::int32_t e, const LeaderEpoch& x) { return e < x.epoch; });
  if (above == epochs_.begin()) return std::nullopt;
  return LeaderEpoch{std::prev(above)->epoch, above == epochs_.end() ? end_offset_ : above->start_offset};
}

void PartitionLog::note_epoch(std::int32_t epoch, std::uint64_t base_offset) {
  if (!epochs_.empty() && epoch <= epochs_.back().epoch) return;
  epochs_.push_back({epoch, base_offset});
  if (!write_epochs()) {
    // Never left naming less than the batches say: without the file, the
    // next open rebuilds it from them.
    (void)io_.remove(dir_ + "/" + kEpochFileName);
  }
}

// Written in place, not renamed over: a torn file fails its CRC and is
// rebuilt from the batches, which are the truth.
Status PartitionLog::write_epochs() {
  const std::vector<std::byte> bytes = encode_epoch_file(epochs_);
  auto fd = io_.open(dir_ + "/" + kEpochFileName, true);
  if (!fd) return fd.error();
  Status s = io_.truncate(fd.value(), 0);
  if (s) s = io_.write_now(fd.value(), 0, bytes);
  if (s) s = io_.sync_now(fd.value());
  io_.close(fd.value());
  if (s) s = io_.sync_directory(dir_);  // the file may be new
  return s;
}

Status PartitionLog::load_epochs(RecoveryReport* report) {
  const std::string path = dir_ + "/" + kEpochFileName;
  std::string problem;
  epochs_.clear();
  if (auto fd = io_.open_read(path); !fd) {
    problem = path + ": missing";
  } else {
    std::vector<std::byte> bytes(64 * 1024);
    auto got = io_.read(fd.value(), 0, bytes);
    io_.close(fd.value());
    if (!got) return got.error();
    bytes.resize(got.value());
    auto decoded = decode_epoch_file(bytes, path);
    if (decoded) {
      epochs_ = std::move(decoded.value());
    } else {
      problem = decoded.error().message;
    }
  }
  // Epochs that began at or past the end never reached the log (a crash
  // between the file and the batch); a tail batch of a later epoch than the
  // file names means the file fell behind.
  while (!epochs_.empty() && epochs_.back().start_offset >= end_offset_) epochs_.pop_back();
  if (problem.empty() && tail_epoch_ > latest_epoch()) problem = path + ": behind the log's last batch";
  if (problem.empty()) return {};
  if (auto s = rebuild_epochs(); !s) return s;
  if (epochs_.empty() && problem == path + ": missing") return {};  // a new log: its first batch writes the file
  report->notes.push_back(problem + "; rebuilt from the batches (" + std::to_string(epochs_.size()) +
                          " epochs)");
  return write_epochs();
}

// Reads the batches' epochs. Epochs never go down, so a segment whose first
// batch has the same epoch as the next segment's first batch holds that
// epoch only: only segments where the epoch changes are read through.
Status PartitionLog::rebuild_epochs() {
  epochs_.clear();
  struct First {
    std::uint64_t base_offset;
    std::int32_t epoch;
    bool any;
  };
  std::vector<First> first(segments_.size());
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    auto fd = io_.open_read(log::segment_path(dir_, segments_[i].base, log::kLogExt));
    if (!fd) return fd.error();
    std::byte head[sizeof(log::SegmentHeader) + log::v2::kHeaderSize];
    auto got = io_.read(fd.value(), 0, head);
    io_.close(fd.value());
    if (!got) return got.error();
    log::SegmentHeader sh{};
    std::memcpy(&sh, head, std::min(sizeof sh, got.value()));
    log::BatchInfo b;
    const std::size_t have = got.value() > sizeof sh ? got.value() - sizeof sh : 0;
    first[i].any = log::peek_batch(std::span(head + sizeof sh, have), sh.version, b) == log::Peek::plausible;
    first[i].base_offset = b.base_offset;
    first[i].epoch = b.leader_epoch;  // 0 for RBB1
  }
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    if (!first[i].any) continue;
    if (i + 1 < segments_.size() && first[i + 1].any && first[i + 1].epoch == first[i].epoch) {
      if (epochs_.empty() || first[i].epoch > epochs_.back().epoch) epochs_.push_back({first[i].epoch, first[i].base_offset});
      continue;
    }
    auto fd = io_.open_read(log::segment_path(dir_, segments_[i].base, log::kLogExt));
    if (!fd) return fd.error();
    std::string reason;
    auto end = scan_batches(io_, fd.value(), sizeof(log::SegmentHeader), first[i].base_offset, &reason,
                            [&](const log::BatchInfo& b, std::uint64_t) {
                              if (epochs_.empty() || b.leader_epoch > epochs_.back().epoch) {
                                epochs_.push_back({b.leader_epoch, b.base_offset});
                              }
                            });
    io_.close(fd.value());
    if (!end) return end.error();
  }
  return {};
}

Status PartitionLog::close_clean() {
  if (active_fd_ < 0) return {};
  if (auto s = write_index(); !s) return s;
  if (auto s = io_.truncate(active_fd_, active_size_); !s) return s;
  for (const int fd : {active_fd_, index_fd_, time_fd_}) {
    if (auto s = io_.sync_now(fd); !s) return s;
  }
  CleanMarker m{};
  m.end_offset = end_offset_;
  m.last_base = segments_.back().base;
  m.last_size = active_size_;
  m.max_timestamp_ns = max_timestamp_ns_;
  seal_envelope(std::span(reinterpret_cast<std::byte*>(&m), sizeof m), kCleanMagic, kCleanVersion);
  auto fd = io_.open(dir_ + "/" + kCleanMarkerName, true);
  if (!fd) return fd.error();
  Status s = io_.truncate(fd.value(), 0);
  if (s) s = io_.write_now(fd.value(), 0, bytes_of(m));
  if (s) s = io_.sync_now(fd.value());
  io_.close(fd.value());
  if (!s) return s;
  close_active();
  return io_.sync_directory(dir_);
}

}  // namespace ringbus::io
