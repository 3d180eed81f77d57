#include "liveness.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <vector>

#include "mapped_file.h"
#include "sync.h"

namespace ringbus::detail {

namespace {

struct Token {
  std::string instance_dir;
  std::int32_t token;
  int fd;  // holds the lock
};

std::mutex g_mu;
std::vector<Token> g_tokens;  // under g_mu

// g_mu is held across fork() (so the child's copy is consistent). In the
// child the inherited descriptors share the parent's lock: drop them (the
// parent's lock stays: its own descriptors are still open) so the child
// takes tokens of its own.
void lock_for_fork() { g_mu.lock(); }
void unlock_in_parent() { g_mu.unlock(); }
void forget_in_child() {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  for (const Token& t : g_tokens) ::close(t.fd);
  g_tokens.clear();
  g_mu.unlock();
}

std::string token_path(const std::string& instance_dir, std::int32_t token) {
  return clients_directory(instance_dir) + "/" + std::to_string(token);
}

Result<Token> make_token(const std::string& instance_dir) {
  const std::string dir = clients_directory(instance_dir);
  if (::mkdir(dir.c_str(), 0770) != 0 && errno != EEXIST) {
    return Error{Errc::io_error, errno_message("mkdir " + dir, errno)};
  }
  // Locked under a private name first, then linked into place: a sweeper
  // never finds the public name unlocked while its owner lives.
  const std::string tmp = dir + "/.new-" + std::to_string(::getpid()) + "-" + std::to_string(monotonic_ns());
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
  if (fd < 0) return Error{Errc::io_error, errno_message("create " + tmp, errno)};
  struct flock fl{};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Error{Errc::io_error, errno_message("lock " + tmp, err)};
  }
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::uint32_t r = 0;
    if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) break;
    const auto token = static_cast<std::int32_t>(r & 0x7fffffffU);
    if (token == 0) continue;
    if (::link(tmp.c_str(), token_path(instance_dir, token).c_str()) == 0) {
      ::unlink(tmp.c_str());
      return Token{instance_dir, token, fd};
    }
    if (errno != EEXIST) break;
  }
  const int err = errno;
  ::close(fd);
  ::unlink(tmp.c_str());
  return Error{Errc::io_error, errno_message("make a client token in " + dir, err)};
}

}  // namespace

std::string clients_directory(const std::string& instance_dir) { return instance_dir + "/clients"; }

Result<std::int32_t> client_token(const std::string& instance_dir) {
  static const int registered = pthread_atfork(lock_for_fork, unlock_in_parent, forget_in_child);
  (void)registered;
  std::lock_guard lock(g_mu);
  for (const Token& t : g_tokens) {
    if (t.instance_dir == instance_dir) return t.token;
  }
  auto t = make_token(instance_dir);
  if (!t) return t.error();
  g_tokens.push_back(t.value());
  return t->token;
}

void release_client_token(const std::string& instance_dir) {
  std::lock_guard lock(g_mu);
  for (auto it = g_tokens.begin(); it != g_tokens.end(); ++it) {
    if (it->instance_dir != instance_dir) continue;
    ::unlink(token_path(instance_dir, it->token).c_str());
    ::close(it->fd);
    g_tokens.erase(it);
    return;
  }
}

bool client_is_dead(const std::string& instance_dir, std::int32_t token) noexcept {
  if (token <= 0) return false;
  return !lock_is_held(token_path(instance_dir, token).c_str());
}

std::size_t sweep_dead_clients(const std::string& instance_dir) {
  const std::string dir = clients_directory(instance_dir);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  std::size_t removed = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;  // ".", "..", and names being made
    const std::string path = dir + "/" + e->d_name;
    if (!lock_is_held(path.c_str()) && ::unlink(path.c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

}  // namespace ringbus::detail
