#include "group_keeper.h"

#include "liveness.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <set>

#include "group_file.h"
#include "group_offsets.h"
#include "mapped_file.h"
#include "small_files.h"
#include "sync.h"
#include "topic_files.h"

namespace ringbus::io {

namespace {

// Positions change with every acknowledged chunk; without a durable commit
// waiting, they are written at most this often.
constexpr std::int64_t kWriteEveryNs = 100'000'000;
constexpr auto kPassEvery = std::chrono::milliseconds(10);

std::string groups_dir(const std::string& topic_dir) { return topic_dir + "/" + kGroupsDirName; }

std::vector<std::uint64_t> committed_offsets(detail::GroupFile& g) {
  std::vector<std::uint64_t> out(g.partition_count());
  for (std::uint32_t p = 0; p < g.partition_count(); ++p) {
    out[p] = g.is_queue() ? g.floor(p).first : g.partition(p).committed.load(std::memory_order_acquire);
  }
  return out;
}

std::vector<std::string> offsets_files(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string_view n = e->d_name;
      if (n.ends_with(kGroupOffsetsExtension) && n.size() > std::string_view(kGroupOffsetsExtension).size()) {
        names.emplace_back(n.substr(0, n.size() - std::string_view(kGroupOffsetsExtension).size()));
      }
    }
    ::closedir(d);
  }
  return names;
}

}  // namespace

GroupKeeper::GroupKeeper(std::string instance, std::mutex& topics_mu, LogFn log, OwnsFn owns, ConsumedFn on_consumed)
    : instance_(std::move(instance)),
      topics_mu_(topics_mu),
      log_(std::move(log)),
      owns_(std::move(owns)),
      on_consumed_(std::move(on_consumed)),
      thread_([this] { run(); }) {}

GroupKeeper::~GroupKeeper() { stop(); }

void GroupKeeper::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GroupKeeper::run() {
  std::unique_lock lock(mu_);
  std::int64_t next_sweep_ns = 0;
  while (!stopping_) {
    lock.unlock();
    pass(false);
    // The client files of processes that died (liveness.h), every 10 s.
    if (const std::int64_t now = detail::monotonic_ns(); now >= next_sweep_ns) {
      (void)detail::sweep_dead_clients(instance_directory(instance_));
      next_sweep_ns = now + 10'000'000'000;
    }
    lock.lock();
    cv_.wait_for(lock, kPassEvery, [&] { return stopping_; });
  }
  lock.unlock();
  pass(true);
}

void GroupKeeper::pass(bool final) {
  std::lock_guard topics(topics_mu_);
  std::set<std::string> seen;
  for (const std::string& topic : detail::list_topic_names(instance_)) {
    const std::string topic_dir = detail::topic_log_directory(instance_, topic);
    if (topic_dir.empty() || !owns_(topic)) continue;
    const std::vector<std::string> groups = detail::list_group_names(instance_, topic);
    // The minimum over the groups' written positions; empty (nothing
    // consumed) with no group, or while one has not been written.
    std::vector<std::uint64_t> below;
    bool unwritten = false;
    for (const std::string& group : groups) {
      const std::vector<std::uint64_t>* written = keep(topic, topic_dir, group, final);
      seen.insert(topic + "/" + group);
      if (written == nullptr) continue;  // deleted meanwhile
      if (written->empty() || (!below.empty() && written->size() != below.size())) {
        unwritten = true;
      } else if (below.empty()) {
        below = *written;
      } else {
        for (std::size_t p = 0; p < below.size(); ++p) below[p] = std::min(below[p], (*written)[p]);
      }
    }
    if (unwritten) below.clear();
    if (on_consumed_) on_consumed_(topic, below);
    // A group deleted from shared memory: its file goes too.
    for (const std::string& stored : offsets_files(groups_dir(topic_dir))) {
      if (std::find(groups.begin(), groups.end(), stored) == groups.end()) {
        ::unlink((groups_dir(topic_dir) + "/" + stored + kGroupOffsetsExtension).c_str());
      }
    }
  }
  std::erase_if(known_, [&](const auto& kv) { return !seen.contains(kv.first); });
}

const std::vector<std::uint64_t>* GroupKeeper::keep(const std::string& topic, const std::string& topic_dir,
                                                    const std::string& group, bool final) {
  const std::string key = topic + "/" + group;
  struct stat st{};
  if (::stat(detail::group_path(instance_, topic, group).c_str(), &st) != 0) return nullptr;
  Known& k = known_[key];
  if (!k.file || k.inode != st.st_ino) {
    auto g = detail::GroupFile::open(instance_, topic, group);
    if (!g) {
      if (!k.failing) log_("error", "consumer group '" + key + "' is not kept: " + g.error().message);
      k.failing = true;
      return &k.written;
    }
    k = Known{std::move(g.value()), st.st_ino, {}, 0, 0, false};
    k.file->header().keeper_pid.store(static_cast<std::int32_t>(::getpid()), std::memory_order_release);
  }
  detail::GroupFile& g = *k.file;
  const std::int64_t now = detail::monotonic_ns();
  (void)g.reap(now);
  detail::GroupHeader& h = g.header();
  const std::uint64_t seq = h.commit_seq.load(std::memory_order_acquire);
  const std::vector<std::uint64_t> offsets = committed_offsets(g);
  const bool asked = seq > k.written_seq;
  const bool changed = offsets != k.written;
  if (!asked && !(changed && (final || now - k.written_ns >= kWriteEveryNs))) return &k.written;
  GroupOffsets stored{group, g.settings(), offsets};
  const std::string dir = groups_dir(topic_dir);
  Status s;
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    s = Error{Errc::io_error, detail::errno_message("mkdir " + dir, errno)};
  } else {
    s = replace_file_durably(dir, group + kGroupOffsetsExtension, encode_group_offsets(stored));
  }
  if (!s) {
    if (!k.failing) log_("error", "consumer group '" + key + "': positions not written (will retry): " + s.error().message);
    k.failing = true;
    return &k.written;
  }
  if (k.failing) log_("info", "consumer group '" + key + "': positions written again");
  k.failing = false;
  k.written = offsets;
  k.written_seq = seq;
  k.written_ns = now;
  h.persisted_seq.store(seq, std::memory_order_seq_cst);
  h.persist_wake.fetch_add(1, std::memory_order_seq_cst);
  if (h.persist_waiters.load(std::memory_order_seq_cst) != 0) detail::futex_wake_all(&h.persist_wake);
  return &k.written;
}

void GroupKeeper::restore(const std::string& instance, const std::string& topic, std::uint64_t topic_id,
                          const std::vector<std::uint64_t>& ends, const std::string& topic_dir, const LogFn& log) {
  const auto partitions = static_cast<std::uint32_t>(ends.size());
  const std::string dir = groups_dir(topic_dir);
  for (const std::string& name : offsets_files(dir)) {
    const std::string path = dir + "/" + name + kGroupOffsetsExtension;
    auto bytes = read_small_file(path);
    if (!bytes) {
      log("error", "consumer group file " + path + " is not loaded: " + bytes.error().message);
      continue;
    }
    auto g = decode_group_offsets(bytes.value(), path);
    if (!g) {
      log("error", "consumer group file " + path + " is not loaded: " + g.error().message);
      continue;
    }
    if (g->name != name || g->committed.size() != partitions) {
      log("error", "consumer group file " + path + " is not loaded: it names group '" + g->name + "' with " +
                       std::to_string(g->committed.size()) + " partitions; the topic has " + std::to_string(partitions));
      continue;
    }
    std::uint32_t moved = 0;
    for (std::uint32_t p = 0; p < partitions; ++p) {
      // ~0 is a pubsub partition never started: not a position.
      if (g->committed[p] != ~std::uint64_t{0} && g->committed[p] > ends[p]) {
        g->committed[p] = ends[p];
        ++moved;
      }
    }
    if (moved != 0) {
      log("warn", "consumer group '" + topic + "/" + name + "': " + std::to_string(moved) +
                      " partition position(s) were past the log's end (records lost with a crashed broker's ring); "
                      "moved back to the end");
    }
    auto file = detail::GroupFile::open_or_create(instance, topic, topic_id, partitions, name, g->settings, g->committed);
    if (!file) {
      log("error", "consumer group '" + topic + "/" + name + "' is not restored: " + file.error().message);
      continue;
    }
    log("info", "restored consumer group '" + topic + "/" + name + "' (" + to_string(g->settings.mode) + ")");
  }
}

}  // namespace ringbus::io
