#include "mirror_log.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "partition_ring.h"

namespace ringbus::cluster {

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

MirrorLog::MirrorLog(std::string dir, LogConfig config, io::LogFn log_fn, std::string where)
    : dir_(std::move(dir)),
      config_(config),
      log_fn_(std::move(log_fn)),
      where_(std::move(where)),
      io_(log::make_pwrite_io()) {}

// The pwrite backend completes each write when it is queued: nothing is in
// flight here to wait for. What was not closed cleanly is recovered at the
// next open.
MirrorLog::~MirrorLog() = default;

Status MirrorLog::ensure_open(std::uint64_t first_offset) {
  if (writer_) return {};
  io::RecoveryReport report;
  auto log = io::PartitionLog::open(*io_, dir_, io::LogSettings::from(config_), first_offset, &report);
  if (!log) return log.error();
  for (const auto& note : report.notes) log_fn_("warn", where_ + ": " + note);
  const std::uint64_t end = log.value()->end_offset();
  io::LogWriter::Events& events = *this;
  writer_ = std::make_unique<io::LogWriter>(std::move(log.value()), *io_, config_, log_fn_, 0, where_, events);
  written_.store(end, std::memory_order_release);
  durable_.store(end, std::memory_order_release);  // recovery synced what it kept
  publish_marks();
  return {};
}

Status MirrorLog::append(std::span<const std::byte> batch, io::LogWriter::Hold hold) {
  for (;;) {
    Status s = writer_->append(batch, 0, hold);
    if (s || s.error().code != Errc::busy) return s;
    // Every slot in flight: the pwrite backend completes them at the pump,
    // unless writes fail (a full disk), which the writer retries by itself.
    pump();
    if (writer_->stuck())
      return Error{Errc::io_error, where_ + ": cannot write the log: " + std::strerror(error())};
  }
}

void MirrorLog::release_input() {
  pump();
  writer_->keep_borrowed();
}

void MirrorLog::reconfigure(const LogConfig& config) {
  config_ = config;
  if (writer_) writer_->reconfigure(config);
}

void MirrorLog::pump() {
  const std::int64_t now = now_ns();
  (void)writer_->pump(now, 0);
  log::IoCompletion done[16];
  for (;;) {
    const std::size_t n = io_->reap(done, 0);
    for (std::size_t i = 0; i < n; ++i) writer_->on_completion(done[i], now);
    if (n < std::size(done)) break;
  }
  (void)writer_->pump(now, 0);
}

void MirrorLog::settle() {
  while (writer_->busy() && !writer_->stuck()) pump();
}

Result<std::uint64_t> MirrorLog::truncate_to(std::uint64_t offset) {
  settle();
  auto end = writer_->truncate_to(offset);
  if (!end) return end;
  written_.store(writer_->written(), std::memory_order_release);
  durable_.store(writer_->durable(), std::memory_order_release);
  publish_marks();
  return end;
}

Status MirrorLog::start_over(std::uint64_t offset) {
  if (writer_) {
    settle();
    (void)writer_->close_clean();  // its files go next: how it closed does not matter
    writer_.reset();
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    std::filesystem::remove_all(e.path(), ec);
    if (ec) return Error{Errc::io_error, where_ + ": cannot delete " + e.path().string() + ": " + ec.message()};
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Error{Errc::io_error, where_ + ": cannot list " + dir_ + ": " + ec.message()};
  }
  return ensure_open(offset);
}

Status MirrorLog::close_clean() {
  if (!writer_) return {};
  settle();
  return writer_->close_clean();
}

void MirrorLog::written(std::uint64_t offset, std::uint64_t) {
  written_.store(offset, std::memory_order_release);
  publish_marks();
}
void MirrorLog::durable(std::uint64_t offset) {
  durable_.store(offset, std::memory_order_release);
  publish_marks();
}
void MirrorLog::failed(int err) { error_.store(err, std::memory_order_relaxed); }
void MirrorLog::start_moved(std::uint64_t) { publish_marks(); }

void MirrorLog::publish_to(std::shared_ptr<detail::TopicMap> map, std::uint32_t partition) {
  marks_ = std::move(map);
  partition_ = partition;
  publish_marks();
}

void MirrorLog::set_high_watermark(std::uint64_t hw) {
  if (hw == high_watermark_) return;
  high_watermark_ = hw;
  publish_marks();
}

// As a leader's flusher and node do for their rings: the marks, then a
// wake-up for consumers waiting on them (Dekker: stored seq_cst, then the
// waiters read).
void MirrorLog::publish_marks() {
  if (!marks_) return;
  detail::PartitionHeader& h = marks_->ring(partition_).header();
  const std::uint64_t w = written();
  if (writer_) h.log_start_offset.store(start(), std::memory_order_release);
  h.log_durable.store(durable(), std::memory_order_seq_cst);
  h.log_written.store(w, std::memory_order_seq_cst);
  h.log_replicated.store(std::min(high_watermark_, w), std::memory_order_seq_cst);
  detail::wake_mark_waiters(h);
}

}  // namespace ringbus::cluster
