#include "scrubber.h"

#include <sys/stat.h>

#include <algorithm>

#include "file_io.h"
#include "segment_check.h"
#include "segment_files.h"
#include "sync.h"

namespace ringbus::io {

namespace {

// A pass that found nothing to read does not spin: the shortest rest.
constexpr std::int64_t kMinRestNs = 100'000'000;

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Scrubber::Scrubber(std::uint64_t bytes_per_second, std::chrono::nanoseconds interval, ListFn list, LogFn log)
    : ns_per_byte_(1e9 / static_cast<double>(std::max<std::uint64_t>(bytes_per_second, 1))),
      interval_ns_(interval.count()),
      list_(std::move(list)),
      log_(std::move(log)),
      thread_([this] { run(); }) {}

Scrubber::~Scrubber() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::uint32_t Scrubber::damaged_segments(const std::string& dir) const {
  std::lock_guard lock(mu_);
  const std::string prefix = dir + "/";
  std::uint32_t n = 0;
  for (auto it = damaged_.lower_bound(prefix); it != damaged_.end() && it->first.starts_with(prefix); ++it) ++n;
  return n;
}

ScrubStats Scrubber::stats() const {
  std::lock_guard lock(mu_);
  ScrubStats s = stats_;
  s.damaged_segments = damaged_.size();
  return s;
}

bool Scrubber::sleep_until(std::int64_t until_ns) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (stopping_) return false;
    const std::int64_t now = detail::monotonic_ns();
    if (now >= until_ns) return true;
    cv_.wait_for(lock, std::chrono::nanoseconds(until_ns - now));
  }
}

bool Scrubber::pace(std::uint64_t bytes) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    stats_.bytes_checked += bytes;
  }
  // Each read pays for itself after the fact: the next one waits until the
  // bytes read so far fit the rate. No credit is saved up while idle.
  const std::int64_t now = detail::monotonic_ns();
  next_read_ns_ = std::max(next_read_ns_, now) + static_cast<std::int64_t>(static_cast<double>(bytes) * ns_per_byte_);
  return next_read_ns_ <= now || sleep_until(next_read_ns_);
}

void Scrubber::scrub(const ScrubTarget& target) {
  auto io = log::make_pwrite_io();
  auto bases = log::list_segments(*io, target.dir);
  if (!bases) return;  // the topic was deleted meanwhile, or the directory is unreadable (the flusher says so)
  const std::vector<std::uint64_t>& b = bases.value();
  log::CheckOptions options;
  options.on_read = [this](std::uint64_t bytes) { return pace(bytes); };
  for (std::size_t i = 0; i + 1 < b.size() && b[i + 1] <= target.written_offset; ++i) {
    const std::string path = log::segment_path(target.dir, b[i], log::kLogExt);
    const log::SegmentReport r = log::check_segment(path, options);
    if (r.stopped) return;
    // Retention may delete a segment while it is read: not damage.
    if (!exists(path)) continue;
    std::unique_lock lock(mu_);
    ++stats_.segments_checked;
    std::string problem = r.problems.empty() ? std::string() : r.problems.front();
    if (problem.empty() && r.end_offset != b[i + 1]) {
      // Intact batches that stop short of the next segment: records lost.
      problem = path + ": its batches end at offset " + std::to_string(r.end_offset) + ", the next segment starts at " +
                std::to_string(b[i + 1]);
    }
    if (problem.empty()) {
      if (damaged_.erase(path) != 0) {
        lock.unlock();
        log_("info", "scrubber: " + path + " checks intact again (restored)");
      }
      continue;
    }
    if (!damaged_.emplace(path, problem).second) continue;  // reported before
    lock.unlock();
    log_("error", "scrubber: partition " + std::to_string(target.partition) + " of topic '" + target.topic +
                      "': sealed segment damaged: " + problem +
                      (r.problems.size() > 1 ? " (" + std::to_string(r.problems.size()) + " problems)" : "") +
                      ". Consumers step over bad batches (they are told corrupt, with the offsets lost); restore "
                      "the file from a backup or replica if you have one, and check the drive. `ringbus log verify " +
                      target.dir + "` lists every problem.");
  }
}

void Scrubber::run() {
  for (;;) {
    const std::int64_t pass_start = detail::monotonic_ns();
    for (const ScrubTarget& t : list_()) {
      scrub(t);
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    {
      // Forget damage retention (or an operator) has deleted.
      std::lock_guard lock(mu_);
      std::erase_if(damaged_, [](const auto& d) { return !exists(d.first); });
      ++stats_.passes;
    }
    if (!sleep_until(std::max(pass_start + interval_ns_, detail::monotonic_ns() + kMinRestNs))) return;
  }
}

}  // namespace ringbus::io
