#include "topic_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <xxhash.h>

namespace ringbus {

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::invalid_argument: return "invalid argument";
    case Errc::not_found: return "not found";
    case Errc::already_exists: return "already exists";
    case Errc::version_mismatch: return "version mismatch";
    case Errc::corrupt: return "corrupt";
    case Errc::io_error: return "I/O error";
    case Errc::deleted: return "deleted";
    case Errc::busy: return "busy";
  }
  return "unknown error";
}

Status validate_name(std::string_view what, std::string_view name) {
  const std::string quoted = std::string(what) + " name '" + std::string(name) + "'";
  if (name.empty()) return Error{Errc::invalid_argument, std::string(what) + " name is empty"};
  // An instance becomes the directory name "ringbus-<name>": 8 characters
  // fewer, to stay within a file name's 255.
  const std::size_t limit = what == "instance" ? detail::kTopicNameMax - 8 : detail::kTopicNameMax;
  if (name.size() > limit) {
    return Error{Errc::invalid_argument, quoted + " is " + std::to_string(name.size()) +
                                             " characters long; the limit is " + std::to_string(limit)};
  }
  if (name.front() == '.') {
    return Error{Errc::invalid_argument, quoted + " starts with '.', which is reserved"};
  }
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Error{Errc::invalid_argument,
                   quoted + " contains '" + std::string(1, c) +
                       "'; allowed are letters, digits, '.', '_' and '-'"};
    }
  }
  return {};
}

Status validate_topic_config(const TopicConfig& c) {
  if (auto s = validate_name("topic", c.name); !s) return s;
  const std::string t = "topic '" + c.name + "': ";
  if (c.partitions < 1 || c.partitions > 1024) {
    return Error{Errc::invalid_argument,
                 t + "partitions is " + std::to_string(c.partitions) + "; it must be 1 to 1024"};
  }
  if (c.ring_bytes < detail::kMinRingCapacity || c.ring_bytes > detail::kMaxRingCapacity ||
      (c.ring_bytes & (c.ring_bytes - 1)) != 0) {
    return Error{Errc::invalid_argument, t + "ring_bytes is " + std::to_string(c.ring_bytes) +
                                             "; it must be a power of two from 64 KiB to 1 TiB"};
  }
  const std::uint64_t max_allowed = c.ring_bytes / 4 - sizeof(detail::RecordHeader);
  if (c.max_record_size < 1 || c.max_record_size > max_allowed) {
    return Error{Errc::invalid_argument, t + "max_record_size is " + std::to_string(c.max_record_size) +
                                             "; with ring_bytes " + std::to_string(c.ring_bytes) +
                                             " it must be 1 to " + std::to_string(max_allowed) +
                                             " (a quarter of the ring, less a record header)"};
  }
  if (c.abandoned_claim_timeout < std::chrono::milliseconds(1) ||
      c.abandoned_claim_timeout > std::chrono::hours(1)) {
    return Error{Errc::invalid_argument, t + "abandoned_claim_timeout must be 1 ms to 1 hour"};
  }
  const LogConfig& l = c.log;
  // Positions in the log's indexes are 32-bit (log_format.h).
  constexpr std::uint64_t kMaxSegmentFileBytes = 0xFFFF'FFFFULL;
  if (l.segment_bytes < (1U << 20) || l.segment_bytes > kMaxSegmentFileBytes) {
    return Error{Errc::invalid_argument, t + "log.segment_bytes is " + std::to_string(l.segment_bytes) +
                                             "; it must be at least 1 MiB and less than 4 GiB"};
  }
  if (l.segment_age < std::chrono::seconds(1)) {
    return Error{Errc::invalid_argument, t + "log.segment_age must be at least 1 second"};
  }
  if (l.retention_age.count() < 0) return Error{Errc::invalid_argument, t + "log.retention_age is negative"};
  if (l.retention_policy != RetentionPolicy::limits && l.retention_policy != RetentionPolicy::consumed) {
    return Error{Errc::invalid_argument, t + "log.retention_policy is not limits or consumed"};
  }
  if (l.compression > Compression::zstd) {
    return Error{Errc::invalid_argument, t + "log.compression is not none, gzip, snappy, lz4 or zstd"};
  }
  if (l.durability != Durability::page_cache && l.durability != Durability::interval &&
      l.durability != Durability::every_ack) {
    return Error{Errc::invalid_argument, t + "log.durability is not page_cache, interval or every_ack"};
  }
  if (l.durability == Durability::interval &&
      (l.flush_interval < std::chrono::milliseconds(1) || l.flush_interval > std::chrono::hours(1))) {
    return Error{Errc::invalid_argument, t + "log.flush_interval must be 1 ms to 1 hour"};
  }
  if (l.index_interval_bytes < 256 || l.index_interval_bytes > (1U << 26)) {
    return Error{Errc::invalid_argument, t + "log.index_interval_bytes must be 256 to 64 MiB"};
  }
  return {};
}

const char* to_string(Durability d) noexcept {
  switch (d) {
    case Durability::page_cache: return "page_cache";
    case Durability::interval: return "interval";
    case Durability::every_ack: return "every_ack";
  }
  return "unknown";
}

const char* to_string(Compression c) noexcept {
  switch (c) {
    case Compression::none: return "none";
    case Compression::gzip: return "gzip";
    case Compression::snappy: return "snappy";
    case Compression::lz4: return "lz4";
    case Compression::zstd: return "zstd";
  }
  return "unknown";
}

const char* to_string(RetentionPolicy p) noexcept {
  switch (p) {
    case RetentionPolicy::limits: return "limits";
    case RetentionPolicy::consumed: return "consumed";
  }
  return "unknown";
}

std::string default_instance() {
  const char* env = std::getenv("RINGBUS_INSTANCE");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string("default");
}

std::string instance_directory(std::string_view instance) {
  const char* env = std::getenv("RINGBUS_SHM_DIR");
  const std::string base = env != nullptr && *env != '\0' ? std::string(env) : std::string("/dev/shm");
  return base + "/ringbus-" + std::string(instance);
}

std::uint32_t partition_for_key(std::string_view key, std::uint32_t partitions) noexcept {
  return static_cast<std::uint32_t>(XXH64(key.data(), key.size(), 0) % partitions);
}

Result<std::vector<std::string>> list_topics(std::string_view instance) {
  if (auto s = validate_name("instance", instance); !s) return s.error();
  struct stat st{};
  if (::stat(instance_directory(instance).c_str(), &st) != 0) {
    return Error{Errc::not_found, "no ringbus instance '" + std::string(instance) + "' on this host (" +
                                      instance_directory(instance) + " does not exist)"};
  }
  return detail::list_topic_names(instance);
}

Result<TopicInfo> describe_topic(std::string_view instance, std::string_view topic) {
  auto map = detail::TopicMap::open(instance, topic, /*populate=*/false);
  if (!map) return map.error();
  return map.value()->describe();
}

namespace detail {

std::string topics_directory(std::string_view instance) { return instance_directory(instance) + "/topics"; }

std::string topic_directory(std::string_view instance, std::string_view topic) {
  return topics_directory(instance) + "/" + std::string(topic);
}

std::string broker_lock_path(std::string_view instance) { return instance_directory(instance) + "/broker.lock"; }

std::string topic_log_directory(std::string_view instance, std::string_view topic) {
  const std::string link = topic_directory(instance, topic) + "/" + kLogLinkName;
  char target[4096];
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  return n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string();
}

namespace {

std::string partition_path(const std::string& dir, std::uint32_t p) {
  return dir + "/partition-" + std::to_string(p);
}

Error corrupt(const std::string& path, const std::string& what) {
  return Error{Errc::corrupt, path + ": " + what};
}

}  // namespace

Status validate_partition_header(const std::byte* data, std::uint64_t size, const std::string& path) {
  if (size < sizeof(std::uint64_t) + 2 * sizeof(std::uint32_t)) {
    return corrupt(path, "truncated: " + std::to_string(size) + " bytes, too short for a header");
  }
  PartitionIdentity id{};  // a copy: the file may change under us
  std::memcpy(&id, data, std::min<std::uint64_t>(size, sizeof id));
  const PartitionIdentity& h = id;
  if (h.magic != kPartitionMagic) return corrupt(path, "not a ringbus partition file (bad magic)");
  if (h.layout_version != kLayoutVersion) {
    return Error{Errc::version_mismatch,
                 path + ": layout version " + std::to_string(h.layout_version) +
                     ", but this ringbus reads version " + std::to_string(kLayoutVersion) +
                     " (client and broker must be the same release)"};
  }
  if (size < sizeof(PartitionHeader)) {
    return corrupt(path, "truncated: " + std::to_string(size) + " bytes, the header alone is " +
                             std::to_string(sizeof(PartitionHeader)));
  }
  if (h.header_size != sizeof(PartitionHeader)) {
    return corrupt(path, "header_size is " + std::to_string(h.header_size) + ", expected " +
                             std::to_string(sizeof(PartitionHeader)));
  }
  const std::uint64_t c = h.ring_capacity;
  if (c < kMinRingCapacity || c > kMaxRingCapacity || (c & (c - 1)) != 0) {
    return corrupt(path, "ring_capacity " + std::to_string(c) + " is not a power of two in range");
  }
  if (h.entry_count != c / kFrameAlign) {
    return corrupt(path, "entry_count " + std::to_string(h.entry_count) + " does not match ring_capacity");
  }
  if (h.file_size != partition_file_size(c)) {
    return corrupt(path, "file_size field " + std::to_string(h.file_size) + " does not match ring_capacity");
  }
  if (size < h.file_size) {
    return corrupt(path, "truncated: " + std::to_string(size) + " of " + std::to_string(h.file_size) + " bytes");
  }
  if (size > h.file_size) {
    return corrupt(path, std::to_string(size) + " bytes, but the header says " + std::to_string(h.file_size));
  }
  if (h.max_record_size < 1 || h.max_record_size > c / 4 - sizeof(RecordHeader)) {
    return corrupt(path, "max_record_size " + std::to_string(h.max_record_size) + " out of range");
  }
  if (h.partition_count < 1 || h.partition_count > 1024 || h.partition >= h.partition_count) {
    return corrupt(path, "partition " + std::to_string(h.partition) + " of " +
                             std::to_string(h.partition_count) + " out of range");
  }
  if (h.gating_slot_count != kGatingSlots) return corrupt(path, "gating_slot_count mismatch");
  if (h.abandoned_claim_timeout_ns == 0) return corrupt(path, "abandoned_claim_timeout is zero");
  const auto* end = static_cast<const char*>(std::memchr(h.topic_name, '\0', sizeof h.topic_name));
  if (end == nullptr) return corrupt(path, "topic name is not terminated");
  if (auto s = validate_name("topic", std::string_view(h.topic_name, end - h.topic_name)); !s) {
    return corrupt(path, s.error().message);
  }
  return {};
}

Result<std::shared_ptr<TopicMap>> TopicMap::open(std::string_view instance, std::string_view topic,
                                                 bool populate) {
  if (auto s = validate_name("instance", instance); !s) return s.error();
  if (auto s = validate_name("topic", topic); !s) return s.error();
  const std::string dir = topic_directory(instance, topic);
  auto map = std::make_shared<TopicMap>();
  map->name_ = std::string(topic);
  std::uint32_t count = 1;
  for (std::uint32_t p = 0; p < count; ++p) {
    const std::string path = partition_path(dir, p);
    auto file = MappedFile::open(path, populate);
    if (!file) {
      if (file.error().code == Errc::not_found && p == 0) {
        struct stat st{};
        if (::stat(instance_directory(instance).c_str(), &st) != 0) {
          return Error{Errc::not_found, "no ringbus instance '" + std::string(instance) +
                                            "' on this host (is the broker running?)"};
        }
        return Error{Errc::not_found, "unknown topic '" + std::string(topic) + "' in instance '" +
                                          std::string(instance) + "'"};
      }
      return file.error();
    }
    if (auto s = validate_partition_header(file->data(), file->size(), path); !s) return s.error();
    const auto* h = reinterpret_cast<const PartitionHeader*>(file->data());
    if (p == 0) {
      count = h->id.partition_count;
      map->topic_id_ = h->id.topic_id;
    } else if (h->id.partition_count != count || h->id.topic_id != map->topic_id_) {
      return corrupt(path, "belongs to another topic than partition-0 (was the topic re-created?)");
    }
    if (h->id.partition != p) return corrupt(path, "says it is partition " + std::to_string(h->id.partition));
    if (const auto s = static_cast<PartitionState>(h->state.load(std::memory_order_acquire));
        s == PartitionState::deleted || s == PartitionState::released) {
      return Error{Errc::deleted, "topic '" + std::string(topic) + "' is being deleted"};
    }
    map->rings_.push_back(std::make_unique<PartitionRing>(std::move(file.value())));
    map->rings_.back()->set_instance_dir(instance_directory(instance));
  }
  return map;
}

TopicInfo TopicMap::describe() const {
  const PartitionIdentity& h = rings_.front()->header().id;
  TopicInfo info;
  info.name = name_;
  info.topic_id = topic_id_;
  info.partitions = partition_count();
  info.ring_bytes = h.ring_capacity;
  info.max_record_size = h.max_record_size;
  info.abandoned_claim_timeout = std::chrono::nanoseconds(h.abandoned_claim_timeout_ns);
  info.mirror = rings_.front()->mirror();
  for (const auto& ring : rings_) {
    const Pair t = ring->tail();
    const PartitionHeader& ph = ring->header();
    PartitionInfo pi{ring->partition(), t.second, t.first, ring->gating_readers()};
    pi.has_log = ph.log_durability.load(std::memory_order_relaxed) != static_cast<std::uint32_t>(LogDurability::none);
    pi.log_start_offset = ph.log_start_offset.load(std::memory_order_acquire);
    pi.written_offset = ph.log_written.load(std::memory_order_acquire);
    pi.durable_offset = ph.log_durable.load(std::memory_order_acquire);
    pi.log_error = ph.log_error.load(std::memory_order_acquire);
    pi.offline = ring->state() == PartitionState::offline;
    if (ring->owned()) pi.exclusive_owner = ph.lease_owner.load(std::memory_order_acquire);
    info.partition_info.push_back(pi);
  }
  return info;
}

Result<TopicInfo> create_topic_files(std::string_view instance, const TopicConfig& config,
                                     std::uint64_t topic_id, const TopicLog& log) {
  if (!log.base_offsets.empty() && log.base_offsets.size() != config.partitions) {
    return Error{Errc::invalid_argument, "topic '" + config.name + "': " + std::to_string(log.base_offsets.size()) +
                                             " base offsets for " + std::to_string(config.partitions) + " partitions"};
  }
  if (auto s = validate_topic_config(config); !s) return s.error();
  const std::string final_dir = topic_directory(instance, config.name);
  struct stat st{};
  if (::stat(final_dir.c_str(), &st) == 0) {
    return Error{Errc::already_exists, "topic '" + config.name + "' already exists"};
  }
  // Refused up front with both numbers: reserving ring after ring would fill
  // the host's memory before the last one failed.
  const std::uint64_t need = config.partitions * partition_file_size(config.ring_bytes);
  struct statvfs vfs{};
  if (::statvfs(topics_directory(instance).c_str(), &vfs) == 0) {
    const std::uint64_t free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (need > free_bytes) {
      return Error{Errc::invalid_argument,
                   "topic '" + config.name + "': " + std::to_string(config.partitions) + " partition(s) of " +
                       std::to_string(config.ring_bytes >> 10) + " KiB rings need " + std::to_string(need >> 20) +
                       " MiB of shared memory, but " + topics_directory(instance) + " has " +
                       std::to_string(free_bytes >> 20) + " MiB free (fewer partitions or a smaller ring_bytes)"};
    }
  }
  // By id only, so a name of the full 249 characters still fits in a file name.
  const std::string tmp = topics_directory(instance) + "/.new-" + std::to_string(topic_id);
  if (::mkdir(tmp.c_str(), 0770) != 0) return Error{Errc::io_error, errno_message("mkdir " + tmp, errno)};
  auto fail = [&](Error e) -> Error {
    for (std::uint32_t p = 0; p < config.partitions; ++p) ::unlink(partition_path(tmp, p).c_str());
    ::unlink((tmp + "/" + kLogLinkName).c_str());
    ::rmdir(tmp.c_str());
    return e;
  };
  // Consumers find the topic's commit log through this link (bus/README.md).
  if (!log.directory.empty() && ::symlink(log.directory.c_str(), (tmp + "/" + kLogLinkName).c_str()) != 0) {
    return fail(Error{Errc::io_error, errno_message("symlink " + tmp + "/" + kLogLinkName, errno)});
  }
  for (std::uint32_t p = 0; p < config.partitions; ++p) {
    const std::string path = partition_path(tmp, p);
    auto file = MappedFile::create(path, partition_file_size(config.ring_bytes));
    if (!file) return fail(file.error());
    // The file is fresh and zero-filled: every commit entry reads "not yet"
    // (0 is neither committed nor revoked). The claim word, lap marker and
    // frontier start at {position 0, base offset}.
    const std::uint64_t base = log.base_offsets.empty() ? 0 : log.base_offsets[p];
    auto* h = reinterpret_cast<PartitionHeader*>(file->data());
    h->id.magic = kPartitionMagic;
    h->id.layout_version = kLayoutVersion;
    h->id.header_size = sizeof(PartitionHeader);
    h->id.file_size = partition_file_size(config.ring_bytes);
    h->id.ring_capacity = config.ring_bytes;
    h->id.entry_count = config.ring_bytes / kFrameAlign;
    h->id.topic_id = topic_id;
    h->id.max_record_size = config.max_record_size;
    h->id.partition = p;
    h->id.partition_count = config.partitions;
    h->id.gating_slot_count = kGatingSlots;
    h->id.abandoned_claim_timeout_ns = static_cast<std::uint64_t>(config.abandoned_claim_timeout.count());
    std::memcpy(h->id.topic_name, config.name.data(), config.name.size());
    h->id.base_offset = base;
    h->claim[1] = h->lap_marker[1] = h->frontier[1] = base;
    h->log_durability = static_cast<std::uint32_t>(log.directory.empty() ? LogDurability::none
                                                                         : log_durability_of(config.log.durability));
    h->log_start_offset = h->log_written = h->log_durable = base;
    h->min_insync = log.min_insync;
    if (log.mirror) h->state = static_cast<std::uint32_t>(PartitionState::mirror);
  }
  // Publish atomically; RENAME_NOREPLACE refuses if another create won.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    return fail(err == EEXIST ? Error{Errc::already_exists, "topic '" + config.name + "' already exists"}
                              : Error{Errc::io_error, errno_message("rename " + tmp, err)});
  }
  auto map = TopicMap::open(instance, config.name, /*populate=*/false);
  if (!map) return map.error();
  return map.value()->describe();
}

Status delete_topic_files(std::string_view instance, std::string_view topic, PartitionState state) {
  auto map = TopicMap::open(instance, topic, /*populate=*/false);
  if (!map) return map.error();
  // Take the name away first (a rename: atomic, and new opens fail from
  // here on); only then mark every mapping, which outlives the files:
  // producers stop with topic_deleted, consumers drain and then see it.
  const std::string dir = topic_directory(instance, topic);
  const std::string gone = topics_directory(instance) + "/.deleted-" + std::to_string(map.value()->topic_id());
  if (::rename(dir.c_str(), gone.c_str()) != 0) {
    return Error{Errc::io_error, errno_message("rename " + dir, errno)};
  }
  for (std::uint32_t p = 0; p < map.value()->partition_count(); ++p) {
    PartitionHeader& h = map.value()->ring(p).header();
    h.state.store(static_cast<std::uint32_t>(state), std::memory_order_release);
    h.wake_seq.fetch_add(1, std::memory_order_release);
    futex_wake_all(&h.wake_seq);
  }
  for (std::uint32_t p = 0; p < map.value()->partition_count(); ++p) ::unlink(partition_path(gone, p).c_str());
  ::unlink((gone + "/" + kLogLinkName).c_str());
  // Its consumer groups (group-*), and a group file half-created (.group-*).
  if (DIR* d = ::opendir(gone.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string_view n = e->d_name;
      if (n.starts_with("group-") || n.starts_with(".group-")) ::unlink((gone + "/" + std::string(n)).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(gone.c_str());
  return {};
}

void take_offline(PartitionRing& ring, int err) {
  PartitionHeader& h = ring.header();
  h.log_error.store(err, std::memory_order_seq_cst);
  h.state.store(static_cast<std::uint32_t>(PartitionState::offline), std::memory_order_seq_cst);
  h.durable_seq.fetch_add(1, std::memory_order_release);
  futex_wake_all(&h.durable_seq);
  h.wake_seq.fetch_add(1, std::memory_order_release);
  futex_wake_all(&h.wake_seq);
}

std::vector<std::string> list_topic_names(std::string_view instance) {
  std::vector<std::string> names;
  DIR* d = ::opendir(topics_directory(instance).c_str());
  if (d == nullptr) return names;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace detail
}  // namespace ringbus
