#include "control_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

namespace ringbus::control {

namespace {

std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

Result<sockaddr_un> address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) {
    return Error{Errc::invalid_argument, "the control socket path '" + path + "' is longer than " +
                                             std::to_string(sizeof a.sun_path - 1) + " bytes (see RINGBUS_SHM_DIR)"};
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// Sends all of `s`, giving up on a peer that does not read for a second
// (SO_SNDTIMEO on the socket).
bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void set_timeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

}  // namespace

// ---------------------------------------------------------------------------

struct ControlServer::Impl {
  std::string path;
  Handler handler;
  int listen_fd = -1;
  int wake[2] = {-1, -1};  // a pipe: stop() writes, the thread wakes
  std::thread thread;

  struct Connection {
    int fd;
    std::string in;
  };
  std::vector<Connection> connections;

  std::string answer(std::string_view line) {
    Json response;
    auto request = parse_request(line);
    if (!request) {
      response = error_response(request.error());
    } else {
      try {
        response = handler(request.value());
      } catch (const std::exception& e) {
        response = error_response(Error{Errc::io_error, std::string("the broker failed on this request: ") + e.what()});
      }
    }
    // Invalid UTF-8 from a client's strings is replaced, not thrown on.
    return response.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  }

  // Reads what a connection sent and answers every complete line. False:
  // close it (peer gone, or it sent more than a line's limit without '\n').
  bool serve(Connection& c) {
    char buf[65536];
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c.in.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = c.in.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (nl - start >= kMaxLineBytes) return refuse_long_line(c);
      if (!send_all(c.fd, answer(std::string_view(c.in).substr(start, nl - start)))) return false;
    }
    c.in.erase(0, start);
    if (c.in.size() >= kMaxLineBytes) return refuse_long_line(c);
    return true;
  }

  // Answers an over-long request with an error, then closes (the rest of the
  // line would be read as garbage).
  static bool refuse_long_line(const Connection& c) {
    (void)send_all(c.fd, error_response(Error{Errc::invalid_argument, "the request is longer than " +
                                                                          std::to_string(kMaxLineBytes) + " bytes"})
                             .dump() +
                             "\n");
    return false;
  }

  void run() {
    for (;;) {
      std::vector<pollfd> fds;
      fds.push_back({wake[0], POLLIN, 0});
      fds.push_back({listen_fd, POLLIN, 0});
      for (const Connection& c : connections) fds.push_back({c.fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents != 0) return;
      // Connections first: the indexes of fds match `connections` until an accept.
      for (std::size_t i = connections.size(); i-- > 0;) {
        if (fds[i + 2].revents == 0) continue;
        if (!serve(connections[i])) {
          ::close(connections[i].fd);
          connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(i));
        }
      }
      if ((fds[1].revents & POLLIN) != 0) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          set_timeouts(fd, std::chrono::seconds(1));
          connections.push_back({fd, {}});
        }
      }
    }
  }

  void close_all() {
    for (const Connection& c : connections) ::close(c.fd);
    connections.clear();
    for (int& fd : {std::ref(listen_fd), std::ref(wake[0]), std::ref(wake[1])}) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }
};

Result<std::unique_ptr<ControlServer>> ControlServer::start(std::string path, Handler handler) {
  auto a = address(path);
  if (!a) return a.error();
  auto impl = std::make_unique<Impl>();
  impl->path = std::move(path);
  impl->handler = std::move(handler);
  impl->listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl->listen_fd < 0) return Error{Errc::io_error, errno_text("socket for " + impl->path, errno)};
  ::unlink(impl->path.c_str());  // a stale socket of a broker that died (we own the instance now)
  if (::bind(impl->listen_fd, reinterpret_cast<const sockaddr*>(&a.value()), sizeof a.value()) != 0 ||
      ::listen(impl->listen_fd, 64) != 0) {
    const int err = errno;
    impl->close_all();
    return Error{Errc::io_error, errno_text("listening on " + impl->path, err)};
  }
  if (::pipe2(impl->wake, O_CLOEXEC) != 0) {
    const int err = errno;
    impl->close_all();
    return Error{Errc::io_error, errno_text("pipe", err)};
  }
  Impl* p = impl.get();
  impl->thread = std::thread([p] { p->run(); });
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlServer::~ControlServer() { stop(); }

void ControlServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  const char x = 1;
  (void)!::write(impl_->wake[1], &x, 1);
  impl_->thread.join();
  impl_->close_all();
  ::unlink(impl_->path.c_str());
}

const std::string& ControlServer::path() const noexcept { return impl_->path; }

// ---------------------------------------------------------------------------

Result<ControlClient> ControlClient::connect(std::string_view instance, std::chrono::milliseconds timeout) {
  const std::string path = socket_path(instance);
  auto a = address(path);
  if (!a) return a.error();
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{Errc::io_error, errno_text("socket", errno)};
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.value()), sizeof a.value()) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == ENOENT || err == ECONNREFUSED) {
      return Error{Errc::not_found, "no broker is running for instance '" + std::string(instance) + "' (nothing listens on " +
                                        path + "; start ringbusd, or set RINGBUS_INSTANCE)"};
    }
    return Error{Errc::io_error, errno_text("connecting to the broker at " + path, err)};
  }
  set_timeouts(fd, timeout);
  return ControlClient(fd, std::string(instance), timeout);
}

ControlClient::ControlClient(int fd, std::string instance, std::chrono::milliseconds timeout)
    : fd_(fd), instance_(std::move(instance)), timeout_(timeout) {}

ControlClient::ControlClient(ControlClient&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), instance_(std::move(o.instance_)), timeout_(o.timeout_), buffer_(std::move(o.buffer_)) {}

ControlClient& ControlClient::operator=(ControlClient&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    instance_ = std::move(o.instance_);
    timeout_ = o.timeout_;
    buffer_ = std::move(o.buffer_);
  }
  return *this;
}

ControlClient::~ControlClient() {
  if (fd_ >= 0) ::close(fd_);
}

Result<Json> ControlClient::call_raw(std::string_view line) {
  const std::string who = "the broker of instance '" + instance_ + "'";
  std::string out(line);
  out += '\n';
  const std::string closed = who + " closed the connection (it stopped or died)";
  if (!send_all(fd_, out)) {
    if (errno == EPIPE || errno == ECONNRESET) return Error{Errc::io_error, closed};
    return Error{Errc::io_error, errno_text("sending to " + who, errno)};
  }
  for (;;) {
    if (const std::size_t nl = buffer_.find('\n'); nl != std::string::npos) {
      Json r = Json::parse(std::string_view(buffer_).substr(0, nl), nullptr, false);
      buffer_.erase(0, nl + 1);
      if (r.is_discarded()) return Error{Errc::corrupt, who + " answered with something that is not JSON"};
      return r;
    }
    if (buffer_.size() > kMaxLineBytes) return Error{Errc::corrupt, who + " answered with an over-long line"};
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return Error{Errc::io_error, closed};
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) return Error{Errc::io_error, closed};
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Error{Errc::io_error, who + " did not answer within " + std::to_string(timeout_.count()) + " ms"};
      }
      return Error{Errc::io_error, errno_text("reading from " + who, errno)};
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

Result<Json> ControlClient::call(std::string_view op, Json fields) {
  if (!fields.is_object()) fields = Json::object();
  fields["v"] = kProtocolVersion;
  fields["op"] = op;
  auto r = call_raw(fields.dump());
  if (!r) return r;
  if (auto s = response_status(r.value()); !s) return s.error();
  return r;
}

}  // namespace ringbus::control
