// All file I/O of the commit log goes through this one small interface
// (ARCHITECTURE.md, "Conventions"), with three backends:
//   - io_uring: several writes in flight, submitted in batches;
//   - pwrite: the fallback where io_uring is unavailable (old kernel,
//     disabled by sysctl or seccomp), chosen with one clear warning; and,
//     with reads ahead on a thread of its own, a consumer's reader;
//   - memory: for tests, with injectable faults (ENOSPC, EIO, a write that
//     lands partly and then fails) and a simulated crash that loses what was
//     not synced, tearing the last unsynced write.
//
// Writes and syncs are asynchronous: queue them, then reap completions. So
// are reads ahead (read_async: a reader's next chunk, copied by the kernel
// while the reader checks the chunk before it). A
// completion reports the whole request: the backend itself finishes short
// writes and retries EAGAIN/EINTR, so callers see either every byte written
// or an error. Nothing orders a sync after earlier writes: a caller that
// needs "durable up to X" reaps the writes first, then queues the sync.
//
// Threading: an instance is used by one thread at a time (the flusher or the
// reader that owns it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string_view>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ringbus/result.h"

namespace ringbus::log {

struct IoCompletion {
  std::uint64_t tag = 0;  // what the caller passed with the request
  int result = 0;         // bytes written (the whole request) or read, 0 for a sync, or -errno
};

class FileIo {
 public:
  virtual ~FileIo() = default;
  virtual const char* name() const noexcept = 0;

  // Opens a file for reading and writing (creating it if asked); returns a
  // handle for the calls below.
  virtual Result<int> open(const std::string& path, bool create) = 0;
  // Opens an existing file for reading only (consumers reading the log).
  virtual Result<int> open_read(const std::string& path) = 0;
  virtual void close(int file) noexcept = 0;
  virtual Result<std::uint64_t> size(int file) = 0;
  // Reserves disk space for [from, to) without changing what reads return
  // past the end (segments are preallocated as they grow). Only the new
  // range: on tmpfs each call walks every page of its range.
  virtual Status allocate(int file, std::uint64_t from, std::uint64_t to) = 0;
  virtual Status truncate(int file, std::uint64_t bytes) = 0;
  // Synchronous read; returns fewer bytes than asked only at the end of file.
  virtual Result<std::size_t> read(int file, std::uint64_t offset, std::span<std::byte> dst) = 0;
  // A hint that the file will be read from start to end (a reader's scan):
  // the kernel reads further ahead. Nothing for a backend without a kernel.
  virtual void advise_sequential(int /*file*/) noexcept {}

  // Synchronous write and fdatasync, for the slow path (creating a segment,
  // recovery, index repair). A write_now counts as a write for MemoryIo's faults.
  virtual Status write_now(int file, std::uint64_t offset, std::span<const std::byte> data) = 0;
  virtual Status sync_now(int file) = 0;

  // Directories: the names in `dir` (not "." or ".."); remove a file; create
  // a directory and its parents; make a directory's entries durable.
  virtual Result<std::vector<std::string>> list(const std::string& dir) = 0;
  virtual Status remove(const std::string& path) = 0;
  virtual Status make_directories(const std::string& dir) = 0;
  virtual Status sync_directory(const std::string& dir) = 0;

  // Queues a write of all of `data` at `offset`. `data` must stay valid until
  // the completion with `tag` is reaped.
  virtual Status write(int file, std::uint64_t offset, std::span<const std::byte> data, std::uint64_t tag) = 0;
  // Queues an fdatasync of the file.
  virtual Status sync(int file, std::uint64_t tag) = 0;
  // Queues a read of up to dst.size() bytes at `offset` (fewer only at the
  // end of the file); `dst` must stay valid until the completion is reaped.
  // make_thread_read_io() runs it on a thread of its own, so the copy
  // overlaps the caller's work; the others read at once.
  virtual Status read_async(int file, std::uint64_t offset, std::span<std::byte> dst, std::uint64_t tag) = 0;
  // Requests queued or in flight whose completion has not been reaped.
  virtual std::size_t pending() const noexcept = 0;
  // Submits what is queued, waits until at least `min` completions are ready
  // (0: do not wait), and moves up to out.size() of them to `out`.
  virtual std::size_t reap(std::span<IoCompletion> out, std::size_t min) = 0;
};

// The pwrite backend: each request runs at once; completions queue up.
std::unique_ptr<FileIo> make_pwrite_io();

// The pwrite backend whose read_async runs on a thread of its own: the
// backend of a reader that reads ahead on a user's thread (a consumer's disk
// path), where io_uring's completions would interrupt that thread's own
// blocking system calls.
std::unique_ptr<FileIo> make_thread_read_io();

// The io_uring backend with `depth` submission entries. If io_uring cannot be
// set up, returns the pwrite backend and puts the reason in *warning (log it
// once: the fallback is correct, only slower).
std::unique_ptr<FileIo> make_uring_io(unsigned depth, std::string* warning);

// The in-memory backend, for tests.
class MemoryIo final : public FileIo {
 public:
  // Faults, counted over write requests from the first (1-based).
  struct Fault {
    std::uint64_t write_number = 0;  // which write request
    int error = 0;                   // -errno it completes with (ENOSPC, EIO, ...)
    std::size_t lands = 0;           // bytes of it written before the error
  };
  void inject(Fault f) { faults_.push_back(f); }
  void clear_faults() { faults_.clear(); }
  // Simulates power loss: every file goes back to what was last synced, plus
  // the first `torn_bytes` of the earliest write after that sync (a torn
  // write); and every directory to its entries when it was last synced: a
  // file created since is gone, a file removed since is back (with what of
  // it was synced). Handles of the files that stay stay open.
  void crash(std::size_t torn_bytes = 0);
  // The bytes of a file as the next read would see them (for assertions).
  const std::vector<std::byte>& contents(const std::string& path) const;
  std::uint64_t writes() const noexcept { return writes_; }
  std::uint64_t syncs() const noexcept { return syncs_; }

  const char* name() const noexcept override { return "memory"; }
  Result<int> open(const std::string& path, bool create) override;
  Result<int> open_read(const std::string& path) override { return open(path, false); }
  Status write_now(int file, std::uint64_t offset, std::span<const std::byte> data) override;
  Status sync_now(int file) override;
  Result<std::vector<std::string>> list(const std::string& dir) override;
  Status remove(const std::string& path) override;
  Status make_directories(const std::string&) override { return {}; }
  Status sync_directory(const std::string& dir) override;
  void close(int file) noexcept override;
  Result<std::uint64_t> size(int file) override;
  Status allocate(int file, std::uint64_t from, std::uint64_t to) override;
  Status truncate(int file, std::uint64_t bytes) override;
  Result<std::size_t> read(int file, std::uint64_t offset, std::span<std::byte> dst) override;
  Status write(int file, std::uint64_t offset, std::span<const std::byte> data, std::uint64_t tag) override;
  Status sync(int file, std::uint64_t tag) override;
  Status read_async(int file, std::uint64_t offset, std::span<std::byte> dst, std::uint64_t tag) override;
  std::size_t pending() const noexcept override { return done_.size(); }
  std::size_t reap(std::span<IoCompletion> out, std::size_t min) override;

 private:
  struct Unsynced {
    std::uint64_t offset;
    std::vector<std::byte> data;
  };
  struct MemFile {
    std::vector<std::byte> data;     // what reads see (the page cache)
    std::vector<std::byte> durable;  // what survives a crash
    std::vector<Unsynced> unsynced;  // writes since the last sync, in order
    bool name_durable = false;       // its directory was synced since it was created
  };
  MemFile* file(int handle);
  // Applies a write (and the fault injected for it, if any); returns its result.
  int apply_write(MemFile& f, std::uint64_t offset, std::span<const std::byte> data);
  std::map<std::string, MemFile> files_;
  std::map<std::string, MemFile> removed_;  // durable names removed since their directory's last sync
  std::map<int, std::string> handles_;
  int next_handle_ = 1;
  std::vector<Fault> faults_;
  std::vector<IoCompletion> done_;
  std::uint64_t writes_ = 0;
  std::uint64_t syncs_ = 0;
};

}  // namespace ringbus::log
