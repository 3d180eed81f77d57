#include "peer_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <memory>

#include "peer_auth.h"

namespace ringbus::cluster {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadChunk = 256 << 10;
constexpr std::size_t kReadCap = 4 << 20;

std::string errno_text(int err) { return std::strerror(err); }

// "host:port" split at the last colon; false if there is none or no host.
bool split_address(const std::string& address, std::string& host, std::string& port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  return true;
}

std::string describe(const sockaddr* a) {
  char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
  const socklen_t len = a->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  ::getnameinfo(a, len, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
  return std::string(host) + ":" + port;
}

using AddrInfo = std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)>;

// The addresses of "host:port" to connect to, or (`passive`) to listen on.
Result<AddrInfo> resolve(const std::string& address, bool passive) {
  std::string host, port;
  if (!split_address(address, host, port))
    return Error{Errc::invalid_argument, "'" + address + "' is not a host:port address"};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return Error{passive ? Errc::invalid_argument : Errc::io_error,
                 "cannot resolve '" + address + "': " + ::gai_strerror(rc)};
  return AddrInfo(found, &::freeaddrinfo);
}

void set_options(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// A handshake's deadline, and its refusals: told to the peer, then returned.
struct Turn {
  PeerLink& link;
  Clock::time_point deadline;
  const char* direction;  // "to" (the mirror's side) or "from" (the leader's)
  std::chrono::milliseconds left() const {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  }
  Error refuse(wire::ErrorCode code, const std::string& why) const {
    link.refuse(code, why, left());
    return Error{Errc::invalid_argument, std::string("replication link ") + direction + " " + link.peer() + ": " + why};
  }
};

std::string unexpected(const wire::Message& m, const char* wanted) {
  return std::string("expected ") + wanted + ", got " + wire::to_string(wire::type_of(m));
}

}  // namespace

PeerLink::PeerLink(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) { set_options(fd_); }

PeerLink::~PeerLink() {
  if (fd_ >= 0) ::close(fd_);
}

Status PeerLink::fail(const std::string& what) const {
  return Error{Errc::io_error, "replication link to " + peer_ + ": " + what};
}

bool PeerLink::wait(short events, Clock::time_point deadline) const {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd_, events, 0};
  return ::poll(&p, 1, static_cast<int>(left)) > 0;
}

SharedFile::~SharedFile() {
  if (fd_ >= 0) ::close(fd_);
}

void PeerLink::send(const wire::Message& m) {
  auto& bytes = tail_bytes();
  const std::size_t before = bytes.size();
  wire::encode(m, bytes);
  queued_ += bytes.size() - before;
}

std::vector<std::byte>& PeerLink::tail_bytes() {
  if (out_.empty() || out_.back().file) out_.emplace_back();
  return out_.back().bytes;
}

void PeerLink::send_batches(std::uint32_t stream, std::uint64_t high_watermark, std::uint64_t log_start,
                            std::span<const std::byte> batches) {
  begin_batches();
  add_batch(batches);
  end_batches(stream, high_watermark, log_start);
}

void PeerLink::begin_batches() {
  auto& bytes = tail_bytes();
  head_piece_ = out_.size() - 1;
  head_at_ = bytes.size();
  bytes.resize(bytes.size() + wire::kBatchesHeadSize);
  queued_ += wire::kBatchesHeadSize;
  batches_added_ = 0;
}

void PeerLink::add_batch(std::span<const std::byte> batch) {
  auto& bytes = tail_bytes();
  bytes.insert(bytes.end(), batch.begin(), batch.end());
  queued_ += batch.size();
  batches_added_ += batch.size();
}

void PeerLink::add_file_batch(const std::shared_ptr<const SharedFile>& file, std::uint64_t offset, std::size_t size) {
  // Batches that follow each other in the file go in one range: one
  // sendfile for a frame's worth.
  if (!out_.empty() && out_.back().file == file && out_.back().offset + out_.back().size == offset) {
    out_.back().size += size;
  } else {
    Piece p;
    p.file = file;
    p.offset = offset;
    p.size = size;
    out_.push_back(std::move(p));
  }
  queued_ += size;
  batches_added_ += size;
}

void PeerLink::end_batches(std::uint32_t stream, std::uint64_t high_watermark, std::uint64_t log_start) {
  const auto head = wire::batches_head(stream, high_watermark, log_start, static_cast<std::uint32_t>(batches_added_));
  std::copy(head.begin(), head.end(), out_[head_piece_].bytes.begin() + static_cast<std::ptrdiff_t>(head_at_));
}

void PeerLink::drop_batches() {
  out_.resize(head_piece_ + 1);
  out_.back().bytes.resize(head_at_);
  queued_ -= wire::kBatchesHeadSize + batches_added_;
  batches_added_ = 0;
}

Result<bool> PeerLink::send_front() {
  Piece& p = out_.front();
  const bool more = out_.size() > 1;  // the kernel may wait for the rest to fill a segment
  ssize_t n;
  if (p.file) {
    off_t at = static_cast<off_t>(p.offset + p.sent);
    n = ::sendfile(fd_, p.file->fd(), &at, p.size - p.sent);
    if (n == 0) return fail("the log file to send from ended at byte " + std::to_string(p.offset + p.sent)).error();
  } else {
    n = ::send(fd_, p.bytes.data() + p.sent, p.bytes.size() - p.sent, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
  }
  if (n < 0) {
    if (errno == EINTR) return true;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    return fail(std::string(p.file ? "sendfile" : "send") + " failed: " + errno_text(errno)).error();
  }
  p.sent += static_cast<std::size_t>(n);
  queued_ -= static_cast<std::size_t>(n);
  last_sent_ = Clock::now();
  if (p.sent == p.length()) out_.pop_front();
  return true;
}

Status PeerLink::write_some() {
  while (!out_.empty()) {
    if (out_.front().sent == out_.front().length()) {  // a frame dropped to nothing
      out_.pop_front();
      continue;
    }
    auto more = send_front();
    if (!more) return more.error();
    if (!more.value()) break;
  }
  return {};
}

Status PeerLink::flush(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto s = write_some(); !s) return s;
    if (queued() == 0) return {};
    if (!wait(POLLOUT, deadline)) return fail("the peer took nothing for " + std::to_string(timeout.count()) + " ms");
  }
}

Result<bool> PeerLink::read_some() {
  // Frames handed out before are no longer needed: move what is left down.
  if (in_start_ > 0) {
    std::memmove(in_.data(), in_.data() + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_;
    in_start_ = 0;
  }
  for (;;) {
    const std::size_t want = std::max(in_end_ + kReadChunk, in_need_);
    if (in_.size() < want) in_.resize(want);
    const ssize_t n = ::recv(fd_, in_.data() + in_end_, in_.size() - in_end_, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      auto s = fail("recv failed: " + errno_text(errno));
      return s.error();
    }
    if (n == 0) return false;
    in_end_ += static_cast<std::size_t>(n);
    if (in_end_ < in_.size()) return true;  // the socket had less than the room: read it all
    // A fast peer does not keep the loop (and memory) to itself: once the
    // frame being waited for is whole, or this much is in, the rest waits.
    if (in_end_ >= std::max(in_need_, kReadCap)) return true;
  }
}

Result<std::optional<wire::Message>> PeerLink::next() {
  for (;;) {
    const auto d = wire::decode(std::span(in_.data() + in_start_, in_end_ - in_start_));
    switch (d.state) {
      case wire::Decoded::State::need_more:
        in_need_ = d.size;
        return std::optional<wire::Message>{};
      case wire::Decoded::State::bad: {
        auto s = fail("it sent a frame we cannot take: " + d.error);
        return Error{Errc::corrupt, s.error().message};
      }
      case wire::Decoded::State::ok:
        break;
    }
    in_start_ += d.size;
    in_need_ = 0;
    last_heard_ = Clock::now();
    const auto* b = std::get_if<wire::Batches>(&d.message);
    if (b && b->stream == 0 && b->batches.empty()) continue;  // a heartbeat
    return std::optional<wire::Message>{d.message};
  }
}

void PeerLink::keep_alive(std::chrono::milliseconds every) {
  if (queued() == 0 && Clock::now() - last_sent_ >= every) send(wire::Batches{});
}

bool PeerLink::quiet_for(std::chrono::milliseconds idle) const { return Clock::now() - last_heard_ > idle; }

Result<wire::Message> PeerLink::receive(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto m = next();
    if (!m) return m.error();
    if (m->has_value()) return std::move(**m);
    auto open = read_some();
    if (!open) return open.error();
    // What the peer sent before it closed (an error frame, say) comes first.
    auto again = next();
    if (!again) return again.error();
    if (again->has_value()) return std::move(**again);
    if (!open.value()) return fail("the peer closed the connection").error();
    if (!wait(POLLIN, deadline)) return fail("no answer within " + std::to_string(timeout.count()) + " ms").error();
  }
}

void PeerLink::refuse(wire::ErrorCode code, const std::string& message, std::chrono::milliseconds timeout) {
  send(wire::ErrorMsg{0, code, message});
  (void)flush(timeout);
}

Result<std::unique_ptr<PeerLink>> dial(const std::string& address, std::chrono::milliseconds timeout) {
  auto found = resolve(address, false);
  if (!found) return found.error();
  std::string failures;
  const auto deadline = Clock::now() + timeout;
  for (addrinfo* a = found->get(); a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left > 0 && ::poll(&p, 1, static_cast<int>(left)) > 0) {
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        } else {
          err = ETIMEDOUT;
        }
      }
    }
    if (err == 0) return std::make_unique<PeerLink>(fd, describe(a->ai_addr));
    failures += (failures.empty() ? "" : "; ") + describe(a->ai_addr) + ": " + errno_text(err);
    ::close(fd);
  }
  return Error{Errc::io_error, "cannot connect to " + address + ": " + (failures.empty() ? "no address" : failures)};
}

Result<Listener> listen_on(const std::string& address) {
  auto found = resolve(address, true);
  if (!found) return found.error();
  std::string failures;
  for (addrinfo* a = found->get(); a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 64) == 0) {
      sockaddr_storage bound{};
      socklen_t len = sizeof bound;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      const auto p = bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&bound)->sin_port;
      return Listener{fd, ntohs(p)};
    }
    failures += (failures.empty() ? "" : "; ") + describe(a->ai_addr) + ": " + errno_text(errno);
    ::close(fd);
  }
  return Error{Errc::io_error, "cannot listen on " + address + ": " + (failures.empty() ? "no address" : failures)};
}

Result<std::unique_ptr<PeerLink>> accept_link(int listen_fd) {
  sockaddr_storage from{};
  socklen_t len = sizeof from;
  const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
      return std::unique_ptr<PeerLink>{};
    return Error{Errc::io_error, "accept on the replication port failed: " + errno_text(errno)};
  }
  return std::make_unique<PeerLink>(fd, describe(reinterpret_cast<sockaddr*>(&from)));
}

namespace {

// Names longer than a frame holds would be cut on the wire while the proofs
// hash them whole: refused before anything is sent.
Status check_identity(const PeerIdentity& me) {
  if (me.cluster.size() > wire::kMaxNameSize || me.node.empty() || me.node.size() > wire::kMaxNameSize)
    return Error{Errc::invalid_argument, "cluster and node names must be 1 to " + std::to_string(wire::kMaxNameSize) +
                                             " bytes (cluster '" + me.cluster + "', node '" + me.node + "')"};
  return {};
}

}  // namespace

Result<std::string> mirror_handshake(PeerLink& link, const PeerIdentity& me, std::chrono::milliseconds timeout) {
  if (auto s = check_identity(me); !s) return s.error();
  const Turn turn{link, Clock::now() + timeout, "to"};
  auto left = [&] { return turn.left(); };
  auto refused = [&](wire::ErrorCode code, const std::string& why) { return turn.refuse(code, why); };
  const wire::Nonce ours = random_nonce();
  link.send(wire::Hello{wire::kVersion, me.cluster, me.node, ours});
  if (auto s = link.flush(left()); !s) return s.error();
  auto m = link.receive(left());
  if (!m) return m.error();
  if (const auto* e = std::get_if<wire::ErrorMsg>(&m.value()))
    return Error{Errc::invalid_argument, "replication link to " + link.peer() + ": the leader refused it (" +
                                             to_string(e->code) + "): " + e->message};
  const auto* w = std::get_if<wire::Welcome>(&m.value());
  if (!w) return refused(wire::ErrorCode::protocol, unexpected(m.value(), "welcome"));
  if (w->version != wire::kVersion)
    return refused(wire::ErrorCode::version, "the leader speaks version " + std::to_string(w->version) +
                                                 ", this mirror version " + std::to_string(wire::kVersion));
  link.set_peer("node '" + w->node + "' (" + link.peer() + ")");
  const auto expected = make_proof(me.secret, PeerRole::leader, ours, w->nonce, me.cluster, w->node);
  if (!proof_matches(expected, w->proof))
    return refused(wire::ErrorCode::auth, "the leader's proof does not match cluster '" + me.cluster + "''s secret");
  link.send(wire::ProofMsg{make_proof(me.secret, PeerRole::mirror, w->nonce, ours, me.cluster, me.node)});
  if (auto s = link.flush(left()); !s) return s.error();
  return w->node;
}

Result<std::string> leader_handshake(PeerLink& link, const PeerIdentity& me, std::chrono::milliseconds timeout) {
  if (auto s = check_identity(me); !s) return s.error();
  const Turn turn{link, Clock::now() + timeout, "from"};
  auto left = [&] { return turn.left(); };
  auto refused = [&](wire::ErrorCode code, const std::string& why) { return turn.refuse(code, why); };
  auto m = link.receive(left());
  if (!m) {
    // Garbage on the replication port: say so to whoever it is.
    if (m.error().code == Errc::corrupt) link.refuse(wire::ErrorCode::protocol, m.error().message, left());
    return m.error();
  }
  const auto* h = std::get_if<wire::Hello>(&m.value());
  if (!h) return refused(wire::ErrorCode::protocol, unexpected(m.value(), "hello"));
  if (h->version != wire::kVersion)
    return refused(wire::ErrorCode::version, "the mirror speaks version " + std::to_string(h->version) +
                                                 ", this leader version " + std::to_string(wire::kVersion));
  if (h->cluster != me.cluster)
    return refused(wire::ErrorCode::auth,
                   "node '" + h->node + "' belongs to cluster '" + h->cluster + "', this node to '" + me.cluster + "'");
  if (h->node.empty()) return refused(wire::ErrorCode::protocol, "the hello names no node");
  const std::string mirror = h->node;
  const wire::Nonce theirs = h->nonce;
  link.set_peer("node '" + mirror + "' (" + link.peer() + ")");
  const wire::Nonce ours = random_nonce();
  link.send(wire::Welcome{wire::kVersion, me.node, ours,
                          make_proof(me.secret, PeerRole::leader, theirs, ours, me.cluster, me.node)});
  if (auto s = link.flush(left()); !s) return s.error();
  auto p = link.receive(left());
  if (!p) return p.error();
  if (const auto* e = std::get_if<wire::ErrorMsg>(&p.value()))
    return Error{Errc::invalid_argument, "replication link from " + link.peer() + ": the mirror refused it (" +
                                             to_string(e->code) + "): " + e->message};
  const auto* proof = std::get_if<wire::ProofMsg>(&p.value());
  if (!proof) return refused(wire::ErrorCode::protocol, unexpected(p.value(), "proof"));
  const auto expected = make_proof(me.secret, PeerRole::mirror, ours, theirs, me.cluster, mirror);
  if (!proof_matches(expected, proof->proof))
    return refused(wire::ErrorCode::auth,
                   "node '" + mirror + "''s proof does not match cluster '" + me.cluster + "''s secret");
  return mirror;
}

}  // namespace ringbus::cluster
