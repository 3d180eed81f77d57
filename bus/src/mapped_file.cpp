#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ringbus::detail {

std::string errno_message(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

namespace {

Result<std::byte*> map(const std::string& path, int fd, std::uint64_t size, bool populate) {
  // MAP_POPULATE pre-faults the pages, so the hot path takes no page faults.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0);
  if (p == MAP_FAILED) return Error{Errc::io_error, errno_message("mmap " + path, errno)};
  return static_cast<std::byte*>(p);
}

}  // namespace

Result<MappedFile> MappedFile::create(const std::string& path, std::uint64_t size) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
  if (fd < 0) {
    const int err = errno;
    return Error{err == EEXIST ? Errc::already_exists : Errc::io_error,
                 errno_message("create " + path, err)};
  }
  if (const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size)); err != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    return Error{Errc::io_error,
                 errno_message("reserve " + std::to_string(size) + " bytes for " + path, err)};
  }
  auto mapped = map(path, fd, size, true);
  ::close(fd);
  if (!mapped) {
    ::unlink(path.c_str());
    return mapped.error();
  }
  return MappedFile(path, mapped.value(), size);
}

Result<MappedFile> MappedFile::open(const std::string& path, bool populate) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Error{err == ENOENT ? Errc::not_found : Errc::io_error, errno_message("open " + path, err)};
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Error{Errc::io_error, errno_message("stat " + path, err)};
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return Error{Errc::corrupt, path + " is empty (truncated partition file)"};
  }
  auto mapped = map(path, fd, size, populate);
  ::close(fd);
  if (!mapped) return mapped.error();
  return MappedFile(path, mapped.value(), size);
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    reset();
    path_ = std::move(o.path_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { reset(); }

void MappedFile::reset() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace ringbus::detail
