#include "small_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crc32c.h"
#include "mapped_file.h"
#include "small_file_format.h"

namespace ringbus::io {

namespace {
std::uint32_t crc_after_envelope(std::span<const std::byte> bytes) {
  return log::crc32c(bytes.data() + sizeof(FileEnvelope), bytes.size() - sizeof(FileEnvelope));
}
}  // namespace

void seal_envelope(std::span<std::byte> bytes, std::uint64_t magic, std::uint32_t version) {
  FileEnvelope e{magic, version, crc_after_envelope(bytes)};
  std::memcpy(bytes.data(), &e, sizeof e);
}

Result<std::uint32_t> open_envelope(std::span<const std::byte> bytes, std::uint64_t magic, std::uint32_t oldest,
                                    std::uint32_t newest, const std::string& path, const char* kind) {
  if (bytes.size() < sizeof(FileEnvelope)) {
    return Error{Errc::corrupt, path + ": truncated: " + std::to_string(bytes.size()) + " bytes"};
  }
  FileEnvelope e;
  std::memcpy(&e, bytes.data(), sizeof e);
  if (e.magic != magic) return Error{Errc::corrupt, path + ": not a ringbus " + kind + " (bad magic)"};
  if (e.version < oldest || e.version > newest) {
    const std::string reads = oldest == newest ? "version " + std::to_string(newest)
                                               : "versions " + std::to_string(oldest) + " to " + std::to_string(newest);
    return Error{Errc::version_mismatch,
                 path + ": " + kind + " version " + std::to_string(e.version) + ", this ringbus reads " + reads};
  }
  return e.version;
}

bool envelope_crc_ok(std::span<const std::byte> bytes) {
  FileEnvelope e;
  std::memcpy(&e, bytes.data(), sizeof e);
  return e.crc32c == crc_after_envelope(bytes);
}

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
