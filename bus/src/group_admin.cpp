// Questions about groups and the operations that move them: list, describe,
// reset, delete (ringbus/group.h). Any process may call them; the broker's
// control channel serves them to the command line.
#include <algorithm>

#include <unistd.h>

#include "file_io.h"
#include "group_file.h"
#include "log_reader.h"
#include "partition_ring.h"
#include "ringbus/consumer.h"
#include "ringbus/group.h"
#include "segment_files.h"
#include "topic_files.h"

namespace ringbus {

using detail::GroupFile;
using detail::Pair;

std::uint64_t detail::offset_for_time(std::string_view instance, std::string_view topic, const PartitionRing& ring,
                                      std::int64_t ts) {
  const std::uint32_t p = ring.partition();
  const std::string log_dir = detail::topic_log_directory(instance, topic);
  if (!log_dir.empty()) {
    auto fio = log::make_pwrite_io();
    log::LogReader reader(*fio, log::partition_log_directory(log_dir, p));
    std::uint64_t offset = 0;
    const std::uint64_t written = ring.header().log_written.load(std::memory_order_acquire);
    if (reader.seek_time(ts, written, &offset) == log::ReadStatus::batch && offset < written) return offset;
  }
  // The ring (what the log has not written yet, or no log): read it through.
  ConsumerOptions o;
  o.start = StartPosition::earliest();
  o.partitions = {p};
  auto c = Consumer::open(instance, topic, o);
  if (!c) return ring.tail().second;
  std::uint64_t found = detail::kNoOffset;
  const std::uint64_t end = ring.tail().second;
  while (found == detail::kNoOffset && c->position(p) < end) {
    const PollResult r = c->poll([&](const Record& rec) {
      // Kafka's rule: by millisecond timestamp (LogReader::seek_time too).
      if (found == detail::kNoOffset && rec.timestamp_ms >= detail::ms_of(ts)) found = rec.offset;
    });
    if (r.records == 0 && r.status == PollStatus::ok) {
      // A broker found gone ends the first wait at once; the next one waits.
      WaitStatus w = c->wait(std::chrono::milliseconds(100));
      if (w == WaitStatus::no_broker) w = c->wait(std::chrono::milliseconds(100));
      if (w != WaitStatus::ready) break;
    }
  }
  return found == detail::kNoOffset ? end : found;
}

Result<std::vector<std::string>> list_groups(std::string_view instance, std::string_view topic) {
  auto info = describe_topic(instance, topic);
  if (!info) return info.error();
  return detail::list_group_names(instance, topic);
}

Result<GroupInfo> describe_group(std::string_view instance, std::string_view topic, std::string_view group) {
  auto map = detail::TopicMap::open(instance, topic, /*populate=*/false);
  if (!map) return map.error();
  auto file = GroupFile::open(instance, topic, group);
  if (!file) return file.error();
  GroupFile& g = *file.value();
  GroupInfo info;
  info.topic = topic;
  info.name = group;
  info.settings = g.settings();
  info.generation = g.header().generation.load(std::memory_order_acquire);
  const std::int64_t now = detail::monotonic_ns();
  for (const std::uint32_t slot : g.live_members()) {
    const detail::MemberSlot& m = g.header().members[slot];
    GroupMemberInfo mi;
    mi.slot = slot;
    mi.pid = m.pid.load(std::memory_order_relaxed);
    mi.client = m.client.load(std::memory_order_relaxed);
    mi.joined_ns = m.joined_ns.load(std::memory_order_relaxed);
    mi.heartbeat_age_ns = now - m.heartbeat_ns.load(std::memory_order_relaxed);
    const std::uint32_t inc = detail::incarnation_of(m.word.load(std::memory_order_acquire));
    for (std::uint32_t p = 0; p < g.partition_count() && !g.is_queue(); ++p) {
      if (g.partition(p).owner.load(std::memory_order_acquire) == detail::owner_token(slot, inc)) mi.partitions.push_back(p);
    }
    info.members.push_back(std::move(mi));
  }
  const std::uint32_t n = std::min(g.partition_count(), map.value()->partition_count());
  for (std::uint32_t p = 0; p < n; ++p) {
    GroupPartitionInfo pi;
    pi.partition = p;
    pi.end_offset = map.value()->ring(p).tail().second;
    const detail::GroupPartition& part = g.partition(p);
    if (g.is_queue()) {
      const Pair f = g.floor(p);
      const Pair d = g.dispatch(p);
      pi.committed = f.first;
      pi.has_committed = true;
      pi.in_flight = d.first - f.first;
      pi.redelivered = part.redelivered.load(std::memory_order_relaxed);
      pi.dead_lettered = part.dead_lettered.load(std::memory_order_relaxed);
    } else {
      const std::uint64_t c = part.committed.load(std::memory_order_acquire);
      pi.has_committed = c != detail::kNoOffset;
      pi.committed = pi.has_committed ? c : 0;
    }
    pi.lag = pi.has_committed && pi.end_offset > pi.committed ? pi.end_offset - pi.committed : 0;
    info.partitions.push_back(pi);
  }
  return info;
}

Status reset_group(std::string_view instance, std::string_view topic, std::string_view group, GroupPosition position,
                   const GroupSettings& settings) {
  auto map = detail::TopicMap::open(instance, topic, /*populate=*/false);
  if (!map) return map.error();
  const std::uint32_t n = map.value()->partition_count();
  std::vector<std::uint64_t> targets(n);
  for (std::uint32_t p = 0; p < n; ++p) {
    const detail::PartitionRing& ring = map.value()->ring(p);
    const std::uint64_t lo = ring.earliest_offset();
    const std::uint64_t hi = ring.tail().second;
    switch (position.kind) {
      case GroupPosition::Kind::earliest: targets[p] = lo; break;
      case GroupPosition::Kind::latest: targets[p] = hi; break;
      case GroupPosition::Kind::offset: targets[p] = std::clamp(position.offset, lo, hi); break;
      case GroupPosition::Kind::time: targets[p] = std::clamp(detail::offset_for_time(instance, topic, ring, position.timestamp_ns), lo, hi); break;
    }
  }
  auto file = GroupFile::open_or_create(instance, topic, map.value()->topic_id(), n, group, settings, targets);
  if (!file) return file.error();
  GroupFile& g = *file.value();
  (void)g.reap(detail::monotonic_ns());
  if (!g.live_members().empty()) {
    return Error{Errc::busy, "group '" + std::string(group) + "' has " + std::to_string(g.live_members().size()) +
                                 " live member(s); stop them before resetting it"};
  }
  // No member runs: nobody else writes these words (a member joining now
  // would start from what we leave).
  for (std::uint32_t p = 0; p < std::min(n, g.partition_count()); ++p) {
    detail::GroupPartition& part = g.partition(p);
    part.committed.store(targets[p], std::memory_order_release);
    part.owner.store(0, std::memory_order_release);
    if (g.is_queue()) {
      // Every chunk in flight is dropped: the floor and the dispatch both
      // move to the target, at a new sequence past every slot's.
      const Pair d = g.dispatch(p);
      const std::uint64_t seq = d.second + g.chunk_slots();
      for (std::uint64_t s = 0; s < g.chunk_slots(); ++s) {
        detail::store16(g.slot(p, seq + s).state, Pair{seq + s - g.chunk_slots(), 0});
      }
      detail::store16(part.floor, Pair{targets[p], seq});
      detail::store16(part.dispatch, Pair{targets[p], seq});
    }
  }
  (void)g.request_persist();
  return {};
}

Status delete_group(std::string_view instance, std::string_view topic, std::string_view group) {
  auto file = GroupFile::open(instance, topic, group);
  if (!file) return file.error();
  (void)file.value()->reap(detail::monotonic_ns());
  if (!file.value()->live_members().empty()) {
    return Error{Errc::busy, "group '" + std::string(group) + "' has live members; stop them before deleting it"};
  }
  const std::string path = detail::group_path(instance, topic, group);
  if (::unlink(path.c_str()) != 0) return Error{Errc::io_error, detail::errno_message("unlink " + path, errno)};
  return {};
}

}  // namespace ringbus
