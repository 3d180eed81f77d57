#include "ringbus/broker.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "flusher.h"
#include "group_keeper.h"
#include "scrubber.h"
#include "liveness.h"
#include "partition_log.h"
#include "segment_files.h"
#include "small_files.h"
#include "sync.h"
#include "topic_files.h"
#include "topic_meta.h"

namespace ringbus {

struct Broker::Impl {
  std::string instance;
  std::string data_dir;
  int lock_fd = -1;
  int data_lock_fd = -1;
  std::uint64_t next_topic_id = 0;
  io::LogFn log;
  // The logs' synchronous calls (open, recovery, roll, index writes); before
  // the flushers, which use the logs, so that it outlives them.
  std::unique_ptr<log::FileIo> log_io = log::make_pwrite_io();
  std::vector<std::unique_ptr<io::FlusherThread>> flushers;
  mutable std::mutex mu;  // serialises topic operations of this broker (and group keeper passes)
  std::unique_ptr<io::GroupKeeper> group_keeper;  // with a data directory
  std::unique_ptr<io::Scrubber> scrubber;         // with a data directory, unless turned off
  bool closed = false;
  bool started = false;  // start() completed: close() removes the rings (else they stay for the next broker)
  // The topics with a commit log, by name (under mu).
  struct LoggedTopic {
    TopicConfig config;
    std::uint64_t id = 0;
    std::shared_ptr<io::ConsumedOffsets> consumed;  // from the keeper, for the flushers' retention
    std::uint32_t min_insync = 0;                    // a cluster's topic (io::TopicMeta)
  };
  std::map<std::string, LoggedTopic, std::less<>> logged;

  // Locks the data directory and reads (or makes) its id; then loads it.
  Status lock_data_dir(const BrokerOptions& options, std::string& id);
  Status open_data_dir(const BrokerOptions& options, bool adopt);
  // The topic.meta of <data_dir>/<name>; an error names the directory and
  // why it is not loaded.
  Result<io::TopicMeta> read_topic_meta(const std::string& name) const;
  // Recovers the topic's log (<data_dir>/<name>) and serves it: its rings
  // are adopted (`adopt`: those a dead broker left, if they fit) or made
  // anew at its logs' ends.
  Status load_topic(const io::TopicMeta& meta, bool adopt);
  // The partition logs the scrubber reads: every partition not offline.
  std::vector<io::ScrubTarget> scrub_targets() const;
  // Hands a topic's partitions to the flushers; creates its rings first
  // unless they were adopted (and stamps a cluster's min_insync into them
  // either way, before they serve anyone).
  // Partitions without a log (null: it could not be opened) are offline:
  // no flusher, their rings refuse producers.
  Status attach_log(const io::TopicMeta& meta, std::vector<std::unique_ptr<io::PartitionLog>> logs, bool create_rings);
  // True if the rings the instance holds for this topic can go on serving
  // it: valid headers, the same topic id, partitions and log, and every ring
  // reaching its log's end (so no offset is given twice). `tails` gets the
  // rings' end offsets. A topic whose rings cannot be adopted is removed
  // (marked deleted: clients get topic_deleted) or set aside if unreadable.
  bool adopt_rings(const TopicConfig& config, std::uint64_t topic_id, const std::vector<std::uint64_t>& ends,
                   const std::vector<bool>& offline, const std::string& log_dir, std::vector<std::uint64_t>& tails);
  io::FlusherThread& flusher_for(std::uint64_t topic_id, std::uint32_t partition) {
    return *flushers[(topic_id + partition) % flushers.size()];
  }
  // The topic with its commit log (under mu): not_found if there is no such
  // topic, invalid_argument ending with `refused` if it has no log.
  Result<LoggedTopic*> logged_topic(std::string_view name, const std::string& refused) {
    const auto it = logged.find(name);
    if (it != logged.end()) return &it->second;
    if (!ringbus::describe_topic(instance, name)) return Error{Errc::not_found, "topic '" + std::string(name) + "' does not exist"};
    return Error{Errc::invalid_argument, "topic '" + std::string(name) + "' has no commit log" + refused};
  }
};

namespace {

void log_to_stderr(const char* level, const std::string& message) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  std::fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ringbus[%d] %s: %s\n", t.tm_year + 1900, t.tm_mon + 1,
               t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1'000'000, static_cast<int>(::getpid()), level,
               message.c_str());
}

std::string fmt_hex(unsigned char c) {
  constexpr const char* kDigits = "0123456789abcdef";
  return {kDigits[c >> 4], kDigits[c & 15]};
}

// Half-created (.new-*) and half-deleted (.deleted-*) topic logs.
void remove_log_leftovers(const std::string& data_dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(".new-") || name.starts_with(".deleted-")) std::filesystem::remove_all(e.path(), ec);
  }
}

// A topic directory in shared memory and the files in it.
void remove_directory(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* f = ::readdir(d)) {
      if (std::strcmp(f->d_name, ".") != 0 && std::strcmp(f->d_name, "..") != 0) ::unlink((dir + "/" + f->d_name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

// Half-created (.new-*) or half-deleted (.deleted-*) topics in shared memory.
void remove_hidden_leftovers(std::string_view instance) {
  const std::string topics = detail::topics_directory(instance);
  DIR* d = ::opendir(topics.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.front() != '.' || name == "." || name == "..") continue;
    remove_directory(topics + "/" + name);
  }
  ::closedir(d);
}

// Removes every topic of the instance: marks them deleted (so clients still
// mapping them stop cleanly) and unlinks them.
void remove_topics(std::string_view instance) {
  for (const std::string& name : detail::list_topic_names(instance)) {
    if (detail::delete_topic_files(instance, name)) continue;
    // Unreadable (a damaged header, another layout version): no client can
    // open it, so nobody is to be told; its files go all the same, or a topic
    // of that name could never be created on the instance again.
    std::error_code ec;
    std::filesystem::remove_all(detail::topic_directory(instance, name), ec);
  }
  remove_hidden_leftovers(instance);
}

// Which log the instance's rings belong to: "log <data directory id>", or
// "none" for a broker without a data directory. A broker adopts the rings
// of a dead one only if this is what it would write itself.
constexpr const char* kBindingName = "binding";

std::string read_binding(const std::string& instance_dir) {
  auto bytes = io::read_small_file(instance_dir + "/" + kBindingName);
  if (!bytes) return {};
  return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

Status write_binding(const std::string& instance_dir, const std::string& binding) {
  const std::string path = instance_dir + "/" + kBindingName;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0660);
  if (fd < 0) return Error{Errc::io_error, detail::errno_message("open " + tmp, errno)};
  const bool ok = ::write(fd, binding.data(), binding.size()) == static_cast<ssize_t>(binding.size());
  const int err = errno;
  ::close(fd);
  if (!ok) return Error{Errc::io_error, detail::errno_message("write " + tmp, err)};
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Error{Errc::io_error, detail::errno_message("rename " + tmp, errno)};
  return {};
}

// A data directory's id: 128 random bits in <data-dir>/.id, made once.
Result<std::string> data_dir_id(const std::string& data_dir) {
  const std::string path = data_dir + "/.id";
  auto bytes = io::read_small_file(path);
  if (bytes) {
    std::string id(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    if (id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos) return id;
    return Error{Errc::corrupt, path + " does not hold a data directory id (32 hex digits); move it away to get a new one"};
  }
  if (bytes.error().code != Errc::not_found) return bytes.error();
  unsigned char raw[16];
  if (::getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
    return Error{Errc::io_error, detail::errno_message("getrandom", errno)};
  }
  std::string id;
  for (const unsigned char c : raw) id += fmt_hex(c);
  if (auto s = io::replace_file_durably(data_dir, ".id", std::as_bytes(std::span(id.data(), id.size()))); !s) return s.error();
  return id;
}

}  // namespace

Result<Broker> Broker::start(BrokerOptions options) {
  if (auto s = validate_name("instance", options.instance); !s) return s.error();
  const std::string dir = instance_directory(options.instance);
  if (::mkdir(dir.c_str(), 0770) != 0 && errno != EEXIST) {
    return Error{Errc::io_error, detail::errno_message("mkdir " + dir, errno)};
  }
  const std::string lock_path = dir + "/broker.lock";
  int fd = -1;
  for (;;) {
    fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0660);
    if (fd < 0) return Error{Errc::io_error, detail::errno_message("open " + lock_path, errno)};
    // An OFD lock: the kernel releases it when the holder dies, so a broker
    // killed with SIGKILL never leaves the instance locked, and clients test
    // it (F_OFD_GETLK, lock_is_held) to know whether a broker is alive,
    // whatever pid namespace they are in.
    struct flock fl{};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      char buf[32] = {};
      const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      ::close(fd);
      return Error{Errc::already_exists, "instance '" + options.instance + "' already has a running broker" +
                                             (n > 0 ? " (pid " + std::string(buf, static_cast<std::size_t>(n)) + ")"
                                                    : std::string())};
    }
    // A closing broker unlinks the lock file: if we locked a file that is no
    // longer the one at lock_path, another broker may lock the new one.
    struct stat locked{};
    struct stat named{};
    if (::fstat(fd, &locked) == 0 && ::stat(lock_path.c_str(), &named) == 0 && locked.st_ino == named.st_ino &&
        locked.st_dev == named.st_dev) {
      break;
    }
    ::close(fd);
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    const int err = errno;
    ::close(fd);
    return Error{Errc::io_error, detail::errno_message("write " + lock_path, err)};
  }
  auto impl = std::make_unique<Impl>();
  impl->instance = options.instance;
  impl->lock_fd = fd;
  impl->next_topic_id = static_cast<std::uint64_t>(detail::realtime_ns());
  impl->log = options.logger ? io::LogFn(options.logger) : io::LogFn(log_to_stderr);
  Broker broker(std::move(impl));
  Impl& im = *broker.impl_;
  // The rings a dead broker left are adopted when they belong to the same
  // log (or, without a data directory, to none): clients that stayed up go
  // on, and the flushers write what the rings hold beyond the logs' ends.
  std::string binding = "none";
  if (!options.data_dir.empty()) {
    std::string id;
    if (auto s = im.lock_data_dir(options, id); !s) return s.error();
    binding = "log " + id;
  }
  const std::string found = read_binding(dir);
  const bool adopt = found == binding;
  if (adopt) {
    remove_hidden_leftovers(options.instance);  // half-made topics only; the rest is adopted
  } else {
    const std::vector<std::string> left = detail::list_topic_names(options.instance);
    if (!left.empty()) {
      im.log("warn", "the " + std::to_string(left.size()) + " topic(s) left in " + dir + " belong to " +
                         (found.empty() ? std::string("an older ringbus or an unknown broker")
                                        : found == "none" ? std::string("a broker without a data directory")
                                                          : "another data directory (" + found + ")") +
                         ": removed (their clients get topic_deleted)");
    }
    remove_topics(options.instance);
  }
  for (const std::string& d : {detail::topics_directory(options.instance), detail::clients_directory(dir)}) {
    if (::mkdir(d.c_str(), 0770) != 0 && errno != EEXIST) return Error{Errc::io_error, detail::errno_message("mkdir " + d, errno)};
  }
  (void)detail::sweep_dead_clients(dir);
  if (auto s = write_binding(dir, binding); !s) return s.error();
  if (!options.data_dir.empty()) {
    if (auto s = im.open_data_dir(options, adopt); !s) return s.error();
    if (options.scrub_bytes_per_second != 0) {
      im.scrubber = std::make_unique<io::Scrubber>(options.scrub_bytes_per_second, options.scrub_interval,
                                                   [&im] { return im.scrub_targets(); }, im.log);
    }
  } else if (adopt) {
    const std::vector<std::string> kept = detail::list_topic_names(options.instance);
    if (!kept.empty()) im.log("info", "adopted " + std::to_string(kept.size()) + " topic(s) a previous broker left in " + dir);
  }
  im.started = true;
  return broker;
}

std::vector<io::ScrubTarget> Broker::Impl::scrub_targets() const {
  std::lock_guard lock(mu);
  std::vector<io::ScrubTarget> out;
  for (const auto& [name, topic] : logged) {
    auto info = ringbus::describe_topic(instance, name);
    if (!info || info->topic_id != topic.id) continue;
    for (const PartitionInfo& p : info->partition_info) {
      if (p.offline) continue;
      out.push_back({name, p.partition, log::partition_log_directory(data_dir + "/" + name, p.partition), p.written_offset});
    }
  }
  return out;
}

Status Broker::Impl::lock_data_dir(const BrokerOptions& options, std::string& id) {
  auto io = log::make_pwrite_io();
  if (auto s = io->make_directories(options.data_dir); !s) return s;
  data_dir = std::filesystem::absolute(options.data_dir).lexically_normal().string();
  if (data_dir.size() > 1 && data_dir.back() == '/') data_dir.pop_back();
  const std::string lock_path = data_dir + "/.lock";
  data_lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (data_lock_fd < 0) return Error{Errc::io_error, detail::errno_message("open " + lock_path, errno)};
  if (::flock(data_lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return Error{Errc::already_exists, "data directory " + data_dir + " is in use by another broker"};
  }
  auto got = data_dir_id(data_dir);
  if (!got) return got.error();
  id = got.value();
  return {};
}

Status Broker::Impl::open_data_dir(const BrokerOptions& options, bool adopt) {
  if (options.flusher_threads < 1 || options.flusher_threads > 256) {
    return Error{Errc::invalid_argument, "flusher_threads is " + std::to_string(options.flusher_threads) +
                                             "; it must be 1 to 256"};
  }
  remove_log_leftovers(data_dir);
  for (std::uint32_t i = 0; i < options.flusher_threads; ++i) {
    std::unique_ptr<log::FileIo> fio;
    if (options.io_backend == IoBackend::io_uring) {
      std::string warning;
      fio = log::make_uring_io(256, &warning);
      if (!warning.empty() && i == 0) log("warn", warning);
    } else {
      fio = log::make_pwrite_io();
    }
    flushers.push_back(std::make_unique<io::FlusherThread>(std::move(fio), log));
  }
  // Recover every topic found on disk.
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && name.front() != '.') names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::set<std::string> loaded;
  for (const std::string& name : names) {
    auto meta = read_topic_meta(name);
    if (!meta) {
      // Not deleted, not guessed at: the operator decides.
      log("error", meta.error().message);
      continue;
    }
    loaded.insert(name);
    if (auto s = load_topic(meta.value(), adopt); !s) return s;
  }
  // Rings of topics whose logs are gone (deleted or moved away by hand).
  for (const std::string& name : detail::list_topic_names(instance)) {
    if (loaded.contains(name)) continue;
    log("warn", "topic '" + name + "' in shared memory has no log in " + data_dir + ": removed");
    (void)detail::delete_topic_files(instance, name);
  }
  group_keeper = std::make_unique<io::GroupKeeper>(
      instance, mu, log, [this](const std::string& topic) { return logged.contains(topic); },
      [this](const std::string& topic, const std::vector<std::uint64_t>& below) {
        // Under mu (the keeper's pass holds it).
        const auto it = logged.find(topic);
        if (it == logged.end()) return;
        auto& offsets = it->second.consumed->below;
        for (std::size_t p = 0; p < offsets.size(); ++p) {
          offsets[p].store(p < below.size() ? below[p] : 0, std::memory_order_release);
        }
      });
  return {};
}

Result<io::TopicMeta> Broker::Impl::read_topic_meta(const std::string& name) const {
  const std::string dir = data_dir + "/" + name;
  const std::string meta_path = dir + "/" + io::kTopicMetaName;
  auto meta = io::read_topic_meta(dir);
  if (!meta) return Error{meta.error().code, "topic directory " + dir + " is not loaded: " + meta.error().message};
  if (meta->config.name != name) {
    return Error{Errc::corrupt, "topic directory " + dir + " is not loaded: " + meta_path + " names topic '" +
                                    meta->config.name + "'"};
  }
  return meta;
}

Status Broker::Impl::load_topic(const io::TopicMeta& meta, bool adopt) {
  const TopicConfig& config = meta.config;
  const std::string dir = data_dir + "/" + config.name;
  std::vector<std::uint64_t> ends;
  std::vector<bool> offline(config.partitions, false);
  // Opened (and recovered) once, here, then handed to the flushers.
  std::vector<std::unique_ptr<io::PartitionLog>> logs;
  for (std::uint32_t p = 0; p < config.partitions; ++p) {
    io::RecoveryReport report;
    const std::string pdir = log::partition_log_directory(dir, p);
    auto plog = io::PartitionLog::open(*log_io, pdir, io::LogSettings::from(config.log), 0, &report);
    for (const std::string& n : report.notes) log("warn", n);
    if (!plog) {
      // One bad partition never takes the broker down: it alone goes offline.
      logs.emplace_back();
      log("error", pdir + " is offline: " + plog.error().message +
                       ". The topic's other partitions are served. To bring it back: find the damage with "
                       "'ringbus log verify " + pdir + "', move the damaged file(s) out of the directory (the log "
                       "then ends before them) and restart the broker");
      offline[p] = true;
      ends.push_back(0);
      continue;
    }
    log("info", "recovered " + pdir + ": offsets " + std::to_string(plog.value()->start_offset()) + " to " +
                    std::to_string(plog.value()->end_offset()) +
                    (report.clean ? " (clean shutdown, nothing scanned)"
                                  : " (after a crash: checked " + std::to_string(report.scanned_bytes) + " bytes of the tail)"));
    ends.push_back(plog.value()->end_offset());
    logs.push_back(std::move(plog.value()));
  }
  next_topic_id = std::max(next_topic_id, meta.topic_id);
  std::vector<std::uint64_t> tails;
  const bool adopted = adopt && adopt_rings(config, meta.topic_id, ends, offline, dir, tails);
  if (auto s = attach_log(meta, std::move(logs), !adopted); !s) return s;
  // Adopted groups are live in shared memory; their files fill what is
  // missing. An offline partition's end is not known: nothing is clamped.
  std::vector<std::uint64_t> group_ends = adopted ? tails : ends;
  for (std::uint32_t p = 0; p < config.partitions; ++p) {
    if (offline[p]) group_ends[p] = ~std::uint64_t{0};
  }
  io::GroupKeeper::restore(instance, config.name, meta.topic_id, group_ends, dir, log);
  return {};
}

bool Broker::Impl::adopt_rings(const TopicConfig& config, std::uint64_t topic_id, const std::vector<std::uint64_t>& ends,
                               const std::vector<bool>& offline, const std::string& log_dir,
                               std::vector<std::uint64_t>& tails) {
  const std::string shm_dir = detail::topic_directory(instance, config.name);
  struct stat st{};
  if (::stat(shm_dir.c_str(), &st) != 0) return false;  // no rings: made anew
  const std::string what = "topic '" + config.name + "': the rings in " + shm_dir;
  auto map = detail::TopicMap::open(instance, config.name, /*populate=*/false);
  if (!map) {
    // Unreadable (another layout version, a damaged header): kept aside for
    // inspection, never trusted.
    const std::string aside_dir = instance_directory(instance) + "/aside";
    const std::string aside = aside_dir + "/" + config.name + "-" + std::to_string(detail::realtime_ns());
    ::mkdir(aside_dir.c_str(), 0770);
    const bool moved = ::rename(shm_dir.c_str(), aside.c_str()) == 0;
    log("error", what + " cannot be adopted: " + map.error().message + "; " +
                     (moved ? "moved to " + aside + " (records not in the log are not recovered; remove it to free the memory)"
                            : detail::errno_message("rename to " + aside, errno)));
    if (!moved) remove_directory(shm_dir);
    return false;
  }
  std::string why;
  if (map.value()->topic_id() != topic_id) {
    why = "they belong to topic id " + std::to_string(map.value()->topic_id()) + ", the log to " + std::to_string(topic_id);
  } else if (map.value()->partition_count() != config.partitions) {
    why = "they have " + std::to_string(map.value()->partition_count()) + " partitions, the log " +
          std::to_string(config.partitions);
  } else if (detail::topic_log_directory(instance, config.name) != log_dir) {
    why = "they link to the log " + detail::topic_log_directory(instance, config.name) + ", not " + log_dir;
  }
  tails.clear();
  for (std::uint32_t p = 0; why.empty() && p < config.partitions; ++p) {
    const detail::PartitionRing& ring = map.value()->ring(p);
    tails.push_back(ring.tail().second);
    if (!offline[p] && tails.back() < ends[p]) {
      why = "partition " + std::to_string(p) + "'s ring ends at offset " + std::to_string(tails.back()) +
            ", below its log's end " + std::to_string(ends[p]) + " (offsets would be given twice)";
    }
  }
  if (!why.empty()) {
    log("warn", what + " are not adopted: " + why + "; removed (their clients get topic_deleted)");
    (void)detail::delete_topic_files(instance, config.name);
    return false;
  }
  log("info", what + " are adopted from a previous broker (offsets go on from " +
                  std::to_string(*std::max_element(tails.begin(), tails.end())) + " at most)");
  return true;
}

// Creates the topic's rings starting at the logs' end offsets (unless they
// were adopted), with their link to the log, and hands each partition to a
// flusher.
Status Broker::Impl::attach_log(const io::TopicMeta& meta, std::vector<std::unique_ptr<io::PartitionLog>> logs,
                                bool create_rings) {
  const TopicConfig& config = meta.config;
  const std::uint64_t topic_id = meta.topic_id;
  const std::string dir = data_dir + "/" + config.name;
  if (create_rings) {
    std::vector<std::uint64_t> ends;
    for (const auto& l : logs) ends.push_back(l ? l->end_offset() : 0);
    auto info = detail::create_topic_files(instance, config, topic_id, detail::TopicLog{dir, ends, meta.min_insync, false});
    if (!info) return info.error();
  }
  auto map = detail::TopicMap::open(instance, config.name, /*populate=*/false);
  if (!map) return map.error();
  auto consumed = std::make_shared<io::ConsumedOffsets>(config.partitions);
  for (std::uint32_t p = 0; p < config.partitions; ++p) {
    if (!logs[p]) {
      detail::take_offline(map.value()->ring(p), EIO);
      continue;
    }
    // The flusher's gate holds from now on, before add() (which does not
    // wait) returns: the flusher thread takes this same gate over, so nothing
    // published meanwhile is overwritten before it is written.
    detail::PartitionRing& ring = map.value()->ring(p);
    ring.header().min_insync.store(meta.min_insync, std::memory_order_release);  // adopted rings: a ring from before the field
    detail::ReaderCursor gate;
    std::string error;
    if (!ring.open_broker_gate(gate, error)) return Error{Errc::busy, ring.path() + ": " + error};
    // And the log's marks: a consumer that opens now reads the log from its start.
    ring.header().log_start_offset.store(logs[p]->start_offset(), std::memory_order_release);
    ring.header().log_written.store(logs[p]->end_offset(), std::memory_order_release);
    ring.header().log_durable.store(logs[p]->end_offset(), std::memory_order_release);
    flusher_for(topic_id, p).add(map.value(), p, std::move(logs[p]), config.log, consumed);
  }
  logged[config.name] = LoggedTopic{config, topic_id, std::move(consumed), meta.min_insync};
  return {};
}

Broker::Broker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Broker::Broker(Broker&&) noexcept = default;
Broker& Broker::operator=(Broker&& o) noexcept {
  if (this != &o) {
    close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
Broker::~Broker() { close(); }

const std::string& Broker::instance() const noexcept { return impl_->instance; }
const std::string& Broker::data_dir() const noexcept { return impl_->data_dir; }

Result<TopicInfo> Broker::create_topic(const TopicConfig& config, std::uint64_t topic_id, std::uint32_t min_insync) {
  std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  if (im.closed) return Error{Errc::invalid_argument, "broker is closed"};
  if (topic_id != 0) {
    for (const auto& name : detail::list_topic_names(im.instance)) {
      auto other = ringbus::describe_topic(im.instance, name);
      if (other && other->topic_id == topic_id)
        return Error{Errc::already_exists, "topic id " + std::to_string(topic_id) + " is topic '" + name + "''s"};
    }
  }
  const std::uint64_t id = topic_id != 0 ? topic_id : ++im.next_topic_id;
  im.next_topic_id = std::max(im.next_topic_id, id);
  if (im.data_dir.empty()) {
    if (min_insync != 0) return Error{Errc::invalid_argument, "topic '" + config.name + "': a replicated topic needs a data directory"};
    return detail::create_topic_files(im.instance, config, id);
  }
  if (auto s = validate_topic_config(config); !s) return s.error();
  if (ringbus::describe_topic(im.instance, config.name)) {
    return Error{Errc::already_exists, "topic '" + config.name + "' already exists"};
  }
  // The disk it will need at once: each partition's first reservation step
  // (segments grow in steps, io/README.md), refused up front with both numbers.
  const std::uint64_t need = config.partitions * std::min<std::uint64_t>(config.log.segment_bytes, io::kPreallocateStep);
  struct statvfs vfs{};
  if (::statvfs(im.data_dir.c_str(), &vfs) == 0 && need > static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize) {
    return Error{Errc::invalid_argument, "topic '" + config.name + "': " + std::to_string(config.partitions) +
                                             " partition(s) need " + std::to_string(need >> 20) + " MiB of disk to start (a first " +
                                             std::to_string(std::min<std::uint64_t>(config.log.segment_bytes, io::kPreallocateStep) >> 20) +
                                             " MiB of segment each), but " + im.data_dir + " has " +
                                             std::to_string((static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize) >> 20) +
                                             " MiB free"};
  }
  const std::string dir = im.data_dir + "/" + config.name;
  if (std::filesystem::exists(dir)) {
    return Error{Errc::already_exists, "topic '" + config.name + "' has a log directory " + dir +
                                           " that this broker did not load (see its log); move it away first"};
  }
  // Built under a hidden name and renamed into place: a crash leaves either
  // nothing or a whole topic.
  const std::string tmp = im.data_dir + "/.new-" + std::to_string(id);
  auto fail = [&](Error e) -> Error {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
    return e;
  };
  auto io = log::make_pwrite_io();
  if (auto s = io->make_directories(tmp); !s) return fail(s.error());
  const io::TopicMeta meta{config, id, min_insync};
  if (auto s = io::replace_file_durably(tmp, io::kTopicMetaName, io::encode_topic_meta(meta)); !s) return fail(s.error());
  for (std::uint32_t p = 0; p < config.partitions; ++p) {
    auto plog = io::PartitionLog::open(*io, log::partition_log_directory(tmp, p), io::LogSettings::from(config.log), 0, nullptr);
    if (!plog) return fail(plog.error());
    if (auto s = plog.value()->close_clean(); !s) return fail(s.error());
  }
  if (auto s = io->sync_directory(tmp); !s) return fail(s.error());
  if (::rename(tmp.c_str(), dir.c_str()) != 0) return fail(Error{Errc::io_error, detail::errno_message("rename " + tmp, errno)});
  if (auto s = io->sync_directory(im.data_dir); !s) return s.error();
  std::vector<std::unique_ptr<io::PartitionLog>> logs;
  for (std::uint32_t p = 0; p < config.partitions; ++p) {
    auto plog = io::PartitionLog::open(*im.log_io, log::partition_log_directory(dir, p), io::LogSettings::from(config.log), 0,
                                       nullptr);
    if (!plog) return plog.error();
    logs.push_back(std::move(plog.value()));
  }
  if (auto s = im.attach_log(meta, std::move(logs), true); !s) return s.error();
  return ringbus::describe_topic(im.instance, config.name);
}

Status Broker::delete_topic(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  if (im.closed) return Error{Errc::invalid_argument, "broker is closed"};
  auto info = ringbus::describe_topic(im.instance, name);
  if (auto s = detail::delete_topic_files(im.instance, name); !s) return s;
  if (!im.data_dir.empty() && info) {
    for (auto& f : im.flushers) f->remove(info->topic_id);
    im.logged.erase(std::string(name));
    const std::string dir = im.data_dir + "/" + std::string(name);
    const std::string gone = im.data_dir + "/.deleted-" + std::to_string(info->topic_id);
    if (::rename(dir.c_str(), gone.c_str()) != 0) return Error{Errc::io_error, detail::errno_message("rename " + dir, errno)};
    std::error_code ec;
    std::filesystem::remove_all(gone, ec);
  }
  return {};
}

Result<TopicInfo> Broker::adopt_topic(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  if (im.closed) return Error{Errc::invalid_argument, "broker is closed"};
  if (im.data_dir.empty()) return Error{Errc::invalid_argument, "topic '" + std::string(name) + "': the broker has no data directory"};
  if (auto s = validate_name("topic", name); !s) return s.error();
  if (ringbus::describe_topic(im.instance, name)) return Error{Errc::already_exists, "topic '" + std::string(name) + "' already exists"};
  auto meta = im.read_topic_meta(std::string(name));
  if (!meta) return meta.error();
  for (const auto& [other, t] : im.logged) {
    if (t.id == meta->topic_id)
      return Error{Errc::already_exists, "topic id " + std::to_string(t.id) + " is topic '" + other + "''s"};
  }
  if (auto s = im.load_topic(meta.value(), /*adopt=*/false); !s) return s.error();
  return ringbus::describe_topic(im.instance, name);
}

Result<TopicInfo> Broker::serve_mirror(const TopicConfig& config, std::uint64_t topic_id, std::uint32_t min_insync,
                                       const std::string& log_dir) {
  std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  if (im.closed) return Error{Errc::invalid_argument, "broker is closed"};
  TopicConfig rings = config;
  rings.ring_bytes = detail::kMinRingCapacity;
  rings.max_record_size = std::min<std::uint32_t>(
      config.max_record_size, static_cast<std::uint32_t>(rings.ring_bytes / 4 - sizeof(detail::RecordHeader)));
  return detail::create_topic_files(im.instance, rings, topic_id, detail::TopicLog{log_dir, {}, min_insync, true});
}

Status Broker::stop_mirror(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  if (im.closed) return Error{Errc::invalid_argument, "broker is closed"};
  auto map = detail::TopicMap::open(im.instance, name, /*populate=*/false);
  if (!map) return map.error();
  if (!map.value()->ring(0).mirror()) return Error{Errc::invalid_argument, "topic '" + std::string(name) + "' is not a mirror's copy"};
  return detail::delete_topic_files(im.instance, name);
}

Status Broker::release_topic(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  if (im.closed) return Error{Errc::invalid_argument, "broker is closed"};
  auto t = im.logged_topic(name, ": nothing to release");
  if (!t) return t.error();
  const std::uint64_t id = t.value()->id;
  // Refuse producers first: the flushers then write everything committed.
  if (auto s = detail::delete_topic_files(im.instance, name, detail::PartitionState::released); !s) return s;
  Status first;
  for (auto& f : im.flushers) {
    if (auto s = f->release(id); !s && first) first = s;
  }
  im.logged.erase(std::string(name));
  return first;
}

Result<std::vector<std::string>> Broker::list_topics() const {
  std::lock_guard lock(impl_->mu);
  return detail::list_topic_names(impl_->instance);
}

Result<TopicInfo> Broker::describe_topic(std::string_view name) const {
  std::lock_guard lock(impl_->mu);
  auto info = ringbus::describe_topic(impl_->instance, name);
  if (!info) return info;
  if (const auto it = impl_->logged.find(name); it != impl_->logged.end() && it->second.id == info->topic_id) {
    info->log = it->second.config.log;
    if (impl_->scrubber) {
      for (PartitionInfo& p : info->partition_info) {
        p.damaged_segments =
            impl_->scrubber->damaged_segments(log::partition_log_directory(impl_->data_dir + "/" + it->first, p.partition));
      }
    }
  }
  return info;
}

ScrubStats Broker::scrub_stats() const { return impl_->scrubber ? impl_->scrubber->stats() : ScrubStats{}; }

Result<std::vector<std::string>> Broker::list_groups(std::string_view topic) const {
  return ringbus::list_groups(impl_->instance, topic);
}

Result<GroupInfo> Broker::describe_group(std::string_view topic, std::string_view group) const {
  return ringbus::describe_group(impl_->instance, topic, group);
}

Result<GroupInfo> Broker::reset_group(std::string_view topic, std::string_view group, const GroupPosition& to,
                                      const GroupSettings& settings) {
  if (auto s = ringbus::reset_group(impl_->instance, topic, group, to, settings); !s) return s.error();
  return ringbus::describe_group(impl_->instance, topic, group);
}

Status Broker::delete_group(std::string_view topic, std::string_view group) {
  return ringbus::delete_group(impl_->instance, topic, group);
}

Status Broker::set_leader_epoch(std::string_view topic, std::uint32_t partition, std::int32_t epoch) {
  std::lock_guard lock(impl_->mu);
  Impl& im = *impl_;
  if (im.closed) return Error{Errc::invalid_argument, "broker is closed"};
  auto t = im.logged_topic(topic, ": no batches to stamp");
  if (!t) return t.error();
  if (partition >= t.value()->config.partitions) {
    return Error{Errc::invalid_argument, "topic '" + std::string(topic) + "' has no partition " + std::to_string(partition)};
  }
  return im.flusher_for(t.value()->id, partition).lead(t.value()->id, partition, epoch);
}

Result<TopicInfo> Broker::alter_topic(std::string_view name, const LogConfig& log) {
  std::unique_lock lock(impl_->mu);
  Impl& im = *impl_;
  if (im.closed) return Error{Errc::invalid_argument, "broker is closed"};
  auto t = im.logged_topic(name, " (the broker runs without a data directory): there are no log settings to alter");
  if (!t) return t.error();
  Impl::LoggedTopic& topic = *t.value();
  TopicConfig config = topic.config;
  config.log = log;
  if (auto s = validate_topic_config(config); !s) return s.error();
  // The file first: a crash after it restarts the topic with the new
  // settings, which is what the caller asked for.
  const std::string dir = im.data_dir + "/" + config.name;
  if (auto s = io::replace_file_durably(dir, io::kTopicMetaName, io::encode_topic_meta({config, topic.id, topic.min_insync})); !s) {
    return s.error();
  }
  for (auto& f : im.flushers) f->reconfigure(topic.id, config.log);
  topic.config = config;
  lock.unlock();
  return describe_topic(name);
}

void Broker::close() {
  if (!impl_) return;
  std::unique_lock lock(impl_->mu);
  if (impl_->closed) return;
  impl_->closed = true;
  // Stop the scrubber (it takes mu to list the partitions) and write the
  // groups' last positions (the keeper takes mu for its passes).
  lock.unlock();
  impl_->scrubber.reset();
  if (impl_->group_keeper) impl_->group_keeper->stop();
  lock.lock();
  impl_->group_keeper.reset();
  // Flush first: the flushers read the rings this removes.
  for (auto& f : impl_->flushers) f->stop();
  impl_->flushers.clear();
  if (impl_->data_lock_fd >= 0) ::close(impl_->data_lock_fd);
  const std::string dir = instance_directory(impl_->instance);
  if (impl_->started) {
    remove_topics(impl_->instance);
    ::unlink((dir + "/" + kBindingName).c_str());
    // Clients still running keep their locked files (and the directory).
    detail::release_client_token(dir);
    (void)detail::sweep_dead_clients(dir);
    ::rmdir(detail::clients_directory(dir).c_str());
  }
  ::rmdir(detail::topics_directory(impl_->instance).c_str());
  ::unlink((dir + "/broker.lock").c_str());
  ::rmdir(dir.c_str());
  ::close(impl_->lock_fd);
}

}  // namespace ringbus
