// A file in shared memory, mapped read-write. Move-only; unmaps on
// destruction (unmapping never deletes: a topic's files are unlinked by the
// broker, and mappings of unlinked files stay valid until unmapped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ringbus/result.h"

namespace ringbus::detail {

class MappedFile {
 public:
  // Creates a new file of `size` bytes (fails if it exists). The memory is
  // reserved with posix_fallocate, so a full tmpfs is an error here rather
  // than a SIGBUS on some later write.
  static Result<MappedFile> create(const std::string& path, std::uint64_t size);
  // Maps an existing file, whole. populate pre-faults every page (for rings
  // on the hot path; not for a quick look at a header).
  static Result<MappedFile> open(const std::string& path, bool populate = true);

  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::byte* data() const noexcept { return data_; }
  std::uint64_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }

 private:
  MappedFile(std::string path, std::byte* data, std::uint64_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  void reset() noexcept;
  std::string path_;
  std::byte* data_ = nullptr;
  std::uint64_t size_ = 0;
};

// "open /x/y: No such file or directory" style message for errno.
std::string errno_message(const std::string& what, int err);

}  // namespace ringbus::detail
