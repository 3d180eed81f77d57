#include "ringbus/producer.h"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "partition_ring.h"
#include "record_batch.h"
#include "record_headers.h"
#include "ringbus/topic.h"
#include "topic_files.h"

namespace ringbus {

using detail::align_frame;
using detail::ClaimSpan;
using detail::RecordHeader;

namespace {

constexpr std::size_t kMaxBatchRecords = UINT16_MAX;

std::int64_t timestamp_now(bool coarse) noexcept {
  timespec ts{};
  clock_gettime(coarse ? CLOCK_REALTIME_COARSE : CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// Writes one record frame at dst; returns the aligned frame size.
std::uint64_t write_frame(std::byte* dst, std::uint64_t offset, std::int64_t ts, std::uint16_t claim_records,
                          std::string_view key, std::span<const Header> headers, std::size_t headers_len,
                          std::string_view value) noexcept {
  auto* h = reinterpret_cast<RecordHeader*>(dst);
  const std::size_t frame = sizeof(RecordHeader) + key.size() + headers_len + value.size();
  h->frame_length = static_cast<std::uint32_t>(frame);
  h->type = detail::FrameType::record;
  h->claim_records = claim_records;
  h->key_length = static_cast<std::uint32_t>(key.size());
  h->headers_length = static_cast<std::uint32_t>(headers_len);
  h->offset = offset;
  h->timestamp_ns = ts;
  std::byte* p = dst + sizeof(RecordHeader);
  if (!key.empty()) std::memcpy(p, key.data(), key.size());
  p += key.size();
  if (headers_len != 0) detail::encode_headers(headers, p);
  p += headers_len;
  if (!value.empty()) std::memcpy(p, value.data(), value.size());
  return align_frame(frame);
}

// Why a Kafka batch cannot be published as a batch frame ("" if it can,
// with its record count).
std::string check_batch(std::span<const std::byte> batch, std::vector<std::byte>& inflated, std::int32_t& records) {
  const log::v2::DecodedBatch b = log::v2::decode_batch(batch, inflated);
  const log::v2::BatchHeader& h = b.header;
  if (!b.ok()) return std::string(log::v2::to_string(b.error)) + (b.detail.empty() ? "" : " (" + b.detail + ")");
  if (b.bytes.size() != batch.size()) {
    return std::to_string(batch.size()) + " bytes given, " + std::to_string(b.bytes.size()) + " by its batchLength";
  }
  if (h.record_count < 1 || static_cast<std::size_t>(h.record_count) > kMaxBatchRecords) {
    return std::to_string(h.record_count) + " records; a batch holds 1 to 65535";
  }
  if (h.last_offset_delta + 1 != h.record_count) {
    return "its offset deltas are not 0 to " + std::to_string(h.record_count - 1) + " (lastOffsetDelta " +
           std::to_string(h.last_offset_delta) + ")";
  }
  if ((h.attributes & (log::v2::kTransactional | log::v2::kControl)) != 0) {
    return "a transactional or control batch (ringbus has no transactions)";
  }
  records = h.record_count;
  return {};
}

}  // namespace

Status check_record_batch(std::span<const std::byte> batch) {
  std::vector<std::byte> inflated;
  std::int32_t records = 0;
  const std::string why = check_batch(batch, inflated, records);
  if (why.empty()) return {};
  return Error{Errc::invalid_argument, "the record batch is refused: " + why};
}

struct Producer::Impl {
  std::string instance;  // leader(): the topic's rings on this host now
  std::shared_ptr<detail::TopicMap> topic;
  std::vector<detail::ProducerCache> caches;  // per partition
  std::uint32_t round_robin = 0;
  ProducerOptions options;
  std::uint32_t leases = 0;               // exclusive: partitions [0, leases) are ours
  std::vector<std::size_t> header_sizes;  // scratch for batches
  std::vector<std::byte> inflated;        // a compressed record batch's records, while it is checked

  ~Impl() {
    for (std::uint32_t p = 0; p < leases; ++p) topic->ring(p).release_lease();
    for (std::uint32_t p = 0; p < caches.size(); ++p) topic->ring(p).release_publisher_slot(caches[p]);
  }
  // Claims and commits in partition p: an exclusive owner's plain stores;
  // a shared producer's locked claim and, when `plain` (our own code runs
  // between claim and commit, never the caller's) and it holds a publisher
  // slot, a plain commit; else a locked commit (bus/README.md, "Shared
  // producers' plain commits").
  ClaimSpan claim(std::uint32_t p, std::uint64_t bytes, std::uint32_t records, std::int64_t timeout_ns,
                  bool plain) noexcept {
    detail::PartitionRing& ring = topic->ring(p);
    if (options.exclusive) return ring.claim_owned(caches[p], bytes, records, timeout_ns);
    return ring.claim(caches[p], bytes, records, timeout_ns, false, plain && ring.publisher_slot(caches[p]));
  }
  PublishStatus commit(std::uint32_t p, const ClaimSpan& span) noexcept {
    detail::PartitionRing& ring = topic->ring(p);
    return options.exclusive || span.plain ? ring.commit_plain(caches[p], span) : ring.commit(span);
  }
};

Result<Producer> Producer::open(std::string_view instance, std::string_view topic, ProducerOptions options) {
  auto map = detail::TopicMap::open(instance, topic);
  if (!map) return map.error();
  auto impl = std::make_unique<Impl>();
  impl->instance = std::string(instance);
  impl->topic = std::move(map.value());
  impl->caches.resize(impl->topic->partition_count());
  impl->options = options;
  if (options.exclusive) {
    for (std::uint32_t p = 0; p < impl->topic->partition_count(); ++p) {
      if (Status taken = impl->topic->ring(p).take_lease(impl->caches[p]); !taken) {
        return Error{taken.error().code, "topic '" + std::string(topic) + "': " + taken.error().message};
      }
      impl->leases = p + 1;  // the destructor gives back what was taken
    }
  }
  return Producer(std::move(impl));
}

Producer::Producer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

namespace {

// Waits on the partition's durable_seq until `verdict` says something other
// than timed_out, or the timeout passes. Dekker with the writers of the
// marks (the flusher, a cluster's leader): they store a mark (seq_cst),
// then read durable_waiters; we announce ourselves, then read the mark.
template <class Verdict>
PublishStatus wait_for_mark(detail::PartitionHeader& h, std::chrono::nanoseconds timeout, Verdict&& verdict) noexcept {
  const std::int64_t deadline = detail::deadline_after(timeout.count());
  // A broker that dies wakes nobody: sleep in slices and probe again.
  constexpr std::int64_t kSliceNs = 20'000'000;
  // The flusher does not linger while we wait (a hint: relaxed).
  h.ack_waiters.fetch_add(1, std::memory_order_relaxed);
  struct Leave {
    detail::PartitionHeader& h;
    ~Leave() { h.ack_waiters.fetch_sub(1, std::memory_order_relaxed); }
  } leave{h};
  for (;;) {
    h.durable_waiters.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t seq = h.durable_seq.load(std::memory_order_seq_cst);
    const PublishStatus v = verdict();
    const std::int64_t now = v == PublishStatus::timed_out ? detail::monotonic_ns() : 0;
    if (v == PublishStatus::timed_out && now < deadline) {
      detail::futex_wait(&h.durable_seq, seq, std::chrono::nanoseconds(std::min(deadline - now, kSliceNs)));
    }
    h.durable_waiters.fetch_sub(1, std::memory_order_relaxed);
    if (v != PublishStatus::timed_out || now >= deadline) return v;
  }
}

}  // namespace

PublishStatus Producer::wait_durable(const PublishResult& published, std::chrono::nanoseconds timeout) noexcept {
  if (!published.ok() || published.partition >= partitions()) return PublishStatus::invalid_argument;
  detail::PartitionHeader& h = impl_->topic->ring(published.partition).header();
  if (h.log_durability.load(std::memory_order_acquire) == static_cast<std::uint32_t>(detail::LogDurability::none)) {
    return PublishStatus::no_commit_log;
  }
  detail::PartitionRing& ring = impl_->topic->ring(published.partition);
  detail::ProducerCache& cache = impl_->caches[published.partition];
  return wait_for_mark(h, timeout, [&]() -> PublishStatus {
    // page_cache: durable once written; synced: once fdatasync'ed. Read each
    // time: the topic's policy may be altered while we wait (the flusher
    // wakes waiters when it is).
    const auto mode = static_cast<detail::LogDurability>(h.log_durability.load(std::memory_order_seq_cst));
    const std::atomic<std::uint64_t>& mark = mode == detail::LogDurability::page_cache ? h.log_written : h.log_durable;
    if (mark.load(std::memory_order_acquire) > published.offset) return PublishStatus::ok;
    if (h.log_error.load(std::memory_order_acquire) != 0) return PublishStatus::log_failed;
    if (ring.deleted()) return ring.refusal();  // topic_deleted, or not_leader once released
    // Only a live flusher moves the marks: with no broker, say so at once.
    if (ring.no_broker(cache.broker)) return PublishStatus::no_broker;
    return PublishStatus::timed_out;  // not yet
  });
}

PublishStatus Producer::wait_replicated(const PublishResult& published, std::chrono::nanoseconds timeout) noexcept {
  if (!published.ok() || published.partition >= partitions()) return PublishStatus::invalid_argument;
  detail::PartitionHeader& h = impl_->topic->ring(published.partition).header();
  // A topic that is not replicated has one replica: durable there is all.
  if (h.min_insync.load(std::memory_order_acquire) == 0) return wait_durable(published, timeout);
  detail::PartitionRing& ring = impl_->topic->ring(published.partition);
  detail::ProducerCache& cache = impl_->caches[published.partition];
  return wait_for_mark(h, timeout, [&]() -> PublishStatus {
    if (h.log_replicated.load(std::memory_order_seq_cst) > published.offset) return PublishStatus::ok;
    // Checked after the mark: a record the in-sync set already holds is
    // acknowledged even if the set has shrunk since. No count yet (0): no
    // leader has published one, so wait for it.
    const std::uint32_t insync = h.insync_replicas.load(std::memory_order_acquire);
    if (insync != 0 && insync < h.min_insync.load(std::memory_order_acquire)) return PublishStatus::not_enough_replicas;
    if (h.log_error.load(std::memory_order_acquire) != 0) return PublishStatus::log_failed;
    if (ring.deleted()) return ring.refusal();  // topic_deleted, or not_leader once released
    if (ring.no_broker(cache.broker)) return PublishStatus::no_broker;
    return PublishStatus::timed_out;
  });
}

Producer::Producer(Producer&&) noexcept = default;
Producer& Producer::operator=(Producer&&) noexcept = default;
Producer::~Producer() = default;

std::uint32_t Producer::partitions() const noexcept { return impl_->topic->partition_count(); }

std::string Producer::leader() const {
  // Its own rings name the leader once they are a mirror's; released ones
  // were replaced, under the same name, by the mirror's rings (if the node
  // knows the leader yet).
  if (impl_->topic->ring(0).mirror()) return impl_->topic->ring(0).leader_elsewhere();
  auto now = detail::TopicMap::open(impl_->instance, impl_->topic->name(), /*populate=*/false);
  if (!now || !now.value()->ring(0).mirror()) return "";
  return now.value()->ring(0).leader_elsewhere();
}
std::uint32_t Producer::max_record_size() const noexcept { return impl_->topic->ring(0).max_record_size(); }

std::uint32_t Producer::choose_partition(std::string_view key, std::uint32_t requested) noexcept {
  if (requested != kAutoPartition) return requested;
  const std::uint32_t n = impl_->topic->partition_count();
  if (!key.empty()) return partition_for_key(key, n);
  return impl_->round_robin++ % n;
}

PublishResult Producer::publish_messages(std::span<const Message> messages, std::uint32_t requested,
                                         bool wait) noexcept {
  PublishResult r;
  if (messages.empty() || messages.size() > kMaxBatchRecords) {
    r.status = PublishStatus::invalid_argument;
    return r;
  }
  r.partition = choose_partition(messages.front().key, requested);
  if (r.partition >= impl_->topic->partition_count()) {
    r.status = PublishStatus::invalid_partition;
    return r;
  }
  detail::PartitionRing& ring = impl_->topic->ring(r.partition);
  auto& sizes = impl_->header_sizes;
  sizes.clear();
  std::uint64_t bytes = 0;
  for (const Message& m : messages) {
    const std::size_t hl = m.headers.empty() ? 0 : detail::encoded_headers_size(m.headers);
    if (hl == SIZE_MAX || m.key.size() + hl + m.value.size() > ring.max_record_size()) {
      r.status = PublishStatus::record_too_large;
      return r;
    }
    sizes.push_back(hl);
    bytes += align_frame(sizeof(RecordHeader) + m.key.size() + hl + m.value.size());
  }
  if (bytes > ring.capacity() / 4) {
    r.status = PublishStatus::record_too_large;  // the batch as a whole
    return r;
  }
  // At least 1 ns, so a zero publish_timeout still means "wait" (briefly).
  const std::int64_t timeout = wait ? std::max<std::int64_t>(1, impl_->options.publish_timeout.count()) : 0;
  const ClaimSpan claim = impl_->claim(r.partition, bytes, static_cast<std::uint32_t>(messages.size()), timeout, true);
  if (claim.status != PublishStatus::ok) {
    r.status = claim.status;
    return r;
  }
  const std::int64_t ts = timestamp_now(impl_->options.coarse_timestamps);
  std::uint64_t pos = claim.frame_position;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    pos += write_frame(ring.data_at(pos), claim.offset + i, ts,
                       i == 0 ? static_cast<std::uint16_t>(messages.size()) : 0, m.key, m.headers, sizes[i],
                       m.value);
  }
  r.status = impl_->commit(r.partition, claim);
  r.offset = claim.offset;
  return r;
}

PublishResult Producer::publish_batch_frame(std::span<const std::byte> batch, std::uint32_t requested,
                                            bool wait) noexcept {
  PublishResult r;
  r.partition = choose_partition({}, requested);
  if (r.partition >= impl_->topic->partition_count()) {
    r.status = PublishStatus::invalid_partition;
    return r;
  }
  detail::PartitionRing& ring = impl_->topic->ring(r.partition);
  if (batch.size() > ring.max_record_size()) {
    r.status = PublishStatus::record_too_large;
    return r;
  }
  std::int32_t record_count = 0;
  if (!check_batch(batch, impl_->inflated, record_count).empty()) {
    r.status = PublishStatus::invalid_argument;
    return r;
  }
  const std::uint64_t bytes = align_frame(sizeof(RecordHeader) + batch.size());
  if (bytes > ring.capacity() / 4) {
    r.status = PublishStatus::record_too_large;
    return r;
  }
  const std::int64_t timeout = wait ? std::max<std::int64_t>(1, impl_->options.publish_timeout.count()) : 0;
  const auto records = static_cast<std::uint32_t>(record_count);
  const ClaimSpan claim = impl_->claim(r.partition, bytes, records, timeout, true);
  if (claim.status != PublishStatus::ok) {
    r.status = claim.status;
    return r;
  }
  std::byte* frame = ring.data_at(claim.frame_position);
  auto* fh = reinterpret_cast<RecordHeader*>(frame);
  fh->frame_length = static_cast<std::uint32_t>(sizeof(RecordHeader) + batch.size());
  fh->type = detail::FrameType::batch;
  fh->claim_records = static_cast<std::uint16_t>(records);
  fh->key_length = 0;
  fh->headers_length = 0;
  fh->offset = claim.offset;
  fh->timestamp_ns = timestamp_now(impl_->options.coarse_timestamps);
  std::memcpy(frame + sizeof(RecordHeader), batch.data(), batch.size());
  r.status = impl_->commit(r.partition, claim);
  r.offset = claim.offset;
  return r;
}

PublishResult Producer::try_publish_record_batch(std::span<const std::byte> batch, std::uint32_t partition) noexcept {
  return publish_batch_frame(batch, partition, false);
}

PublishResult Producer::publish_record_batch(std::span<const std::byte> batch, std::uint32_t partition) noexcept {
  return publish_batch_frame(batch, partition, true);
}

PublishResult Producer::try_publish(std::string_view key, std::string_view value, std::span<const Header> headers,
                                    std::uint32_t partition) noexcept {
  const Message m{key, value, headers};
  return publish_messages({&m, 1}, partition, false);
}

PublishResult Producer::publish(std::string_view key, std::string_view value, std::span<const Header> headers,
                                std::uint32_t partition) noexcept {
  const Message m{key, value, headers};
  return publish_messages({&m, 1}, partition, true);
}

PublishResult Producer::try_publish_batch(std::span<const Message> messages, std::uint32_t partition) noexcept {
  return publish_messages(messages, partition, false);
}

PublishResult Producer::publish_batch(std::span<const Message> messages, std::uint32_t partition) noexcept {
  return publish_messages(messages, partition, true);
}

Claim Producer::try_claim(std::size_t value_size, std::string_view key, std::span<const Header> headers,
                          std::uint32_t requested) noexcept {
  Claim c;
  c.partition_ = choose_partition(key, requested);
  if (c.partition_ >= impl_->topic->partition_count()) {
    c.status_ = PublishStatus::invalid_partition;
    return c;
  }
  detail::PartitionRing& ring = impl_->topic->ring(c.partition_);
  const std::size_t hl = headers.empty() ? 0 : detail::encoded_headers_size(headers);
  if (hl == SIZE_MAX || value_size > ring.max_record_size() ||
      key.size() + hl + value_size > ring.max_record_size()) {
    c.status_ = PublishStatus::record_too_large;
    return c;
  }
  const std::uint64_t bytes = align_frame(sizeof(RecordHeader) + key.size() + hl + value_size);
  // A Claim is held by the caller for as long as it likes: it commits by
  // CAS, so that one held past the abandoned-claim timeout can be revoked.
  const ClaimSpan claim = impl_->claim(c.partition_, bytes, 1, 0, false);
  if (claim.status != PublishStatus::ok) {
    c.status_ = claim.status;
    return c;
  }
  std::byte* frame = ring.data_at(claim.frame_position);
  // Write the frame with an empty value placeholder, then point the caller
  // at the value's bytes.
  write_frame(frame, claim.offset, timestamp_now(impl_->options.coarse_timestamps), 1, key, headers, hl, {});
  reinterpret_cast<RecordHeader*>(frame)->frame_length =
      static_cast<std::uint32_t>(sizeof(RecordHeader) + key.size() + hl + value_size);
  c.ring_ = &ring;
  c.position_ = claim.position;
  c.end_ = claim.end;
  c.offset_ = claim.offset;
  c.value_ = {frame + sizeof(RecordHeader) + key.size() + hl, value_size};
  if (impl_->options.exclusive) c.owner_cache_ = &impl_->caches[c.partition_];
  c.status_ = PublishStatus::ok;
  return c;
}

// ---------------------------------------------------------------------------

Claim::Claim(Claim&& o) noexcept { *this = std::move(o); }

Claim& Claim::operator=(Claim&& o) noexcept {
  if (this != &o) {
    if (ring_ != nullptr) abort();
    ring_ = std::exchange(o.ring_, nullptr);
    position_ = o.position_;
    end_ = o.end_;
    offset_ = o.offset_;
    value_ = o.value_;
    owner_cache_ = o.owner_cache_;
    partition_ = o.partition_;
    status_ = o.status_;
  }
  return *this;
}

Claim::~Claim() {
  if (ring_ != nullptr) abort();
}

PublishResult Claim::commit() noexcept {
  PublishResult r{status_, partition_, offset_};
  if (ring_ == nullptr) {
    if (r.status == PublishStatus::ok) r.status = PublishStatus::invalid_argument;  // committed twice
    return r;
  }
  ClaimSpan span;
  span.position = position_;
  span.end = end_;
  span.offset = offset_;
  r.status = owner_cache_ != nullptr ? ring_->commit_plain(*owner_cache_, span) : ring_->commit(span);
  ring_ = nullptr;
  return r;
}

void Claim::abort() noexcept {
  if (ring_ == nullptr) return;
  ClaimSpan span;
  span.position = position_;
  span.end = end_;
  span.offset = offset_;
  ring_->abort(span, 1);
  ring_ = nullptr;
}

}  // namespace ringbus
