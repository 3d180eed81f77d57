// Publishing records into a topic's partition rings.
//
// Threading: a Producer is used by one thread at a time (it keeps per-producer
// caches of the rings' gating positions and a round-robin counter); make one
// per publishing thread. Any number of Producers, in any number of threads
// and processes, publish to the same partition at once, with no lock and no
// system call (a futex wake-up is paid only while a consumer is blocked).
// A publish claims with one locked instruction and commits with a plain
// store; a producer stopped (SIGSTOP, a debugger) inside a publish stalls
// readers at its record until it resumes, and one that dies there is
// stepped over after the abandoned-claim timeout (bus/README.md, "Shared
// producers' plain commits"). A Claim commits with a locked instruction,
// and is revoked if held past that timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "ringbus/record.h"
#include "ringbus/result.h"

namespace ringbus {

namespace detail {
class TopicMap;
class PartitionRing;
struct ProducerCache;
}  // namespace detail

// Chooses the partition: by key hash when there is a key, round-robin when not.
inline constexpr std::uint32_t kAutoPartition = UINT32_MAX;

struct Message {
  std::string_view key;
  std::string_view value;
  std::span<const Header> headers = {};
};

// A claimed, not yet published record: write the value in place, then commit
// (or abort). Commit within the topic's abandoned-claim timeout; a claim held
// longer may be revoked by readers (commit then says claim_revoked). A Claim
// that is destroyed without commit or abort is aborted. A Claim refers to its
// Producer's mapping of the ring: commit or abort it before the Producer is
// destroyed (it holds no reference count, to keep claims free of atomics).
class Claim {
 public:
  Claim() = default;
  Claim(Claim&& other) noexcept;
  Claim& operator=(Claim&& other) noexcept;
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim();

  PublishStatus status() const noexcept { return status_; }
  bool ok() const noexcept { return status_ == PublishStatus::ok; }
  std::uint32_t partition() const noexcept { return partition_; }
  std::uint64_t offset() const noexcept { return offset_; }
  // The value's bytes, in the ring, for the caller to fill.
  std::span<std::byte> value() const noexcept { return value_; }

  // Publishes the record (release store of its commit entry).
  [[nodiscard]] PublishResult commit() noexcept;
  // Withdraws the record: readers step over it; its offset is never delivered.
  void abort() noexcept;

 private:
  friend class Producer;
  detail::PartitionRing* ring_ = nullptr;
  std::uint64_t position_ = 0;   // ring position of the claim (padding included)
  std::uint64_t end_ = 0;        // position after the claim
  std::uint64_t offset_ = 0;
  std::span<std::byte> value_{};
  const detail::ProducerCache* owner_cache_ = nullptr;  // an exclusive producer's: commits with a plain store
  std::uint32_t partition_ = 0;
  PublishStatus status_ = PublishStatus::invalid_argument;
};

struct ProducerOptions {
  // How long publish() waits for space before it returns timed_out.
  std::chrono::nanoseconds publish_timeout = std::chrono::seconds(5);
  // Record timestamps from CLOCK_REALTIME_COARSE (the kernel tick, 1-4 ms
  // resolution, like Kafka's millisecond timestamps) instead of CLOCK_REALTIME:
  // about 5 ns instead of 23 ns per claim on a VM, which matters at 50M
  // records/s. One timestamp is taken per claim (a batch shares it).
  bool coarse_timestamps = false;
  // Own every partition of the topic (Aeron's ExclusivePublication): open()
  // takes each partition's lease, and fails, naming the owner, while another
  // live producer holds one. Then only this producer publishes there (others
  // get partition_owned) and it claims and commits with plain stores, no
  // locked instruction: bus/README.md, "An exclusive owner". Use it from one
  // thread at a time. Its pending claims are never revoked while its process
  // lives (a stopped owner stalls its partitions rather than lose a record);
  // the leases go back when it is destroyed, or when its process dies (a
  // new owner takes them over, and readers revoke what the dead one left
  // pending after the abandoned-claim timeout).
  bool exclusive = false;
};

// Why Producer::try_publish_record_batch would refuse `batch` with
// invalid_argument, naming the check that fails (its CRC, its length, its
// records, their offset deltas, a transactional or control batch); ok if
// it passes them (the topic's size limits aside).
Status check_record_batch(std::span<const std::byte> batch);

class Producer {
 public:
  // Opens a producer on an existing topic of a running instance.
  static Result<Producer> open(std::string_view instance, std::string_view topic,
                               ProducerOptions options = {});
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  ~Producer();

  std::uint32_t partitions() const noexcept;
  std::uint32_t max_record_size() const noexcept;

  // Copies one record in; never waits. back_pressured if the ring is full;
  // no_broker instead if the topic has a commit log and no broker is alive
  // (its flusher is what frees the space). Records published while no
  // broker runs are kept in the ring: the next broker writes them to the log.
  PublishResult try_publish(std::string_view key, std::string_view value,
                            std::span<const Header> headers = {},
                            std::uint32_t partition = kAutoPartition) noexcept;
  // The same, but waits for space up to the producer's publish_timeout
  // (timed_out), or until it finds no broker alive (no_broker). It spins,
  // yields, then sleeps 50 us between checks (bus/README.md).
  PublishResult publish(std::string_view key, std::string_view value,
                        std::span<const Header> headers = {},
                        std::uint32_t partition = kAutoPartition) noexcept;
  // One claim for many records: they get consecutive offsets in one partition
  // (chosen by the first message's key, or round-robin), and become visible
  // together. result.offset is the first record's offset. At most 65535
  // records and ring_bytes / 4 bytes in one batch.
  PublishResult try_publish_batch(std::span<const Message> messages,
                                  std::uint32_t partition = kAutoPartition) noexcept;
  PublishResult publish_batch(std::span<const Message> messages,
                              std::uint32_t partition = kAutoPartition) noexcept;
  // A Kafka record batch v2 (magic 2), as a Kafka producer sends it, in one
  // claim: its records get consecutive offsets (result.offset is the
  // first), consumers read them like any others (timestamps and headers as
  // the batch has them), and the flusher writes the batch to the log as it
  // came, stamped with those offsets (compressed batches stay compressed).
  // The batch is checked whole first (CRC-32C, every record): invalid_argument
  // if it fails, holds no record or more than 65535, its offset deltas are
  // not 0, 1, 2, ..., or it is transactional or a control batch (ringbus has
  // no transactions; check_record_batch says which); record_too_large above
  // max_record_size or a quarter of the ring. Round-robin over partitions
  // unless one is given.
  PublishResult try_publish_record_batch(std::span<const std::byte> batch,
                                         std::uint32_t partition = kAutoPartition) noexcept;
  PublishResult publish_record_batch(std::span<const std::byte> batch,
                                     std::uint32_t partition = kAutoPartition) noexcept;
  // Waits until the record(s) of a successful publish are durable in the
  // topic's commit log, by the topic's durability policy (written to the
  // page cache, or fdatasync'ed). Returns ok, timed_out, no_commit_log,
  // log_failed (as soon as the flusher reports a disk error), no_broker (at
  // once, or within 20 ms of the broker's death: only a live broker's
  // flusher makes records durable) or topic_deleted. Blocks on a futex; the
  // flusher wakes it.
  PublishStatus wait_durable(const PublishResult& published, std::chrono::nanoseconds timeout) noexcept;
  // Blocks until the record is durable on every in-sync replica of a
  // replicated topic (acks=all: below its leader's high watermark,
  // cluster/README.md), with at least the topic's min_insync replicas in
  // sync. Returns ok, timed_out, not_enough_replicas (fewer in sync than
  // min_insync: never a silent downgrade), not_leader (this node stopped
  // leading the topic: a failover; leader() says who leads it now),
  // topic_deleted, log_failed or no_broker. On a topic that is not
  // replicated, as wait_durable (its one replica).
  PublishStatus wait_replicated(const PublishResult& published, std::chrono::nanoseconds timeout) noexcept;
  // After not_leader: the node of the cluster that leads the topic now, as
  // this host's broker last heard (it serves the topic there as a mirror's
  // copy); "" while it does not know (a node that fenced itself steps down
  // before another is elected: ask again). Reads the host's shared memory,
  // no system call on the rings' path; for the cold path.
  std::string leader() const;
  // Zero-copy: claims room for a value of value_size bytes (the key and
  // headers are copied in now); the caller writes the value and commits.
  // Commit or abort it before the producer is destroyed.
  Claim try_claim(std::size_t value_size, std::string_view key = {},
                  std::span<const Header> headers = {},
                  std::uint32_t partition = kAutoPartition) noexcept;

 private:
  struct Impl;
  explicit Producer(std::unique_ptr<Impl> impl);
  std::uint32_t choose_partition(std::string_view key, std::uint32_t requested) noexcept;
  PublishResult publish_messages(std::span<const Message> messages, std::uint32_t partition,
                                 bool wait) noexcept;
  PublishResult publish_batch_frame(std::span<const std::byte> batch, std::uint32_t partition, bool wait) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringbus
