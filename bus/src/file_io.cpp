#include "file_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

namespace ringbus::log {

namespace {

std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

// Reads until dst is full or the file ends; the bytes read, or -errno.
ssize_t pread_full(int file, std::uint64_t offset, std::span<std::byte> dst) {
  std::size_t got = 0;
  while (got < dst.size()) {
    const ssize_t n = ::pread(file, dst.data() + got, dst.size() - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;  // end of file
    got += static_cast<std::size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

// What the pwrite and io_uring backends share: real files, handles are fds.
class FdFileIo : public FileIo {
 public:
  Result<int> open(const std::string& path, bool create) override {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0640);
    if (fd < 0) {
      const int err = errno;
      return Error{err == ENOENT ? Errc::not_found : Errc::io_error, errno_text("open " + path, err)};
    }
    paths_[fd] = path;
    return fd;
  }
  Result<int> open_read(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      return Error{err == ENOENT ? Errc::not_found : Errc::io_error, errno_text("open " + path, err)};
    }
    paths_[fd] = path;
    return fd;
  }
  void advise_sequential(int file) noexcept override { (void)::posix_fadvise(file, 0, 0, POSIX_FADV_SEQUENTIAL); }
  Status write_now(int file, std::uint64_t offset, std::span<const std::byte> data) override {
    for (std::size_t done = 0; done < data.size();) {
      const ssize_t n = ::pwrite(file, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return Error{Errc::io_error, errno_text("write " + path(file), errno)};
      }
      done += static_cast<std::size_t>(n);
    }
    return {};
  }
  Status sync_now(int file) override {
    if (::fdatasync(file) != 0) return Error{Errc::io_error, errno_text("fdatasync " + path(file), errno)};
    return {};
  }
  Result<std::vector<std::string>> list(const std::string& dir) override {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      const int err = errno;
      return Error{err == ENOENT ? Errc::not_found : Errc::io_error, errno_text("opendir " + dir, err)};
    }
    while (const dirent* e = ::readdir(d)) {
      const std::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
    return names;
  }
  Status remove(const std::string& p) override {
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return Error{Errc::io_error, errno_text("unlink " + p, errno)};
    return {};
  }
  Status make_directories(const std::string& dir) override {
    for (std::size_t at = 1; at <= dir.size(); ++at) {
      if (at != dir.size() && dir[at] != '/') continue;
      const std::string prefix = dir.substr(0, at);
      if (::mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST) {
        return Error{Errc::io_error, errno_text("mkdir " + prefix, errno)};
      }
    }
    return {};
  }
  Status sync_directory(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error{Errc::io_error, errno_text("open " + dir, errno)};
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return Error{Errc::io_error, errno_text("fsync " + dir, err)};
    return {};
  }
  void close(int file) noexcept override {
    paths_.erase(file);
    ::close(file);
  }
  Result<std::uint64_t> size(int file) override {
    struct stat st{};
    if (::fstat(file, &st) != 0) return Error{Errc::io_error, errno_text("stat " + path(file), errno)};
    return static_cast<std::uint64_t>(st.st_size);
  }
  Status allocate(int file, std::uint64_t from, std::uint64_t to) override {
    if (to <= from) return {};
    // KEEP_SIZE: reserve the blocks, leave the visible size (and so what
    // recovery finds past the last write: nothing) unchanged.
    if (::fallocate(file, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from), static_cast<off_t>(to - from)) != 0 &&
        errno != EOPNOTSUPP) {
      return Error{Errc::io_error, errno_text("preallocate bytes " + std::to_string(from) + ".." + std::to_string(to) +
                                                  " of " + path(file),
                                              errno)};
    }
    return {};
  }
  Status truncate(int file, std::uint64_t bytes) override {
    if (::ftruncate(file, static_cast<off_t>(bytes)) != 0) {
      return Error{Errc::io_error, errno_text("truncate " + path(file), errno)};
    }
    return {};
  }
  Result<std::size_t> read(int file, std::uint64_t offset, std::span<std::byte> dst) override {
    const ssize_t got = pread_full(file, offset, dst);
    if (got < 0) return Error{Errc::io_error, errno_text("read " + path(file), static_cast<int>(-got))};
    return static_cast<std::size_t>(got);
  }

 protected:
  std::string path(int file) const {
    const auto it = paths_.find(file);
    return it == paths_.end() ? "fd " + std::to_string(file) : it->second;
  }

 private:
  std::map<int, std::string> paths_;
};

class PwriteIo : public FdFileIo {
 public:
  const char* name() const noexcept override { return "pwrite"; }
  Status write(int file, std::uint64_t offset, std::span<const std::byte> data, std::uint64_t tag) override {
    std::size_t done = 0;
    int result = 0;
    while (done < data.size()) {
      const ssize_t n = ::pwrite(file, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        result = -errno;
        break;
      }
      done += static_cast<std::size_t>(n);  // a short write: write the rest
    }
    done_.push_back({tag, result < 0 ? result : static_cast<int>(done)});
    return {};
  }
  Status sync(int file, std::uint64_t tag) override {
    done_.push_back({tag, ::fdatasync(file) == 0 ? 0 : -errno});
    return {};
  }
  Status read_async(int file, std::uint64_t offset, std::span<std::byte> dst, std::uint64_t tag) override {
    done_.push_back({tag, static_cast<int>(pread_full(file, offset, dst))});
    return {};
  }
  std::size_t pending() const noexcept override { return done_.size(); }
  std::size_t reap(std::span<IoCompletion> out, std::size_t /*min: everything is done already*/) override {
    const std::size_t n = std::min(out.size(), done_.size());
    std::copy_n(done_.begin(), n, out.begin());
    done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }

 private:
  std::deque<IoCompletion> done_;
};

// pread and pwrite, with reads ahead on a thread of its own: for a reader
// that runs on a user's thread (a consumer's disk path). io_uring would run
// them on a kernel worker just as well, but its workers signal the
// submitting thread (task work), and that thread's own blocking system calls
// then return early: a consumer's handler writing to a pipe saw short writes.
class ThreadReadIo final : public PwriteIo {
 public:
  ~ThreadReadIo() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_.notify_all();
    if (worker_.joinable()) worker_.join();
  }
  const char* name() const noexcept override { return "pread (reads ahead on a thread)"; }
  Status read_async(int file, std::uint64_t offset, std::span<std::byte> dst, std::uint64_t tag) override {
    if (!worker_.joinable()) {
      try {
        worker_ = std::thread([this] { run(); });
      } catch (const std::system_error&) {
        return PwriteIo::read_async(file, offset, dst, tag);  // no thread to be had: read now
      }
    }
    {
      std::lock_guard lock(mu_);
      queue_.push_back({file, offset, dst, tag});
      ++in_flight_;
    }
    work_.notify_one();
    return {};
  }
  std::size_t pending() const noexcept override {
    std::lock_guard lock(mu_);
    return PwriteIo::pending() + in_flight_ + done_.size();
  }
  std::size_t reap(std::span<IoCompletion> out, std::size_t min) override {
    std::size_t n = PwriteIo::reap(out, 0);
    std::unique_lock lock(mu_);
    finished_.wait(lock, [&] { return n + done_.size() >= min || in_flight_ == 0; });
    for (; n < out.size() && !done_.empty(); ++n) {
      out[n] = done_.front();
      done_.pop_front();
    }
    return n;
  }

 private:
  struct Read {
    int file;
    std::uint64_t offset;
    std::span<std::byte> dst;
    std::uint64_t tag;
  };

  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      const Read r = queue_.front();
      queue_.pop_front();
      lock.unlock();
      // Not FdFileIo::read: it looks up the file's name, which the owner's
      // thread may be changing.
      const auto result = static_cast<int>(pread_full(r.file, r.offset, r.dst));
      lock.lock();
      done_.push_back({r.tag, result});
      --in_flight_;
      finished_.notify_all();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable work_;      // queue_ has a read, or stop_
  std::condition_variable finished_;  // a read moved to done_
  std::deque<Read> queue_;
  std::deque<IoCompletion> done_;
  std::size_t in_flight_ = 0;  // queued or being read
  bool stop_ = false;
  std::thread worker_;
};

class UringIo final : public FdFileIo {
 public:
  explicit UringIo(io_uring ring) : ring_(ring) {}
  ~UringIo() override {
    // Requests still in flight point at the caller's buffers: wait for them.
    while (in_flight_ > 0) wait_one();
    io_uring_queue_exit(&ring_);
  }
  const char* name() const noexcept override { return "io_uring"; }

  Status write(int file, std::uint64_t offset, std::span<const std::byte> data, std::uint64_t tag) override {
    return start(Req{file, offset, data.data(), data.size(), 0, tag, false});
  }
  Status sync(int file, std::uint64_t tag) override { return start(Req{file, 0, nullptr, 0, 0, tag, true}); }
  // At once: no reader of ours runs it on io_uring (make_thread_read_io says why).
  Status read_async(int file, std::uint64_t offset, std::span<std::byte> dst, std::uint64_t tag) override {
    done_.push_back({tag, static_cast<int>(pread_full(file, offset, dst))});
    return {};
  }
  std::size_t pending() const noexcept override { return in_flight_ + done_.size(); }

  std::size_t reap(std::span<IoCompletion> out, std::size_t min) override {
    if (io_uring_sq_ready(&ring_) > 0) io_uring_submit(&ring_);
    drain();
    while (done_.size() < min && in_flight_ > 0) wait_one();
    const std::size_t n = std::min(out.size(), done_.size());
    std::copy_n(done_.begin(), n, out.begin());
    done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }

 private:
  struct Req {
    int fd;
    std::uint64_t offset;
    const std::byte* data;
    std::size_t size;
    std::size_t done;  // bytes already written (after short writes)
    std::uint64_t tag;
    bool is_sync;
  };

  Status start(const Req& r) {
    std::uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
      reqs_[slot] = r;
    } else {
      slot = static_cast<std::uint32_t>(reqs_.size());
      reqs_.push_back(r);
    }
    ++in_flight_;
    queue(slot);
    return {};
  }

  // Puts the request (or its unwritten rest) on the submission queue. If the
  // queue is full, submits it and makes room by reaping completions.
  void queue(std::uint32_t slot) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
      io_uring_submit(&ring_);
      drain();
      sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) wait_one();
      sqe = sqe != nullptr ? sqe : io_uring_get_sqe(&ring_);
    }
    const Req& r = reqs_[slot];
    if (r.is_sync) {
      io_uring_prep_fsync(sqe, r.fd, IORING_FSYNC_DATASYNC);
    } else {
      io_uring_prep_write(sqe, r.fd, r.data + r.done, static_cast<unsigned>(r.size - r.done), r.offset + r.done);
    }
    io_uring_sqe_set_data64(sqe, slot);
  }

  void complete(std::uint32_t slot, int result) {
    done_.push_back({reqs_[slot].tag, result});
    free_.push_back(slot);
    --in_flight_;
  }

  void on_cqe(std::uint32_t slot, int res) {
    Req& r = reqs_[slot];
    if (res == -EAGAIN || res == -EINTR) return queue(slot);  // try again
    if (r.is_sync || res < 0) return complete(slot, res < 0 ? res : 0);
    if (res == 0) return complete(slot, -EIO);  // no progress: do not spin
    r.done += static_cast<std::size_t>(res);
    if (r.done < r.size) return queue(slot);  // a short write: queue the rest
    complete(slot, static_cast<int>(r.size));
  }

  void drain() {
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
      const auto slot = static_cast<std::uint32_t>(io_uring_cqe_get_data64(cqe));
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      on_cqe(slot, res);
    }
  }

  void wait_one() {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_sq_ready(&ring_) > 0) io_uring_submit(&ring_);
    if (io_uring_wait_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
      const auto slot = static_cast<std::uint32_t>(io_uring_cqe_get_data64(cqe));
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      on_cqe(slot, res);
    }
    drain();
  }

  io_uring ring_;
  std::vector<Req> reqs_;
  std::vector<std::uint32_t> free_;
  std::deque<IoCompletion> done_;
  std::size_t in_flight_ = 0;
};

}  // namespace

std::unique_ptr<FileIo> make_pwrite_io() { return std::make_unique<PwriteIo>(); }

std::unique_ptr<FileIo> make_thread_read_io() { return std::make_unique<ThreadReadIo>(); }

std::unique_ptr<FileIo> make_uring_io(unsigned depth, std::string* warning) {
  io_uring ring{};
  const int rc = io_uring_queue_init(std::max(depth, 1u), &ring, 0);
  if (rc < 0) {
    if (warning != nullptr) {
      *warning = std::string("io_uring is not available (") + std::strerror(-rc) +
                 "); writing with pwrite instead, which is correct but slower";
    }
    return make_pwrite_io();
  }
  return std::make_unique<UringIo>(ring);
}

// ---------------------------------------------------------------------------
// MemoryIo

MemoryIo::MemFile* MemoryIo::file(int handle) {
  const auto it = handles_.find(handle);
  return it == handles_.end() ? nullptr : &files_[it->second];
}

Result<int> MemoryIo::open(const std::string& path, bool create) {
  if (!create && files_.find(path) == files_.end()) {
    return Error{Errc::not_found, "open " + path + ": No such file or directory"};
  }
  files_[path];
  handles_[next_handle_] = path;
  return next_handle_++;
}

void MemoryIo::close(int handle) noexcept { handles_.erase(handle); }

Result<std::uint64_t> MemoryIo::size(int handle) {
  MemFile* f = file(handle);
  if (f == nullptr) return Error{Errc::invalid_argument, "no open file " + std::to_string(handle)};
  return static_cast<std::uint64_t>(f->data.size());
}

Status MemoryIo::allocate(int handle, std::uint64_t, std::uint64_t) {
  return file(handle) == nullptr ? Status(Error{Errc::invalid_argument, "no open file"}) : Status();
}

Status MemoryIo::truncate(int handle, std::uint64_t bytes) {
  MemFile* f = file(handle);
  if (f == nullptr) return Error{Errc::invalid_argument, "no open file"};
  f->data.resize(bytes);
  f->durable.resize(std::min<std::uint64_t>(f->durable.size(), bytes));  // truncation is metadata: treat as synced
  return {};
}

Result<std::size_t> MemoryIo::read(int handle, std::uint64_t offset, std::span<std::byte> dst) {
  MemFile* f = file(handle);
  if (f == nullptr) return Error{Errc::invalid_argument, "no open file"};
  if (offset >= f->data.size()) return std::size_t{0};
  const std::size_t n = std::min<std::size_t>(dst.size(), f->data.size() - offset);
  std::memcpy(dst.data(), f->data.data() + offset, n);
  return n;
}

int MemoryIo::apply_write(MemFile& f, std::uint64_t offset, std::span<const std::byte> data) {
  ++writes_;
  std::size_t lands = data.size();
  int result = static_cast<int>(data.size());
  for (const Fault& fault : faults_) {
    if (fault.write_number == writes_) {
      lands = std::min(fault.lands, data.size());
      result = fault.error;
    }
  }
  if (f.data.size() < offset + lands) f.data.resize(offset + lands);
  std::memcpy(f.data.data() + offset, data.data(), lands);
  f.unsynced.push_back({offset, std::vector<std::byte>(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(lands))});
  return result;
}

Status MemoryIo::write(int handle, std::uint64_t offset, std::span<const std::byte> data, std::uint64_t tag) {
  MemFile* f = file(handle);
  if (f == nullptr) return Error{Errc::invalid_argument, "no open file"};
  done_.push_back({tag, apply_write(*f, offset, data)});
  return {};
}

Status MemoryIo::read_async(int handle, std::uint64_t offset, std::span<std::byte> dst, std::uint64_t tag) {
  auto got = read(handle, offset, dst);
  if (!got) return got.error();
  done_.push_back({tag, static_cast<int>(got.value())});
  return {};
}

Status MemoryIo::write_now(int handle, std::uint64_t offset, std::span<const std::byte> data) {
  MemFile* f = file(handle);
  if (f == nullptr) return Error{Errc::invalid_argument, "no open file"};
  const int r = apply_write(*f, offset, data);
  if (r < 0) return Error{Errc::io_error, "write " + handles_[handle] + ": " + std::strerror(-r)};
  return {};
}

Status MemoryIo::sync_now(int handle) {
  MemFile* f = file(handle);
  if (f == nullptr) return Error{Errc::invalid_argument, "no open file"};
  ++syncs_;
  f->durable = f->data;
  f->unsynced.clear();
  return {};
}

Result<std::vector<std::string>> MemoryIo::list(const std::string& dir) {
  std::vector<std::string> names;
  const std::string prefix = dir + "/";
  for (auto it = files_.lower_bound(prefix); it != files_.end() && it->first.starts_with(prefix); ++it) {
    const std::string rest = it->first.substr(prefix.size());
    if (rest.find('/') == std::string::npos) names.push_back(rest);
  }
  return names;
}

namespace {
// The directory a MemoryIo path is in ("" for a bare name).
std::string parent_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}
}  // namespace

Status MemoryIo::remove(const std::string& path) {
  const auto it = files_.find(path);
  if (it == files_.end()) return {};
  // Until the directory is synced, a crash brings the name back.
  if (it->second.name_durable) removed_.try_emplace(path, std::move(it->second));
  files_.erase(it);
  return {};
}

Status MemoryIo::sync_directory(const std::string& dir) {
  for (auto& [path, f] : files_) {
    if (parent_of(path) == dir) f.name_durable = true;
  }
  std::erase_if(removed_, [&](const auto& r) { return parent_of(r.first) == dir; });
  return {};
}

Status MemoryIo::sync(int handle, std::uint64_t tag) {
  MemFile* f = file(handle);
  if (f == nullptr) return Error{Errc::invalid_argument, "no open file"};
  ++syncs_;
  f->durable = f->data;
  f->unsynced.clear();
  done_.push_back({tag, 0});
  return {};
}

std::size_t MemoryIo::reap(std::span<IoCompletion> out, std::size_t) {
  const std::size_t n = std::min(out.size(), done_.size());
  std::copy_n(done_.begin(), n, out.begin());
  done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(n));
  return n;
}

void MemoryIo::crash(std::size_t torn_bytes) {
  std::erase_if(files_, [](const auto& f) { return !f.second.name_durable; });
  for (auto& [path, f] : removed_) {
    if (!files_.contains(path)) files_.emplace(path, std::move(f));
  }
  removed_.clear();
  std::erase_if(handles_, [&](const auto& h) { return !files_.contains(h.second); });
  for (auto& [path, f] : files_) {
    std::vector<std::byte> after = f.durable;
    if (torn_bytes > 0 && !f.unsynced.empty()) {
      const Unsynced& first = f.unsynced.front();
      const std::size_t n = std::min(torn_bytes, first.data.size());
      if (after.size() < first.offset + n) after.resize(first.offset + n);
      std::memcpy(after.data() + first.offset, first.data.data(), n);
    }
    f.data = after;
    f.durable = std::move(after);
    f.unsynced.clear();
    f.name_durable = true;
  }
  done_.clear();
}

const std::vector<std::byte>& MemoryIo::contents(const std::string& path) const {
  static const std::vector<std::byte> none;
  const auto it = files_.find(path);
  return it == files_.end() ? none : it->second.data;
}

}  // namespace ringbus::log
