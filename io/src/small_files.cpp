#include "small_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "mapped_file.h"

namespace ringbus::io {

Result<std::vector<std::byte>> read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{errno == ENOENT ? Errc::not_found : Errc::io_error, detail::errno_message("open " + path, errno)};
  std::vector<std::byte> bytes(64 * 1024);
  const ssize_t n = ::pread(fd, bytes.data(), bytes.size(), 0);
  const int err = errno;
  ::close(fd);
  if (n < 0) return Error{Errc::io_error, detail::errno_message("read " + path, err)};
  bytes.resize(static_cast<std::size_t>(n));
  return bytes;
}

Status replace_file_durably(const std::string& dir, const std::string& name, std::span<const std::byte> bytes) {
  const std::string path = dir + "/" + name;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Error{Errc::io_error, detail::errno_message("open " + tmp, errno)};
  const bool ok = ::pwrite(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()) && ::fdatasync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) return Error{Errc::io_error, detail::errno_message("write " + tmp, err)};
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Error{Errc::io_error, detail::errno_message("rename " + tmp, errno)};
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Error{Errc::io_error, detail::errno_message("open " + dir, errno)};
  const bool synced = ::fsync(dfd) == 0;
  const int derr = errno;
  ::close(dfd);
  if (!synced) return Error{Errc::io_error, detail::errno_message("fsync " + dir, derr)};
  return {};
}

}  // namespace ringbus::io
