#include "ringbus/broker.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "sync.h"
#include "topic_files.h"

namespace ringbus {

struct Broker::Impl {
  std::string instance;
  int lock_fd = -1;
  std::uint64_t next_topic_id = 0;
  mutable std::mutex mu;  // serialises topic operations of this broker
  bool closed = false;
};

namespace {

// Removes what a broker that died left behind: marks its topics deleted (so
// clients still mapping them stop cleanly) and unlinks them.
void remove_leftovers(std::string_view instance) {
  for (const std::string& name : detail::list_topic_names(instance)) {
    (void)detail::delete_topic_files(instance, name);
  }
  const std::string topics = detail::topics_directory(instance);
  if (DIR* d = ::opendir(topics.c_str())) {
    // Hidden leftovers: half-created (.new-*) or half-deleted (.deleted-*) topics.
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      const std::string dir = topics + "/" + name;
      if (DIR* inner = ::opendir(dir.c_str())) {
        while (const dirent* f = ::readdir(inner)) {
          if (f->d_name[0] != '.') ::unlink((dir + "/" + f->d_name).c_str());
        }
        ::closedir(inner);
      }
      ::rmdir(dir.c_str());
    }
    ::closedir(d);
  }
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
    // flock is released by the kernel when the holder dies, so a broker
    // killed with SIGKILL never leaves the instance locked.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
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
  remove_leftovers(options.instance);
  const std::string topics = detail::topics_directory(options.instance);
  if (::mkdir(topics.c_str(), 0770) != 0 && errno != EEXIST) {
    const int err = errno;
    ::close(fd);
    return Error{Errc::io_error, detail::errno_message("mkdir " + topics, err)};
  }
  auto impl = std::make_unique<Impl>();
  impl->instance = options.instance;
  impl->lock_fd = fd;
  impl->next_topic_id = static_cast<std::uint64_t>(detail::realtime_ns());
  return Broker(std::move(impl));
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

Result<TopicInfo> Broker::create_topic(const TopicConfig& config) {
  std::lock_guard lock(impl_->mu);
  if (impl_->closed) return Error{Errc::invalid_argument, "broker is closed"};
  return detail::create_topic_files(impl_->instance, config, ++impl_->next_topic_id);
}

Status Broker::delete_topic(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  if (impl_->closed) return Error{Errc::invalid_argument, "broker is closed"};
  return detail::delete_topic_files(impl_->instance, name);
}

Result<std::vector<std::string>> Broker::list_topics() const {
  std::lock_guard lock(impl_->mu);
  return detail::list_topic_names(impl_->instance);
}

Result<TopicInfo> Broker::describe_topic(std::string_view name) const {
  return ringbus::describe_topic(impl_->instance, name);
}

void Broker::close() {
  if (!impl_) return;
  std::lock_guard lock(impl_->mu);
  if (impl_->closed) return;
  impl_->closed = true;
  remove_leftovers(impl_->instance);
  const std::string dir = instance_directory(impl_->instance);
  ::rmdir(detail::topics_directory(impl_->instance).c_str());
  ::unlink((dir + "/broker.lock").c_str());
  ::rmdir(dir.c_str());
  ::close(impl_->lock_fd);
}

}  // namespace ringbus
