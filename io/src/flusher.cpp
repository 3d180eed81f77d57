#include "flusher.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "segment_files.h"
#include "sync.h"

namespace ringbus::io {

namespace {

constexpr std::size_t kBatchTarget = 1 << 20;           // stop gathering a batch at this size
constexpr std::int64_t kIdleSpinNs = 100'000;           // caught up: poll this long before sleeping
constexpr std::int64_t kLingerNs = 1'000'000;           // wait this long for a run worth a write (not every_ack)
constexpr std::uint64_t kLingerBytes = 256 * 1024;      // ... of this size (at most an eighth of the ring)

std::string partition_name(const detail::TopicMap& topic, std::uint32_t partition) {
  return "partition " + std::to_string(partition) + " of topic '" + topic.name() + "'";
}

}  // namespace

PartitionFlusher::PartitionFlusher(std::shared_ptr<detail::TopicMap> topic, std::uint32_t partition,
                                   std::unique_ptr<PartitionLog> log, log::FileIo& io, const LogConfig& config,
                                   LogFn log_fn, std::uint64_t tag_base, std::shared_ptr<const ConsumedOffsets> consumed)
    : topic_(std::move(topic)),
      partition_(partition),
      ring_(topic_->ring(partition)),
      log_fn_(std::move(log_fn)),
      consumed_(std::move(consumed)),
      where_(partition_name(*topic_, partition)),
      writer_(std::move(log), io, config, log_fn_, tag_base, where_, *this),
      durability_(config.durability),
      compression_(config.compression),
      linger_bytes_(std::min<std::uint64_t>(kLingerBytes, ring_.capacity() / 8)),
      bytes_base_(ring_.header().log_bytes.load(std::memory_order_acquire)) {
  const std::uint64_t log_end = writer_.next_offset();
  // The flusher gates the ring: nothing is overwritten before it is
  // written. After a broker crash it takes over the dead flusher's gate,
  // whose position is where that flusher's completed writes ended.
  std::string error;
  if (!ring_.open_broker_gate(cursor_, error)) {
    log_fn_("error", ring_.path() + ": " + error + "; the flusher does not gate the ring");
  }
  const std::uint64_t gate = cursor_.offset;
  // Claims are whole in the log, so when the log holds more than the gate
  // says (a write that completed after the dead flusher's last gate update)
  // its end is a claim boundary the cursor meets exactly.
  while (cursor_.offset < log_end) {
    const detail::Step step = ring_.step(cursor_, true);
    if (step == detail::Step::skipped) continue;
    std::uint64_t end = 0;
    std::uint32_t k = 0;
    if (step != detail::Step::committed || !ring_.claim_valid(cursor_.position, end, k)) {
      // The ring does not hold what the log has (the broker adopts only
      // rings that reach the log's end, so this is damage): go on at its end.
      const detail::Pair t = ring_.tail();
      cursor_.offset = t.second;
      cursor_.position = t.first;
      break;
    }
    cursor_.offset += k;
    cursor_.position = end;
  }
  if (cursor_.offset > log_end) {
    // The ring no longer holds records the log lost (recovery cut a torn or
    // corrupt tail below the gate): the log covers them as retired.
    log_fn_("warn", where_ + ": offsets " + std::to_string(log_end) + " to " + std::to_string(cursor_.offset - 1) +
                        " are neither in the log nor in the ring; lost");
  } else if (gate > ring_.header().id.base_offset || ring_.tail().second > cursor_.offset) {
    log_fn_("info", where_ + ": the flusher goes on at offset " + std::to_string(cursor_.offset) + "; the ring holds " +
                        std::to_string(ring_.tail().second - cursor_.offset) + " more record(s), written now");
  }
  if (cursor_.gating_slot >= 0) ring_.publish_gate(cursor_);
  detail::PartitionHeader& h = ring_.header();
  h.log_start_offset.store(writer_.log().start_offset(), std::memory_order_release);
  h.log_written.store(writer_.written(), std::memory_order_release);
  h.log_durable.store(writer_.durable(), std::memory_order_release);
}

PartitionFlusher::~PartitionFlusher() { ring_.close_cursor(cursor_); }

void PartitionFlusher::reconfigure(const LogConfig& config) {
  durability_ = config.durability;
  compression_ = config.compression;
  writer_.reconfigure(config);
  // Producers waiting for durability read this on every wake-up: woken,
  // they wait for the mark the new policy names.
  ring_.header().log_durability.store(static_cast<std::uint32_t>(detail::log_durability_of(config.durability)),
                                      std::memory_order_seq_cst);
  wake_durable_waiters();
}

// A writer whose writes fail (a full disk) takes nothing more until its
// retry, which the idle wait's timeout (10 ms, the shortest backoff) brings
// round: records waiting in the ring are no news then, or the wait would
// return at once and the thread spin until space returns.
bool PartitionFlusher::ring_has_news() const noexcept { return !writer_.stuck() && ring_.has_news(cursor_, true); }

// Encodes committed claims at the cursor into a batch (Kafka's record batch
// v2), up to the batch target. A claim of a batch frame (a Kafka batch from
// elsewhere) is not encoded: it ends the batch being built, or, as the first
// claim, is copied to foreign_ whole with its offsets and the log's epoch
// stamped (outside its CRC), to be written as it came. The flusher is a
// gating reader: the bytes cannot change under it.
PartitionFlusher::Gathered PartitionFlusher::gather(log::v2::BatchBuilder& b) {
  // The log goes on at its end; offsets the ring lost before the cursor
  // (see the constructor) are covered as retired.
  b.reset(writer_.next_offset(), writer_.epoch(), compression_);
  b.cover_until(cursor_.offset);
  while (b.size() < kBatchTarget) {
    const detail::Step s = ring_.step(cursor_, true);
    if (s == detail::Step::skipped) {
      b.cover_until(cursor_.offset);
      continue;
    }
    if (s != detail::Step::committed) break;
    // walk_claim checks each frame before it is read.
    std::uint64_t end = 0;
    std::uint32_t k = 0;
    const std::uint32_t partition = ring_.partition();
    bool batch_next = false;
    const bool ok = ring_.walk_claim(cursor_.position, end, k, [&](const std::byte* frame, const detail::RecordHeader& h) {
      if (h.type == detail::FrameType::batch) {
        batch_next = true;
        if (!b.empty()) return false;  // written after the batch being built
        foreign_.assign(frame + sizeof h, frame + h.frame_length);
        return true;
      }
      const Record r = detail::record_at(frame, partition);
      b.append(r.offset, r.timestamp_ms, r.key, r.value, r.headers);
      return true;
    });
    if (batch_next && !b.empty()) break;
    if (ok && batch_next) {
      log::v2::stamp_batch(foreign_, cursor_.offset, writer_.epoch());
      cursor_.offset += k;
      cursor_.position = end;
      return Gathered::foreign;
    }
    if (!ok) {
      // A frame no producer writes (see PollStatus::corrupt): step over the
      // claim's offsets; they are not written.
      log_fn_("error", where_ + ": a corrupt claim at offset " + std::to_string(cursor_.offset) +
                           " is not written to the log");
      const detail::Pair t = ring_.tail();
      cursor_.offset = t.second;
      cursor_.position = t.first;
      b.cover_until(cursor_.offset);
      break;
    }
    cursor_.offset += k;
    cursor_.position = end;
    b.cover_until(cursor_.offset);
  }
  return b.empty() ? Gathered::nothing : Gathered::built;
}

// Waits for a run of records worth a write before reading the ring, up to
// kLingerNs. A flusher that follows producers record by record reads each
// cache line while they are still writing it, so the line crosses between
// cores several times (bench/RESULTS.md, "What changed on the way").
// Not for every_ack: producers wait on every write; nor while a producer
// waits for an acknowledgement (acks=local or all): it waits for what the
// ring holds now, and a lone record would wait the whole kLingerNs.
bool PartitionFlusher::linger(std::int64_t now_ns) noexcept {
  if (durability_ == Durability::every_ack) return false;
  if (ring_.header().ack_waiters.load(std::memory_order_relaxed) != 0) {
    linger_since_ = 0;
    return false;
  }
  const std::uint64_t pending = ring_.tail().first - cursor_.position;
  if (pending == 0 || pending >= linger_bytes_) {
    linger_since_ = 0;
    return false;
  }
  if (linger_since_ == 0) linger_since_ = now_ns;
  if (now_ns - linger_since_ < kLingerNs) return true;
  linger_since_ = 0;
  return false;
}

bool PartitionFlusher::pump(std::int64_t now_ns, bool drain) {
  bool worked = false;
  lingering_ = !drain && linger(now_ns);
  while (!lingering_) {
    log::v2::BatchBuilder* b = writer_.builder();
    if (b == nullptr) break;
    const std::uint64_t from = writer_.next_offset();
    const Gathered g = gather(*b);
    if (g == Gathered::nothing) break;
    // The ring space goes back to producers when the write has completed
    // (written()), not now: a broker that dies before that leaves the
    // records in the ring for the next one.
    if (g == Gathered::built) {
      writer_.submit_built(cursor_.position);
    } else if (auto s = writer_.append(foreign_, cursor_.position); !s) {
      // The producer checked it: the ring's bytes were damaged since. Its
      // offsets are not written (as a corrupt claim's).
      log_fn_("error", s.error().message + "; its offsets " + std::to_string(from) + " to " +
                           std::to_string(cursor_.offset - 1) + " are not written to the log");
      b->reset(from, writer_.epoch(), compression_);
      b->cover_until(cursor_.offset);
      writer_.submit_built(cursor_.position);
    }
    worked = true;
  }
  const std::uint64_t consumed = consumed_ ? consumed_->below[ring_.partition()].load(std::memory_order_acquire) : 0;
  // A cluster's topic: retention keeps what an in-sync mirror has not copied.
  const detail::PartitionHeader& h = ring_.header();
  const std::uint64_t replicated =
      h.min_insync.load(std::memory_order_relaxed) != 0 ? h.log_replicated.load(std::memory_order_acquire) : UINT64_MAX;
  return writer_.pump(now_ns, consumed, replicated) || worked;
}

void PartitionFlusher::on_completion(const log::IoCompletion& c, std::int64_t now_ns) { writer_.on_completion(c, now_ns); }

// The caller stored a mark or the error (seq_cst).
void PartitionFlusher::wake_durable_waiters() noexcept { detail::wake_mark_waiters(ring_.header()); }

void PartitionFlusher::publish(std::atomic<std::uint64_t>& mark, std::uint64_t value) {
  mark.store(value, std::memory_order_seq_cst);
  wake_durable_waiters();
}

void PartitionFlusher::written(std::uint64_t offset, std::uint64_t ring_position) {
  ring_.header().log_bytes.store(bytes_base_ + writer_.bytes_written(), std::memory_order_release);
  publish(ring_.header().log_written, offset);
  // Written: now producers may overwrite it.
  if (cursor_.gating_slot >= 0) {
    detail::ReaderCursor gate = cursor_;
    gate.offset = offset;
    gate.position = ring_position;
    ring_.publish_gate(gate);
  }
}

void PartitionFlusher::durable(std::uint64_t offset) { publish(ring_.header().log_durable, offset); }

void PartitionFlusher::failed(int err) {
  ring_.header().log_error.store(err, std::memory_order_seq_cst);
  wake_durable_waiters();
}

void PartitionFlusher::start_moved(std::uint64_t offset) {
  ring_.header().log_start_offset.store(offset, std::memory_order_release);
}

Status PartitionFlusher::close_clean() { return writer_.close_clean(); }

// ---------------------------------------------------------------------------

FlusherThread::FlusherThread(std::unique_ptr<log::FileIo> io, LogFn log_fn)
    : io_(std::move(io)), log_fn_(std::move(log_fn)), thread_([this] { run(); }) {}

FlusherThread::~FlusherThread() { stop(); }

Status FlusherThread::submit(Command c, bool wait) {
  std::future<Status> f = c.done.get_future();
  {
    std::lock_guard lock(mu_);
    if (stopping_.load()) return Error{Errc::invalid_argument, "the flusher is stopping"};
    commands_.push_back(std::move(c));
    has_commands_.store(true, std::memory_order_release);
  }
  wake_.fetch_add(1, std::memory_order_seq_cst);
  detail::futex_wake_all(&wake_);
  return wait ? f.get() : Status{};
}

void FlusherThread::add(std::shared_ptr<detail::TopicMap> topic, std::uint32_t partition, std::unique_ptr<PartitionLog> log,
                        const LogConfig& config, std::shared_ptr<const ConsumedOffsets> consumed) {
  Command c{Command::Kind::add, std::move(topic), partition, std::move(log), config, std::move(consumed), 0, 0, {}};
  (void)submit(std::move(c), /*wait=*/false);
}

void FlusherThread::remove(std::uint64_t topic_id) {
  Command c{Command::Kind::remove, nullptr, 0, nullptr, {}, nullptr, topic_id, 0, {}};
  (void)submit(std::move(c));
}

Status FlusherThread::release(std::uint64_t topic_id) {
  Command c{Command::Kind::release, nullptr, 0, nullptr, {}, nullptr, topic_id, 0, {}};
  return submit(std::move(c));
}

void FlusherThread::reconfigure(std::uint64_t topic_id, const LogConfig& config) {
  Command c{Command::Kind::reconfigure, nullptr, 0, nullptr, config, nullptr, topic_id, 0, {}};
  (void)submit(std::move(c));
}

Status FlusherThread::lead(std::uint64_t topic_id, std::uint32_t partition, std::int32_t epoch) {
  Command c{Command::Kind::lead, nullptr, partition, nullptr, {}, nullptr, topic_id, epoch, {}};
  return submit(std::move(c));
}

void FlusherThread::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_.store(true);
  }
  wake_.fetch_add(1, std::memory_order_seq_cst);
  detail::futex_wake_all(&wake_);
  thread_.join();
}

void FlusherThread::dispatch(std::span<const log::IoCompletion> done, std::int64_t now_ns) {
  for (const log::IoCompletion& c : done) {
    const auto it = parts_.find(c.tag / PartitionFlusher::kTagSpan);
    if (it != parts_.end()) it->second->on_completion(c, now_ns);
  }
}

void FlusherThread::reap(std::size_t min) {
  log::IoCompletion done[64];
  const std::size_t n = io_->reap(done, min);
  dispatch(std::span(done, n), detail::monotonic_ns());
}

void FlusherThread::run_commands() {
  std::vector<Command> cmds;
  {
    std::lock_guard lock(mu_);
    cmds.swap(commands_);
    has_commands_.store(false, std::memory_order_relaxed);
  }
  for (Command& c : cmds) {
    if (c.kind == Command::Kind::add) {
      const std::uint64_t key = next_key_++;
      parts_.emplace(key, std::make_unique<PartitionFlusher>(c.topic, c.partition, std::move(c.log), *io_, c.config,
                                                             log_fn_, key * PartitionFlusher::kTagSpan, c.consumed));
      c.done.set_value(Status{});
      continue;
    }
    if (c.kind == Command::Kind::reconfigure) {
      for (auto& [key, p] : parts_) {
        if (p->topic_id() == c.topic_id) p->reconfigure(c.config);
      }
      c.done.set_value(Status{});
      continue;
    }
    if (c.kind == Command::Kind::lead) {
      Status s = Error{Errc::not_found, "no partition " + std::to_string(c.partition) + " of topic id " +
                                            std::to_string(c.topic_id) + " on this flusher"};
      for (auto& [key, p] : parts_) {
        if (p->topic_id() == c.topic_id && p->partition() == c.partition) s = p->lead(c.epoch);
      }
      c.done.set_value(std::move(s));
      continue;
    }
    if (c.kind == Command::Kind::release) {
      c.done.set_value(finish([&](const PartitionFlusher& p) { return p.topic_id() == c.topic_id; }));
      continue;
    }
    // Remove: requests in flight point into the flushers' buffers, so let
    // them complete first (the topic is being deleted: its log is not
    // closed cleanly, and failed writes are not retried).
    for (auto it = parts_.begin(); it != parts_.end();) {
      if (it->second->topic_id() != c.topic_id) {
        ++it;
        continue;
      }
      while (it->second->in_flight()) reap(1);
      it = parts_.erase(it);
    }
    c.done.set_value(Status{});
  }
}

void FlusherThread::run() {
  detail::CommitSleep sleeper;
  std::int64_t idle_since = 0;
  for (;;) {
    if (has_commands_.load(std::memory_order_acquire)) run_commands();
    if (stopping_.load(std::memory_order_acquire)) break;
    const std::int64_t now = detail::monotonic_ns();
    bool worked = false;
    for (auto& [key, p] : parts_) worked = p->pump(now) || worked;
    if (io_->pending() > 0) {
      // Completions come within microseconds to milliseconds: wait for one
      // if there was nothing else to do.
      reap(worked ? 0 : 1);
      idle_since = 0;
      continue;
    }
    if (worked) {
      idle_since = 0;
      continue;
    }
    if (std::any_of(parts_.begin(), parts_.end(), [](const auto& kv) { return kv.second->lingering(); })) {
      // Records are waiting for more to come: look again soon, without
      // registering as a sleeper (producers would pay a wake per commit).
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      continue;
    }
    // Caught up: stay awake a little before sleeping. While the flusher
    // sleeps, every producer commit pays a futex wake (a system call) until
    // it is up again, and one that slept whenever it caught up would do
    // that many times in a single burst of records.
    if (idle_since == 0) idle_since = now;
    if (now - idle_since < kIdleSpinNs) {
      for (int i = 0; i < 64; ++i) detail::cpu_relax();
      continue;
    }
    idle_since = 0;
    // Idle: sleep until a producer commits (the rings' wake-up words), a
    // command arrives, or 10 ms pass (sync intervals, retention, retries).
    sleeper.watch(&wake_);
    for (auto& [key, p] : parts_) sleeper.watch(p->ring());
    sleeper.sleep([&] {
      return has_commands_.load(std::memory_order_seq_cst) || stopping_.load(std::memory_order_seq_cst) ||
             std::any_of(parts_.begin(), parts_.end(), [](const auto& kv) { return kv.second->ring_has_news(); });
    }, std::chrono::milliseconds(10));
  }
  (void)finish([](const PartitionFlusher&) { return true; });
}

template <class Pick>
Status FlusherThread::finish(Pick&& pick) {
  for (int round = 0; round < 1000; ++round) {
    bool worked = false;
    const std::int64_t now = detail::monotonic_ns();
    for (auto& [key, p] : parts_) {
      if (pick(*p)) worked = p->pump(now, true) || worked;
    }
    // A completion frees a batch slot that what is left in the ring may be
    // waiting for (pump stops when every slot is in flight): another round.
    bool reaped = false;
    for (; io_->pending() > 0; reaped = true) reap(1);
    if (!worked && !reaped) break;
  }
  Status first;
  for (auto it = parts_.begin(); it != parts_.end();) {
    if (!pick(*it->second)) {
      ++it;
      continue;
    }
    if (auto s = it->second->close_clean(); !s) {
      log_fn_("error", s.error().message + "; the next start checks its tail");
      if (first) first = s;
    }
    it = parts_.erase(it);
  }
  return first;
}

}  // namespace ringbus::io
