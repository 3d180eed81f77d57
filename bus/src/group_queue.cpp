// Queue groups: members share each partition's records by claiming chunks
// of offsets, acknowledge them, and take over chunks whose lease ran out;
// dead letters after too many deliveries (bus/README.md, "Consumer groups").
#include "group_member.h"

#include <algorithm>

#include "consumer_access.h"

namespace ringbus {

using detail::ChunkGrant;
using detail::ChunkState;
using detail::ChunkView;
using detail::ClaimOutcome;
using detail::ConsumerAccess;
using detail::HeldChunk;
using detail::Pair;

bool GroupConsumer::Impl::start_chunk(std::uint32_t p) {
  HeldChunk h;
  h.partition = p;
  bool got = false;
  if (auto it = std::find_if(taken.begin(), taken.end(), [&](const HeldChunk& t) { return t.partition == p; });
      it != taken.end()) {
    h.grant = it->grant;
    taken.erase(it);
    got = true;
  }
  if (!got) {
    const std::uint64_t end = map->ring(p).tail().second;
    if (file->claim_chunk(p, end, owner(), lease_ms, h.grant) != ClaimOutcome::granted) return false;
  }
  if (h.grant.deliveries > 1) {
    h.skip = file->acked_bits(p, h.grant.seq);
    if (h.skip == ~std::uint64_t{0}) return false;  // completed meanwhile (retired)
  }
  h.active = true;
  const Pair hint = detail::load_pair(file->partition(p).position_hint);
  if (!ConsumerAccess::set_window(*reader, p, h.grant.base, h.grant.base + h.grant.count, hint)) {
    // Its records are gone (retention, or lapped with no commit log): nothing
    // to deliver; finish_chunk acknowledges them as lost.
    (void)ConsumerAccess::set_window(*reader, p, h.grant.base + h.grant.count, h.grant.base + h.grant.count);
  }
  reading[p] = h;
  return true;
}

void GroupConsumer::Impl::finish_chunk(HeldChunk& h) {
  const std::uint32_t p = h.partition;
  const std::uint64_t all = detail::full_mask(h.grant.count);
  // Offsets never delivered (aborted by their producer, lost) are done with.
  const std::uint64_t now = options.auto_ack || h.grant.dead_letter ? all : (all & ~h.delivered);
  bool complete = false;
  const bool ours = file->ack(p, h.grant.seq, now, h.grant.count, complete);
  const Pair at = ConsumerAccess::ring_cursor(*reader, p);
  if (at.second != 0) detail::raise_pair(file->partition(p).position_hint, at);
  if (complete) file->advance_floor(p);
  if (ours && !complete && !options.auto_ack) awaiting.push_back(h);
  h.active = false;
}

void GroupConsumer::Impl::scan_for_redelivery() {
  const std::uint32_t now_ms = detail::monotonic_ms32();
  for (std::uint32_t p = 0; p < partitions(); ++p) {
    const Pair f = file->floor(p);
    const Pair d = file->dispatch(p);
    for (std::uint64_t seq = f.second; seq < d.second; ++seq) {
      const ChunkView c = file->chunk(p, seq);
      if (c.seq != seq || c.state != ChunkState::leased) continue;
      const bool expired = detail::ms32_diff(now_ms, c.deadline_ms) > 0;
      const bool mine = c.owner == owner();
      if (!expired && (mine || file->member_alive(c.owner >> 10, c.owner & 1023, 1023))) continue;
      if (mine) {
        // Our own lease ran out (auto_ack off and no ack): it goes back to
        // the group like anyone's; drop our claim on it.
        std::erase_if(awaiting, [&](const HeldChunk& h) { return h.partition == p && h.grant.seq == seq; });
        if (reading[p].active && reading[p].grant.seq == seq) continue;  // still reading it: let it finish
      }
      ChunkGrant g;
      if (file->take_over(p, c, owner(), lease_ms, g)) {
        taken.push_back(HeldChunk{p, g, 0, 0, false});
      }
    }
  }
}

void GroupConsumer::Impl::dead_letter(const HeldChunk& h, const Record& r) {
  const std::string dlq = file->settings().dead_letter_topic;
  if (dlq.empty()) {
    file->partition(h.partition).dead_lettered.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!dead_letters) {
    auto p = Producer::open(instance, dlq);
    if (p) dead_letters.emplace(std::move(p.value()));
  }
  const std::string origin = topic + "/" + std::to_string(r.partition) + "/" + std::to_string(r.offset);
  const std::string tries = std::to_string(h.grant.deliveries - 1);
  const Header headers[] = {{"ringbus.dead-letter.origin", origin}, {"ringbus.dead-letter.deliveries", tries}};
  // Not published (no such topic, too large): counted, and given up on like
  // the rest; the broker's log is not ours to write from a client.
  if (dead_letters) (void)dead_letters->publish(r.key, r.value, headers);
  file->partition(h.partition).dead_lettered.fetch_add(1, std::memory_order_relaxed);
}

PollResult GroupConsumer::Impl::poll_queue(detail::RecordHandlerRef handler, std::size_t max_records, std::int64_t now) {
  PollResult total;
  if (now >= next_scan_ns) {
    scan_for_redelivery();
    next_scan_ns = now + std::min<std::int64_t>(heartbeat_every_ns, std::int64_t{lease_ms} * 250'000);
  }
  auto deliver = [&](const Record& r) {
    HeldChunk& h = reading[r.partition];
    const std::uint64_t bit = std::uint64_t{1} << (r.offset - h.grant.base);
    if (h.skip & bit) return;  // acknowledged by an earlier holder
    h.delivered |= bit;
    if (h.grant.dead_letter) {
      dead_letter(h, r);
      return;
    }
    Record copy = r;
    copy.deliveries = h.grant.deliveries;
    handler(copy);
  };
  // Claim, read, acknowledge, and again, while chunks come and room is left.
  for (int round = 0; round < 64 && total.records < max_records; ++round) {
    bool any = false;
    for (std::uint32_t k = 0; k < partitions(); ++k) {
      const std::uint32_t p = (next_partition + k) % partitions();
      if (reading[p].active || start_chunk(p)) any = true;
    }
    if (!any) break;
    const PollResult r = reader->poll(deliver, max_records - total.records);
    total.records += r.records;
    if (r.status != PollStatus::ok && total.status == PollStatus::ok) {
      total.status = r.status;
      total.partition = r.partition;
      total.missed_from = r.missed_from;
      total.resumed_at = r.resumed_at;
    }
    bool finished = false;
    for (HeldChunk& h : reading) {
      if (h.active && ConsumerAccess::passed(*reader, h.partition) >= h.grant.base + h.grant.count) {
        finish_chunk(h);
        finished = true;
      }
    }
    if (!finished) break;  // waiting on records still being written
  }
  next_partition = (next_partition + 1) % partitions();
  // Nothing left to claim: the reader was not asked, so say here whether the
  // topic is gone (the deleted mark is set on every partition together).
  if (total.records == 0 && total.status == PollStatus::ok && map->ring(0).deleted()) {
    total.status = PollStatus::topic_deleted;
  }
  return total;
}

void GroupConsumer::Impl::leave_queue() {
  // Acknowledge what the handler already had; hand the rest back at once.
  for (HeldChunk& h : reading) {
    if (!h.active) continue;
    bool complete = false;
    if (options.auto_ack && h.delivered != 0 && file->ack(h.partition, h.grant.seq, h.delivered, h.grant.count, complete) &&
        complete) {
      file->advance_floor(h.partition);
    }
    if (!complete) (void)file->release(h.partition, h.grant.seq, owner());
    h.active = false;
  }
  for (const HeldChunk& h : awaiting) (void)file->release(h.partition, h.grant.seq, owner());
  for (const HeldChunk& h : taken) (void)file->release(h.partition, h.grant.seq, owner());
  awaiting.clear();
  taken.clear();
}

Status GroupConsumer::ack(std::uint32_t partition, std::uint64_t offset) {
  Impl& im = *impl_;
  auto not_held = [&] {
    return Error{Errc::not_found, "this member holds no unacknowledged record at offset " + std::to_string(offset) +
                                      " of partition " + std::to_string(partition)};
  };
  if (partition >= im.partitions()) return not_held();
  auto covers = [&](const HeldChunk& h) {
    return h.partition == partition && offset >= h.grant.base && offset < h.grant.base + h.grant.count;
  };
  // Read and waiting for acknowledgements, or still being read (ack() from
  // inside the handler).
  auto it = std::find_if(im.awaiting.begin(), im.awaiting.end(), covers);
  const bool reading = it == im.awaiting.end() && im.reading[partition].active && covers(im.reading[partition]);
  if (it == im.awaiting.end() && !reading) return not_held();
  const HeldChunk& h = reading ? im.reading[partition] : *it;
  const std::uint64_t bit = std::uint64_t{1} << (offset - h.grant.base);
  bool complete = false;
  if ((im.file->acked_bits(partition, h.grant.seq) & bit) != 0 ||
      !im.file->ack(partition, h.grant.seq, bit, h.grant.count, complete)) {
    if (!reading && im.file->acked_bits(partition, h.grant.seq) == ~std::uint64_t{0}) im.awaiting.erase(it);  // retired
    return not_held();
  }
  if (complete) {
    if (!reading) im.awaiting.erase(it);
    im.file->advance_floor(partition);
  }
  return {};
}

}  // namespace ringbus
