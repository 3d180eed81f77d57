#include "log_writer.h"

#include <algorithm>
#include <cstring>

#include "sync.h"

namespace ringbus::io {

namespace {

constexpr std::size_t kSlots = 4;                      // batch writes in flight per partition
constexpr std::int64_t kRetentionPeriodNs = 1'000'000'000;
constexpr std::int64_t kMinBackoffNs = 10'000'000;     // failed writes: first retry after 10 ms,
constexpr std::int64_t kMaxBackoffNs = 1'000'000'000;  // doubling up to 1 s
constexpr std::uint64_t kSyncTag = LogWriter::kTagSpan - 1;

}  // namespace

LogWriter::LogWriter(std::unique_ptr<PartitionLog> log, log::FileIo& io, const LogConfig& config, LogFn log_fn,
                     std::uint64_t tag_base, std::string where, Events& events)
    : log_(std::move(log)),
      io_(io),
      config_(config),
      log_fn_(std::move(log_fn)),
      tag_base_(tag_base),
      where_(std::move(where)),
      events_(events),
      slots_(kSlots) {
  next_ = written_ = durable_ = log_->end_offset();
  epoch_ = log_->latest_epoch();
}

void LogWriter::reconfigure(const LogConfig& config) {
  config_ = config;
  log_->set_settings(LogSettings::from(config));
  next_retention_ns_ = 0;
}

LogWriter::Slot* LogWriter::free_slot() noexcept {
  if (offline_) return nullptr;
  for (Slot& s : slots_) {
    if (s.state == State::free) return &s;
  }
  return nullptr;
}

log::v2::BatchBuilder* LogWriter::builder() noexcept {
  Slot* s = free_slot();
  return s != nullptr ? &s->builder : nullptr;
}

void LogWriter::submit_built(std::uint64_t cookie) {
  Slot* s = free_slot();  // the same slot builder() returned: states change only here and in pump()
  submit(*s, s->builder.finish(), s->builder.next_offset(), epoch_, cookie);
}

Status LogWriter::append(std::span<const std::byte> batch, std::uint64_t cookie, Hold hold) {
  const log::v2::DecodedBatch b = log::v2::decode_batch(batch, scratch_);
  if (!b.ok()) {
    return Error{Errc::corrupt, where_ + ": a batch to append is refused: " + log::v2::to_string(b.error) +
                                    (b.detail.empty() ? "" : " (" + b.detail + ")")};
  }
  if (b.bytes.size() != batch.size()) {
    return Error{Errc::invalid_argument, where_ + ": a batch to append is " + std::to_string(b.bytes.size()) +
                                             " bytes by its batchLength, but " + std::to_string(batch.size()) +
                                             " were given"};
  }
  if (static_cast<std::uint64_t>(b.header.base_offset) != next_) {
    return Error{Errc::invalid_argument, where_ + ": a batch to append starts at offset " +
                                             std::to_string(b.header.base_offset) + ", but the log continues at " +
                                             std::to_string(next_)};
  }
  if (b.header.leader_epoch < 0) {
    return Error{Errc::invalid_argument, where_ + ": a batch to append carries no leader epoch (" +
                                             std::to_string(b.header.leader_epoch) + "); a leader stamps its own"};
  }
  if (b.header.leader_epoch < epoch_) {
    return Error{Errc::invalid_argument, where_ + ": a batch to append carries leader epoch " +
                                             std::to_string(b.header.leader_epoch) + ", below the log's epoch " +
                                             std::to_string(epoch_) + " (epochs never go down)"};
  }
  Slot* s = free_slot();
  if (s == nullptr) {
    return Error{Errc::busy, where_ + ": every write slot is in flight" + (offline_ ? " (the partition is offline)" : "")};
  }
  s->borrowed = hold == Hold::borrow;
  if (!s->borrowed) s->copy.assign(batch.begin(), batch.end());
  submit(*s, s->borrowed ? batch : std::span<const std::byte>(s->copy), b.header.next_offset(), b.header.leader_epoch,
         cookie);
  return {};
}

void LogWriter::keep_borrowed() {
  for (Slot& s : slots_) {
    if (!s.borrowed) continue;
    s.borrowed = false;
    if (s.state == State::free) continue;
    s.copy.assign(s.bytes.begin(), s.bytes.end());
    s.bytes = s.copy;
  }
}

Status LogWriter::lead(std::int32_t epoch) {
  if (epoch < epoch_) {
    return Error{Errc::invalid_argument, where_ + ": leader epoch " + std::to_string(epoch) + " is below the log's " +
                                             std::to_string(epoch_) + " (epochs never go down)"};
  }
  epoch_ = epoch;
  return {};
}

void LogWriter::submit(Slot& s, std::span<const std::byte> bytes, std::uint64_t end_offset, std::int32_t epoch,
                       std::uint64_t cookie) {
  s.bytes = bytes;
  s.end_offset = next_ = end_offset;
  s.cookie = cookie;
  s.state = State::ready;
  epoch_ = epoch;
  order_.push_back(static_cast<std::size_t>(&s - slots_.data()));
}

bool LogWriter::pump(std::int64_t now_ns, std::uint64_t consumed, std::uint64_t replicated) {
  if (offline_) return false;
  bool worked = false;
  if (error_ != 0 && now_ns >= retry_at_ns_) {
    // Retry the failed writes in place (same file, same position).
    for (Slot& s : slots_) {
      if (s.state != State::failed) continue;
      s.state = State::writing;
      (void)io_.write(s.place.file, s.place.position, s.bytes, tag_base_ + static_cast<std::uint64_t>(&s - slots_.data()));
      worked = true;
    }
    retry_at_ns_ = now_ns + backoff_ns_;
  }
  place_ready(now_ns);
  maybe_sync(now_ns);
  if (now_ns >= next_retention_ns_ && error_ == 0) {
    next_retention_ns_ = now_ns + kRetentionPeriodNs;
    auto deleted = log_->apply_retention(detail::realtime_ns(), consumed, replicated);
    if (!deleted) {
      report_error(deleted.error().message, 0);
    } else if (deleted.value() > 0) {
      events_.start_moved(log_->start_offset());
      log_fn_("info", log_->directory() + ": retention deleted " + std::to_string(deleted.value()) +
                          " segment(s); earliest offset is now " + std::to_string(log_->start_offset()));
    }
  }
  return worked;
}

// Gives ready slots their place in the log, in order, and queues their
// writes. A batch that belongs in a new segment waits until every request on
// the active segment has completed, then the log rolls.
void LogWriter::place_ready(std::int64_t now_ns) {
  for (const std::size_t i : order_) {
    Slot& s = slots_[i];
    if (s.state != State::ready) continue;
    if (log_->should_roll(s.bytes.size(), detail::realtime_ns())) {
      const bool drained = std::all_of(order_.begin(), order_.end(), [&](std::size_t j) {
        return slots_[j].state == State::ready;
      });
      if (!drained || sync_in_flight_ || now_ns < roll_retry_at_ns_) return;
      if (auto r = log_->roll(detail::realtime_ns()); !r) {
        if (log_->sync_failed()) {
          go_offline(r.error().message);
          return;
        }
        // Usually a full disk: tried again after the back-off, from where it stopped.
        report_error(r.error().message, ENOSPC);
        roll_retry_at_ns_ = now_ns + backoff_ns_;
        return;
      }
      // roll() synced the old segment: everything written is durable.
      set_durable(written_);
    }
    s.place = log_->append(s.bytes);
    s.state = State::writing;
    (void)io_.write(s.place.file, s.place.position, s.bytes, tag_base_ + i);
  }
}

void LogWriter::maybe_sync(std::int64_t now_ns) {
  if (sync_in_flight_ || written_ <= durable_ || error_ != 0 || log_->active_file() < 0) return;
  bool due = false;
  switch (config_.durability) {
    case Durability::page_cache: return;  // the kernel writes back; rolls and close sync
    case Durability::every_ack: due = true; break;
    case Durability::interval:
      due = now_ns - last_sync_ns_ >= std::chrono::nanoseconds(config_.flush_interval).count() ||
            (config_.flush_bytes != 0 && bytes_since_sync_ >= config_.flush_bytes);
      break;
  }
  if (!due) return;
  // Only completed writes are covered: a sync does not wait for writes
  // still in flight.
  sync_target_ = written_;
  sync_in_flight_ = true;
  last_sync_ns_ = now_ns;
  bytes_since_sync_ = 0;
  (void)io_.sync(log_->active_file(), tag_base_ + kSyncTag);
}

void LogWriter::set_durable(std::uint64_t offset) {
  durable_ = offset;
  events_.durable(durable_);
}

void LogWriter::set_error(int err) {
  error_ = err;
  events_.failed(err);
}

// A failed fdatasync is never retried and then trusted: after EIO the kernel
// may have dropped the dirty pages it covered (PostgreSQL's "fsyncgate"), so
// a later sync that succeeds proves nothing. The durable offset stays where
// the last good sync put it, waiters get log_failed, and the source backs up.
void LogWriter::go_offline(const std::string& why) {
  if (offline_) return;
  offline_ = true;
  log_fn_("error", where_ + " is offline: " + why + "; records written since the last good fdatasync (offset " +
                       std::to_string(durable_) +
                       ") are not durable and the partition takes no more; restart the broker to recover it from its log");
  set_error(EIO);
}

void LogWriter::report_error(const std::string& what, int err) {
  if (err == 0) {
    log_fn_("error", what);
    return;
  }
  if (!error_reported_) {
    log_fn_("error", what + ": " + std::strerror(err) + "; producers are back-pressured until it succeeds (retrying)");
    error_reported_ = true;
  }
  set_error(err);
  backoff_ns_ = std::clamp(backoff_ns_ * 2, kMinBackoffNs, kMaxBackoffNs);
}

void LogWriter::on_completion(const log::IoCompletion& c, std::int64_t now_ns) {
  const std::uint64_t slot = c.tag - tag_base_;
  if (slot == kSyncTag) {
    sync_in_flight_ = false;
    if (c.result < 0) {
      go_offline("fdatasync " + log_->active_path() + ": " + std::strerror(-c.result));
      return;
    }
    set_durable(std::max(durable_, sync_target_));
    maybe_sync(now_ns);
    return;
  }
  Slot& s = slots_[slot];
  if (c.result < 0) {
    s.state = State::failed;
    report_error("write of " + std::to_string(s.bytes.size()) + " bytes to " + log_->active_path() + " at byte " +
                     std::to_string(s.place.position),
                 -c.result);
    retry_at_ns_ = now_ns + backoff_ns_;
    return;
  }
  s.state = State::done;
  if (error_ != 0 && std::none_of(slots_.begin(), slots_.end(), [](const Slot& x) { return x.state == State::failed; })) {
    log_fn_("info", log_->active_path() + ": writes succeed again; the flusher resumed");
    error_reported_ = false;
    backoff_ns_ = 0;
    set_error(0);
  }
  // The written offset moves over completed batches in order.
  std::uint64_t written = written_;
  std::uint64_t cookie = 0;
  while (!order_.empty() && slots_[order_.front()].state == State::done) {
    Slot& d = slots_[order_.front()];
    written = d.end_offset;
    cookie = d.cookie;
    bytes_since_sync_ += d.bytes.size();
    bytes_written_ += d.bytes.size();
    d.state = State::free;
    d.borrowed = false;
    order_.erase(order_.begin());
  }
  if (written != written_) {
    written_ = written;
    events_.written(written_, cookie);
    // Durable by this policy means written: the kernel writes it back.
    if (config_.durability == Durability::page_cache) set_durable(written_);
  }
  place_ready(now_ns);
  maybe_sync(now_ns);
}

bool LogWriter::in_flight() const noexcept {
  return sync_in_flight_ || std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.state == State::writing; });
}

Result<std::uint64_t> LogWriter::truncate_to(std::uint64_t offset) {
  if (busy()) return Error{Errc::busy, where_ + ": cannot truncate while writes are in flight"};
  auto end = log_->truncate_to(offset);
  if (!end) return end;
  next_ = end.value();
  epoch_ = log_->latest_epoch();
  // Truncation synced what is left: written and durable alike.
  written_ = durable_ = next_;
  return end;
}

Status LogWriter::close_clean() {
  if (busy() || error_ != 0) return Error{Errc::io_error, log_->directory() + ": writes still pending or failing"};
  if (auto s = log_->close_clean(); !s) return s;
  set_durable(written_);
  return {};
}

}  // namespace ringbus::io
