#include "group_file.h"

#include "liveness.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "topic_files.h"

namespace ringbus::detail {

namespace {

constexpr const char* kGroupPrefix = "group-";

bool nul_terminated(const char* s, std::size_t size) { return std::memchr(s, '\0', size) != nullptr; }

Error bad_field(const std::string& path, const std::string& field, const std::string& why) {
  return Error{Errc::corrupt, "group file " + path + ": " + field + " " + why};
}

void copy_name(char* dst, std::size_t size, std::string_view src) {
  std::memset(dst, 0, size);
  std::memcpy(dst, src.data(), std::min(src.size(), size - 1));
}

}  // namespace

std::uint32_t monotonic_ms32() noexcept { return static_cast<std::uint32_t>(monotonic_ns() / 1'000'000); }

std::string group_path(std::string_view instance, std::string_view topic, std::string_view group) {
  return topic_directory(instance, topic) + "/" + kGroupPrefix + std::string(group);
}

std::vector<std::string> list_group_names(std::string_view instance, std::string_view topic) {
  std::vector<std::string> names;
  const std::string dir = topic_directory(instance, topic);
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string_view n = e->d_name;
      if (n.starts_with(kGroupPrefix)) names.emplace_back(n.substr(std::strlen(kGroupPrefix)));
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status validate_group_header(const std::byte* data, std::uint64_t size, const std::string& path) {
  if (size < sizeof(GroupHeader)) {
    return Error{Errc::corrupt, "group file " + path + " is " + std::to_string(size) + " bytes, smaller than its header (" +
                                    std::to_string(sizeof(GroupHeader)) + ")"};
  }
  GroupIdentity id;
  std::memcpy(&id, data, sizeof id);
  if (id.magic != kGroupMagic) return bad_field(path, "magic", "is wrong: not a ringbus group file");
  if (id.layout_version != kGroupLayoutVersion) {
    return Error{Errc::version_mismatch, "group file " + path + " has layout version " + std::to_string(id.layout_version) +
                                             "; this client understands version " + std::to_string(kGroupLayoutVersion)};
  }
  if (id.header_size != sizeof(GroupHeader)) return bad_field(path, "header_size", "is " + std::to_string(id.header_size));
  if (id.partition_count < 1 || id.partition_count > 1024) {
    return bad_field(path, "partition_count", "is " + std::to_string(id.partition_count) + " (1 to 1024)");
  }
  const bool queue = id.mode == static_cast<std::uint32_t>(GroupModeCode::queue);
  if (!queue && id.mode != static_cast<std::uint32_t>(GroupModeCode::pubsub)) {
    return bad_field(path, "mode", "is " + std::to_string(id.mode) + " (1 pubsub, 2 queue)");
  }
  if (id.chunk_slots != (queue ? kChunkSlots : 0)) return bad_field(path, "chunk_slots", "is " + std::to_string(id.chunk_slots));
  if (id.max_deliveries > kMaxDeliveriesLimit) return bad_field(path, "max_deliveries", "is " + std::to_string(id.max_deliveries));
  if (id.lease_ns < 1'000'000 || id.lease_ns > 86'400'000'000'000ULL) return bad_field(path, "lease_ns", "is out of range");
  if (id.session_timeout_ns < 1'000'000 || id.session_timeout_ns > 86'400'000'000'000ULL) {
    return bad_field(path, "session_timeout_ns", "is out of range");
  }
  if (id.start != static_cast<std::uint32_t>(GroupStartCode::earliest) &&
      id.start != static_cast<std::uint32_t>(GroupStartCode::latest)) {
    return bad_field(path, "start", "is " + std::to_string(id.start));
  }
  if (!nul_terminated(id.group_name, sizeof id.group_name) || id.group_name[0] == '\0') {
    return bad_field(path, "group_name", "is not a NUL-terminated name");
  }
  if (!nul_terminated(id.dead_letter_topic, sizeof id.dead_letter_topic)) {
    return bad_field(path, "dead_letter_topic", "is not NUL-terminated");
  }
  const std::uint64_t expected = group_file_size(id.partition_count, id.chunk_slots);
  if (id.file_size != expected) {
    return bad_field(path, "file_size", "is " + std::to_string(id.file_size) + "; the layout needs " + std::to_string(expected));
  }
  if (size != expected) {
    return Error{Errc::corrupt, "group file " + path + " is " + std::to_string(size) + " bytes; its header says " +
                                    std::to_string(expected) + " (truncated?)"};
  }
  return {};
}

GroupFile::GroupFile(MappedFile file, std::string instance_dir)
    : file_(std::move(file)),
      instance_dir_(std::move(instance_dir)),
      header_(reinterpret_cast<GroupHeader*>(file_.data())),
      partitions_(reinterpret_cast<GroupPartition*>(file_.data() + sizeof(GroupHeader))),
      slots_(reinterpret_cast<ChunkSlot*>(file_.data() + sizeof(GroupHeader) +
                                          std::uint64_t{header_->id.partition_count} * sizeof(GroupPartition))) {}

Result<std::shared_ptr<GroupFile>> GroupFile::open(std::string_view instance, std::string_view topic, std::string_view group) {
  if (auto s = validate_name("group", group); !s) return s.error();
  const std::string path = group_path(instance, topic, group);
  auto file = MappedFile::open(path, /*populate=*/true);
  if (!file) {
    if (file.error().code == Errc::not_found) {
      return Error{Errc::not_found, "topic '" + std::string(topic) + "' has no group '" + std::string(group) + "'"};
    }
    return file.error();
  }
  if (auto s = validate_group_header(file->data(), file->size(), path); !s) return s.error();
  return std::shared_ptr<GroupFile>(new GroupFile(std::move(file.value()), instance_directory(instance)));
}

Result<std::shared_ptr<GroupFile>> GroupFile::open_or_create(std::string_view instance, std::string_view topic,
                                                             std::uint64_t topic_id, std::uint32_t partitions,
                                                             std::string_view group, const GroupSettings& settings,
                                                             const std::vector<std::uint64_t>& start_offsets) {
  if (auto s = validate_name("group", group); !s) return s.error();
  const std::string quoted = "group '" + std::string(group) + "': ";
  if (settings.max_deliveries > kMaxDeliveriesLimit) {
    return Error{Errc::invalid_argument, quoted + "max_deliveries is " + std::to_string(settings.max_deliveries) +
                                             "; at most " + std::to_string(kMaxDeliveriesLimit)};
  }
  if (settings.lease < std::chrono::milliseconds(1) || settings.lease > std::chrono::hours(24)) {
    return Error{Errc::invalid_argument, quoted + "the lease must be 1 ms to 24 h"};
  }
  if (settings.session_timeout < std::chrono::milliseconds(1) || settings.session_timeout > std::chrono::hours(24)) {
    return Error{Errc::invalid_argument, quoted + "the session timeout must be 1 ms to 24 h"};
  }
  if (!settings.dead_letter_topic.empty()) {
    if (auto s = validate_name("dead-letter topic", settings.dead_letter_topic); !s) return s.error();
    if (settings.dead_letter_topic == topic) return Error{Errc::invalid_argument, quoted + "the dead-letter topic is the topic itself"};
  }
  if (settings.start != StartPosition::Kind::earliest && settings.start != StartPosition::Kind::latest) {
    return Error{Errc::invalid_argument, quoted + "a group starts at earliest or latest"};
  }
  const bool queue = settings.mode == GroupMode::queue;
  if (start_offsets.size() != partitions) return Error{Errc::invalid_argument, quoted + "one start offset per partition is needed"};
  for (;;) {
    auto existing = open(instance, topic, group);
    if (existing || existing.error().code != Errc::not_found) return existing;
    const std::string path = group_path(instance, topic, group);
    const std::string tmp = topic_directory(instance, topic) + "/.group-" + std::to_string(::getpid()) + "-" +
                            std::to_string(monotonic_ns());
    auto file = MappedFile::create(tmp, group_file_size(partitions, queue ? kChunkSlots : 0));
    if (!file) {
      if (file.error().code == Errc::io_error && !describe_topic(instance, topic)) {
        return Error{Errc::not_found, "no topic '" + std::string(topic) + "'"};
      }
      return file.error();
    }
    // The file is private until linked: plain initialisation is enough.
    auto* h = new (file->data()) GroupHeader{};
    GroupIdentity& id = h->id;
    id.magic = kGroupMagic;
    id.layout_version = kGroupLayoutVersion;
    id.header_size = sizeof(GroupHeader);
    id.file_size = file->size();
    id.topic_id = topic_id;
    id.partition_count = partitions;
    id.mode = static_cast<std::uint32_t>(queue ? GroupModeCode::queue : GroupModeCode::pubsub);
    id.chunk_slots = queue ? kChunkSlots : 0;
    id.max_deliveries = settings.max_deliveries;
    id.lease_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(settings.lease).count());
    id.session_timeout_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(settings.session_timeout).count());
    id.start = static_cast<std::uint32_t>(settings.start == StartPosition::Kind::earliest ? GroupStartCode::earliest
                                                                                          : GroupStartCode::latest);
    copy_name(id.group_name, sizeof id.group_name, group);
    copy_name(id.dead_letter_topic, sizeof id.dead_letter_topic, settings.dead_letter_topic);
    GroupFile g(std::move(file.value()), instance_directory(instance));
    for (std::uint32_t p = 0; p < partitions; ++p) {
      GroupPartition& part = g.partition(p);
      new (&part) GroupPartition{};
      part.committed.store(start_offsets[p], std::memory_order_relaxed);
      if (queue) {
        // Chunk sequences start at chunk_slots, so that slot i first expects
        // {i, free}: "free after chunk i".
        part.dispatch[0] = part.floor[0] = start_offsets[p];
        part.dispatch[1] = part.floor[1] = kChunkSlots;
        for (std::uint64_t i = 0; i < kChunkSlots; ++i) {
          ChunkSlot& s = g.slot(p, i);
          new (&s) ChunkSlot{};
          s.state[0] = i;
          s.acks[1] = i;
        }
      }
    }
    // Published whole, or not at all: link(2) fails if the name is taken.
    const int rc = ::link(tmp.c_str(), path.c_str());
    const int err = errno;
    ::unlink(tmp.c_str());
    if (rc == 0) return std::shared_ptr<GroupFile>(new GroupFile(std::move(g.file_), g.instance_dir_));
    if (err != EEXIST) return Error{Errc::io_error, errno_message("link " + path, err)};
    // Another member created it first: open theirs.
  }
}

GroupSettings GroupFile::settings() const {
  const GroupIdentity& id = header_->id;
  GroupSettings s;
  s.mode = is_queue() ? GroupMode::queue : GroupMode::pubsub;
  s.start = id.start == static_cast<std::uint32_t>(GroupStartCode::earliest) ? StartPosition::Kind::earliest
                                                                              : StartPosition::Kind::latest;
  s.lease = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(id.lease_ns));
  s.max_deliveries = id.max_deliveries;
  s.dead_letter_topic = id.dead_letter_topic;
  s.session_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(id.session_timeout_ns));
  return s;
}

// ---- members ------------------------------------------------------------------

bool GroupFile::client_dead(std::int32_t client) const noexcept { return client_is_dead(instance_dir_, client); }

Result<std::pair<std::uint32_t, std::uint32_t>> GroupFile::join() {
  // Liveness by client token, not pid: members may live in other pid
  // namespaces. Taken here (admin tools and the broker never join).
  auto client = client_token(instance_dir_);
  if (!client) return client.error();
  client_ = client.value();
  for (int round = 0; round < 2; ++round) {
    for (std::uint32_t i = 0; i < kGroupMembers; ++i) {
      MemberSlot& m = header_->members[i];
      std::uint64_t w = m.word.load(std::memory_order_acquire);
      if (state_of(w) != MemberState::free) continue;
      const std::uint32_t inc = incarnation_of(w) + 1;
      if (!m.word.compare_exchange_strong(w, member_word(inc, MemberState::reserved), std::memory_order_acq_rel)) continue;
      m.client.store(client_, std::memory_order_relaxed);
      m.pid.store(static_cast<std::int32_t>(::getpid()), std::memory_order_relaxed);
      m.heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed);
      m.joined_ns.store(realtime_ns(), std::memory_order_relaxed);
      // A CAS: a reaper that saw the previous occupant's (dead) pid may have
      // freed the slot under us; then look for another.
      std::uint64_t reserved = member_word(inc, MemberState::reserved);
      if (!m.word.compare_exchange_strong(reserved, member_word(inc, MemberState::active), std::memory_order_acq_rel)) {
        continue;
      }
      header_->generation.fetch_add(1, std::memory_order_acq_rel);
      return std::pair{i, inc};
    }
    if (reap(monotonic_ns()) == 0) break;
  }
  return Error{Errc::busy, "group '" + std::string(header_->id.group_name) + "' already has " +
                               std::to_string(kGroupMembers) + " live members"};
}

void GroupFile::leave(std::uint32_t slot, std::uint32_t incarnation) noexcept {
  MemberSlot& m = header_->members[slot];
  std::uint64_t w = member_word(incarnation, MemberState::active);
  if (m.word.compare_exchange_strong(w, member_word(incarnation, MemberState::free), std::memory_order_acq_rel)) {
    header_->generation.fetch_add(1, std::memory_order_acq_rel);
  }
}

std::uint32_t GroupFile::reap(std::int64_t now_ns) noexcept {
  std::uint32_t evicted = 0;
  const auto timeout = static_cast<std::int64_t>(header_->id.session_timeout_ns);
  for (MemberSlot& m : header_->members) {
    std::uint64_t w = m.word.load(std::memory_order_acquire);
    const MemberState s = state_of(w);
    if (s == MemberState::free) continue;
    const bool dead = client_dead(m.client.load(std::memory_order_relaxed));
    const bool silent = s == MemberState::active && now_ns - m.heartbeat_ns.load(std::memory_order_relaxed) > timeout;
    if (!dead && !silent) continue;
    if (m.word.compare_exchange_strong(w, member_word(incarnation_of(w), MemberState::free), std::memory_order_acq_rel)) {
      ++evicted;
    }
  }
  if (evicted != 0) header_->generation.fetch_add(1, std::memory_order_acq_rel);
  return evicted;
}

bool GroupFile::member_alive(std::uint32_t slot, std::uint32_t incarnation_low, std::uint32_t mask) const noexcept {
  if (slot >= kGroupMembers) return false;
  const MemberSlot& m = header_->members[slot];
  const std::uint64_t w = m.word.load(std::memory_order_acquire);
  if (state_of(w) != MemberState::active || (incarnation_of(w) & mask) != incarnation_low) return false;
  const auto timeout = static_cast<std::int64_t>(header_->id.session_timeout_ns);
  if (monotonic_ns() - m.heartbeat_ns.load(std::memory_order_relaxed) > timeout) return false;
  return !client_dead(m.client.load(std::memory_order_relaxed));
}

std::vector<std::uint32_t> GroupFile::live_members() const {
  std::vector<std::uint32_t> live;
  for (std::uint32_t i = 0; i < kGroupMembers; ++i) {
    if (state_of(header_->members[i].word.load(std::memory_order_acquire)) == MemberState::active) live.push_back(i);
  }
  return live;
}

// ---- queue chunks ---------------------------------------------------------------

ChunkView GroupFile::chunk(std::uint32_t p, std::uint64_t seq) const noexcept {
  ChunkSlot& s = slot(p, seq);
  ChunkView v;
  for (;;) {
    // The sequence read twice around the meta: a meta that belongs to it.
    // (A snapshot is only ever used as the expected value of a cas16, which
    // checks it again.)
    const std::uint64_t s1 = __atomic_load_n(&s.state[0], __ATOMIC_ACQUIRE);
    const std::uint64_t m = __atomic_load_n(&s.state[1], __ATOMIC_ACQUIRE);
    const std::uint64_t s2 = __atomic_load_n(&s.state[0], __ATOMIC_ACQUIRE);
    if (s1 != s2) continue;
    v.seq = s1;
    v.meta = m;
    break;
  }
  v.state = static_cast<ChunkState>(v.meta >> 62);
  v.deliveries = static_cast<std::uint32_t>(v.meta >> 48) & 0x3fff;
  v.owner = static_cast<std::uint32_t>(v.meta >> 32) & 0xffff;
  v.deadline_ms = static_cast<std::uint32_t>(v.meta);
  return v;
}

std::uint64_t GroupFile::acked_bits(std::uint32_t p, std::uint64_t seq) const noexcept {
  const Pair a = load_pair(slot(p, seq).acks);
  return a.second == seq ? a.first : ~std::uint64_t{0};
}

bool GroupFile::ack(std::uint32_t p, std::uint64_t seq, std::uint64_t bits, std::uint32_t count, bool& complete) noexcept {
  ChunkSlot& s = slot(p, seq);
  Pair cur = load_pair(s.acks);
  for (;;) {
    if (cur.second != seq) return false;
    const Pair next{cur.first | bits, seq};
    if (cas16(s.acks, cur, next)) {
      complete = next.first == full_mask(count);
      return true;
    }
  }
}

void GroupFile::advance_floor(std::uint32_t p) noexcept {
  GroupPartition& part = partitions_[p];
  for (;;) {
    Pair f = load_pair(part.floor);
    const Pair d = load_pair(part.dispatch);
    if (f.second >= d.second) return;
    const ChunkView c = chunk(p, f.second);
    if (c.seq != f.second || c.state != ChunkState::leased) return;
    ChunkSlot& s = slot(p, f.second);
    const std::uint32_t count = s.count.load(std::memory_order_relaxed);
    const Pair a = load_pair(s.acks);
    if (a.second != f.second || a.first != full_mask(count)) return;
    const Pair before = f;
    if (cas16(part.floor, f, Pair{before.first + count, before.second + 1})) {
      // Retire the slot for chunk seq + chunk_slots. (If we die right here,
      // the next claimer of that slot sees the floor past it and frees it.)
      Pair st{c.seq, c.meta};
      (void)cas16(s.state, st, Pair{c.seq, chunk_meta(ChunkState::free, 0, 0, 0)});
    }
  }
}

ClaimOutcome GroupFile::claim_chunk(std::uint32_t p, std::uint64_t end_offset, std::uint32_t owner,
                                    std::uint32_t lease_ms, ChunkGrant& out) noexcept {
  GroupPartition& part = partitions_[p];
  const std::uint64_t window = chunk_slots();
  // Bounded: a file whose words make no sense (it was tampered with) must
  // not spin us forever.
  for (int attempt = 0; attempt < 10000; ++attempt) {
    Pair d = load_pair(part.dispatch);
    if (d.first >= end_offset) return ClaimOutcome::empty;
    const Pair f = load_pair(part.floor);
    if (d.second - f.second >= window) return ClaimOutcome::busy;  // every slot in flight
    ChunkSlot& s = slot(p, d.second);
    const ChunkView c = chunk(p, d.second);
    Pair seen{c.seq, c.meta};
    if (c.seq == d.second - window && c.state == ChunkState::leased) {
      // Retired by the floor, whose mover died before it freed the slot.
      if (f.second > c.seq) (void)cas16(s.state, seen, Pair{c.seq, chunk_meta(ChunkState::free, 0, 0, 0)});
      continue;
    }
    if (c.seq == d.second - window && c.state == ChunkState::free) {
      const std::uint64_t claiming = claiming_meta(static_cast<std::uint32_t>(client_));
      if (!cas16(s.state, seen, Pair{d.second, claiming})) continue;
      // Chunk d.second is ours, and d is current: only its claimer (or a
      // helper, once it is leased) moves the dispatch past it.
      const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(kChunkRecords, end_offset - d.first));
      s.base.store(d.first, std::memory_order_relaxed);
      s.count.store(n, std::memory_order_relaxed);
      store16(s.acks, Pair{0, d.second});
      Pair mine{d.second, claiming};
      const std::uint64_t leased = chunk_meta(ChunkState::leased, 1, owner, monotonic_ms32() + lease_ms);
      if (!cas16(s.state, mine, Pair{d.second, leased})) return ClaimOutcome::busy;  // reset: taken for dead
      out = ChunkGrant{d.second, d.first, n, 1, false};
      // A helper may have moved the dispatch already. (cas16 overwrites its
      // expected value on failure: d is not used after this.)
      (void)cas16(part.dispatch, d, Pair{d.first + n, d.second + 1});
      return ClaimOutcome::granted;
    }
    if (c.seq == d.second && c.state == ChunkState::leased) {
      // Its claimer stopped between lease and dispatch: help it along.
      (void)cas16(part.dispatch, d, Pair{s.base.load(std::memory_order_relaxed) + s.count.load(std::memory_order_relaxed),
                                         d.second + 1});
      continue;
    }
    if (c.seq == d.second && c.state == ChunkState::claiming) {
      // Claimed a moment ago; if its claimer died in between, undo it.
      if (client_dead(static_cast<std::int32_t>(c.meta & 0xffffffff))) {
        (void)cas16(s.state, seen, Pair{d.second - window, chunk_meta(ChunkState::free, 0, 0, 0)});
        continue;
      }
      return ClaimOutcome::busy;
    }
    // A stale view: look again.
  }
  return ClaimOutcome::busy;
}

bool GroupFile::take_over(std::uint32_t p, const ChunkView& seen, std::uint32_t owner, std::uint32_t lease_ms,
                          ChunkGrant& out) noexcept {
  ChunkSlot& s = slot(p, seen.seq);
  Pair expected{seen.seq, seen.meta};
  const std::uint32_t deliveries = std::min<std::uint32_t>(seen.deliveries + 1, 0x3fff);
  const Pair next{seen.seq, chunk_meta(ChunkState::leased, deliveries, owner, monotonic_ms32() + lease_ms)};
  if (!cas16(s.state, expected, next)) return false;
  const std::uint32_t max = header_->id.max_deliveries;
  out = ChunkGrant{seen.seq, s.base.load(std::memory_order_relaxed), s.count.load(std::memory_order_relaxed), deliveries,
                   max != 0 && deliveries > max};
  partitions_[p].redelivered.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool GroupFile::release(std::uint32_t p, std::uint64_t seq, std::uint32_t owner) noexcept {
  for (;;) {
    const ChunkView c = chunk(p, seq);
    if (c.seq != seq || c.state != ChunkState::leased || c.owner != (owner & 0xffff)) return false;
    Pair expected{c.seq, c.meta};
    // Lease ended a moment ago: anyone may take it now.
    if (cas16(slot(p, seq).state, expected,
              Pair{c.seq, chunk_meta(ChunkState::leased, c.deliveries, c.owner, monotonic_ms32() - 1)})) {
      return true;
    }
  }
}

}  // namespace ringbus::detail
