// A link: one TCP connection between a mirror node and a leader node that
// speaks the replication protocol (replication_protocol.h), with its
// handshake (peer_auth.h). The socket is non-blocking: the owner's loop
// polls fd() and calls read_some() / write_some(), or uses the blocking
// helpers (receive(), flush()) with a deadline, as the handshake does.
//
// What the peer sends is decoded by wire::decode and trusted no further;
// a frame it refuses is a Result error naming the peer and the fault.
//
// Threading: one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "replication_protocol.h"
#include "ringbus/result.h"

namespace ringbus::cluster {

// Who this node is, for the handshake.
struct PeerIdentity {
  std::string cluster;
  std::string node;
  std::string secret;  // the cluster's shared secret
};

// An open file that queued file ranges are sent from: closed once the last
// range that needs it is sent (whoever read it may have moved on).
class SharedFile {
 public:
  explicit SharedFile(int fd) noexcept : fd_(fd) {}
  ~SharedFile();
  SharedFile(const SharedFile&) = delete;
  SharedFile& operator=(const SharedFile&) = delete;
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

class PeerLink {
 public:
  // Takes a connected socket (made non-blocking here). `peer` names the other
  // end in errors ("127.0.0.1:7001"); the handshake adds its node name.
  PeerLink(int fd, std::string peer);
  ~PeerLink();
  PeerLink(const PeerLink&) = delete;
  PeerLink& operator=(const PeerLink&) = delete;

  int fd() const noexcept { return fd_; }
  const std::string& peer() const noexcept { return peer_; }
  void set_peer(std::string peer) { peer_ = std::move(peer); }

  // ---- sending: frames are queued, write_some() sends what the socket takes
  void send(const wire::Message& m);
  // A Batches frame of `batches` (whole batches, as they lie on disk).
  void send_batches(std::uint32_t stream, std::uint64_t high_watermark, std::uint64_t log_start,
                    std::span<const std::byte> batches);
  // The same built in place, batch by batch: begin_batches, add_batch (a
  // copy) or add_file_batch (sent from the file by sendfile, no copy in
  // user space) for each, then end_batches (or drop_batches to send
  // nothing after all). No write_some() while a frame is being built.
  void begin_batches();
  void add_batch(std::span<const std::byte> batch);
  // `size` bytes of `file` from `offset`, which must stay as they are until
  // sent (a log below its written offset does).
  void add_file_batch(const std::shared_ptr<const SharedFile>& file, std::uint64_t offset, std::size_t size);
  std::size_t batches_added() const noexcept { return batches_added_; }
  void end_batches(std::uint32_t stream, std::uint64_t high_watermark, std::uint64_t log_start);
  void drop_batches();
  // Bytes queued and not yet sent.
  std::size_t queued() const noexcept { return queued_; }
  // Sends what the socket takes now; an error if the connection failed (or
  // a file to send from ended early).
  Status write_some();
  // Sends everything queued, waiting at most `timeout`.
  Status flush(std::chrono::milliseconds timeout);

  // ---- receiving
  // Reads what the socket has now. False once the peer closed the
  // connection (what it sent before is still there for next()).
  Result<bool> read_some();
  // The next whole frame read, or nothing yet. Views in the message point
  // into the link's buffer: valid until the next call of next() or
  // read_some(). A frame the decoder refuses is an error.
  Result<std::optional<wire::Message>> next();
  // Waits at most `timeout` for the next frame; the peer closing first is
  // an error.
  Result<wire::Message> receive(std::chrono::milliseconds timeout);

  // An error frame to the peer (best effort, within `timeout`), for a
  // refusal it should read before the link closes.
  void refuse(wire::ErrorCode code, const std::string& message, std::chrono::milliseconds timeout);

  // ---- liveness: a `batches` frame for stream 0 with no batches is a
  // heartbeat; next() takes it and hands nothing out.
  // Queues a heartbeat if nothing was sent for `every`.
  void keep_alive(std::chrono::milliseconds every);
  // True if no frame came for `idle` (a peer gone without a word, a path
  // that drops everything).
  bool quiet_for(std::chrono::milliseconds idle) const;

 private:
  Status fail(const std::string& what) const;
  bool wait(short events, std::chrono::steady_clock::time_point deadline) const;

  // What is queued, in order: bytes of ours, or a range of a file. Sent
  // pieces are dropped from the front (no byte is moved).
  struct Piece {
    std::vector<std::byte> bytes;
    std::shared_ptr<const SharedFile> file;  // set: the piece is [offset, offset + size) of it
    std::uint64_t offset = 0;
    std::size_t size = 0;  // of the file range
    std::size_t sent = 0;
    std::size_t length() const noexcept { return file ? size : bytes.size(); }
  };
  // The last piece if it holds bytes, else a new one.
  std::vector<std::byte>& tail_bytes();
  // Sends some of the front piece; false when the socket takes no more.
  Result<bool> send_front();

  int fd_;
  std::string peer_;
  std::deque<Piece> out_;
  std::size_t queued_ = 0;
  // The Batches frame being built: its head's piece and place in it.
  std::size_t head_piece_ = 0;
  std::size_t head_at_ = 0;
  std::size_t batches_added_ = 0;
  std::vector<std::byte> in_;
  std::size_t in_start_ = 0;  // the first byte not yet handed out by next()
  std::size_t in_end_ = 0;    // bytes read up to here
  std::size_t in_need_ = 0;   // the frame at in_start_ needs this many bytes (the decoder said)
  std::chrono::steady_clock::time_point last_sent_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_heard_ = std::chrono::steady_clock::now();
};

// Connects to `address` ("host:port", IPv4 or a name) within `timeout`.
Result<std::unique_ptr<PeerLink>> dial(const std::string& address, std::chrono::milliseconds timeout);

// A listening TCP socket on `address` ("host:port"; port 0: any free one),
// and the port it got.
struct Listener {
  int fd = -1;
  std::uint16_t port = 0;
};
Result<Listener> listen_on(const std::string& address);
// Accepts a connection waiting on the listener (non-blocking: nothing if
// none waits).
Result<std::unique_ptr<PeerLink>> accept_link(int listen_fd);

// The handshake, mirror side: hello, the leader's welcome checked, proof.
// The leader's node name, or an error naming what failed (after telling
// the peer where it should know).
Result<std::string> mirror_handshake(PeerLink& link, const PeerIdentity& me, std::chrono::milliseconds timeout);
// The leader side: a hello checked (magic, version, cluster), welcome, the
// mirror's proof checked. The mirror's node name, or an error (the mirror
// was told why).
Result<std::string> leader_handshake(PeerLink& link, const PeerIdentity& me, std::chrono::milliseconds timeout);

}  // namespace ringbus::cluster
