// The replication protocol between a partition's leader and its mirrors:
// frames, their encoder, and a decoder that trusts nothing (it reads what
// any peer, or anything that connects to the replication port, sends; fuzz
// target tests/fuzz/replication_frame_fuzz.cpp). Spec: cluster/README.md,
// "The replication protocol".
//
// A frame is `u32 length` (the bytes after this field), `u8 type`, then the
// type's fields, big-endian (network order), strings as `u16 size` + bytes.
// Every field is read; a frame with bytes left over, or short of a field,
// is refused.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace ringbus::cluster::wire {

inline constexpr std::uint32_t kMagic = 0x52425250;  // "RBRP", first field of Hello
inline constexpr std::uint16_t kVersion = 2;  // 2: the groups frame
inline constexpr std::size_t kFrameHeaderSize = 5;  // u32 length + u8 type
// The largest length field: a Batches frame holds at most kMaxBatchesBytes
// of batches (a leader sends a larger batch alone).
inline constexpr std::uint32_t kMaxFrameLength = 65U << 20;
inline constexpr std::uint32_t kMaxBatchesBytes = 64U << 20;
inline constexpr std::size_t kMaxNameSize = 255;     // cluster, node and topic names
inline constexpr std::size_t kMaxMessageSize = 1024;  // an Error's text
inline constexpr std::size_t kNonceSize = 16;
inline constexpr std::size_t kProofSize = 32;  // HMAC-SHA256
// A consumer group's .offsets file: its header, two names and 1024 offsets
// fit (io/src/group_offsets.h).
inline constexpr std::size_t kMaxGroupFileSize = 16U << 10;

using Nonce = std::array<std::byte, kNonceSize>;
using Proof = std::array<std::byte, kProofSize>;

enum class Type : std::uint8_t {
  hello = 1,    // mirror -> leader, first
  welcome,      // leader -> mirror: the leader's proof
  proof,        // mirror -> leader: the mirror's proof
  follow,       // mirror -> leader: open a stream for one partition
  following,    // leader -> mirror: the stream is open
  epoch_query,  // mirror -> leader: where does this epoch end? (KIP-101/279)
  epoch_end,    // leader -> mirror
  fetch,        // mirror -> leader: stream batches from this offset on
  batches,      // leader -> mirror: whole batches, the high watermark
  ack,          // mirror -> leader: what the mirror has written and made durable
  error,        // either way: a refusal, for a stream or (stream 0) the link
  groups,       // leader -> mirror: a topic's consumer groups, every one
};

struct Hello {
  std::uint16_t version = kVersion;
  std::string cluster;
  std::string node;
  Nonce nonce{};
};
struct Welcome {
  std::uint16_t version = kVersion;
  std::string node;
  Nonce nonce{};
  Proof proof{};
};
struct ProofMsg {
  Proof proof{};
};
struct Follow {
  std::uint32_t stream = 0;  // the mirror's name for it, not 0
  std::string topic;
  std::uint64_t topic_id = 0;
  std::uint32_t partition = 0;
};
struct Following {
  std::uint32_t stream = 0;
  std::int32_t leader_epoch = 0;
  std::uint64_t log_start = 0;
  std::uint64_t log_end = 0;
  std::uint64_t high_watermark = 0;
};
struct EpochQuery {
  std::uint32_t stream = 0;
  std::int32_t epoch = 0;
};
struct EpochEnd {
  std::uint32_t stream = 0;
  std::int32_t epoch = -1;  // the leader's largest epoch at or below the query's; -1: none
  std::uint64_t end_offset = 0;
};
struct Fetch {
  std::uint32_t stream = 0;
  std::uint64_t offset = 0;
};
struct Batches {
  std::uint32_t stream = 0;
  std::uint64_t high_watermark = 0;
  std::uint64_t log_start = 0;
  std::span<const std::byte> batches;  // whole v2 batches, contiguous offsets (a view into the input)
};
struct Ack {
  std::uint32_t stream = 0;
  std::uint64_t written = 0;  // the mirror's log holds every offset below
  std::uint64_t durable = 0;  // ... durably, by the topic's policy
};
enum class ErrorCode : std::uint16_t {
  protocol = 1,   // a frame the peer could not decode, or out of turn
  version,        // another protocol version
  auth,           // wrong cluster, or a proof that does not match the secret
  unknown_topic,  // no such topic (or another topic id) on the leader
  not_leader,     // this node does not lead the partition
  out_of_range,   // a fetch below the log's start or past its end
  bad_batch,      // a batch the mirror's log refused (CRC, gap, epoch)
  storage,        // the mirror cannot write (disk full, I/O error)
  shutting_down,
};
const char* to_string(ErrorCode c) noexcept;
struct ErrorMsg {
  std::uint32_t stream = 0;  // 0: the whole link
  ErrorCode code = ErrorCode::protocol;
  std::string message;
};

// The complete set of a topic's consumer groups, as the leader's group
// files hold them, sent on the stream of the topic's partition 0 whenever
// one changes: the mirror keeps exactly these (cluster/README.md, "Consumer
// groups across a failover").
struct Groups {
  std::uint32_t stream = 0;
  std::vector<std::span<const std::byte>> files;  // each a whole .offsets file (views into the input)
};

using Message = std::variant<Hello, Welcome, ProofMsg, Follow, Following, EpochQuery, EpochEnd, Fetch, Batches,
                             Ack, ErrorMsg, Groups>;
Type type_of(const Message& m) noexcept;
const char* to_string(Type t) noexcept;

// Appends one frame holding `m` to `out`. Names and texts longer than their
// limits are cut to them; a Batches frame's batches are copied.
void encode(const Message& m, std::vector<std::byte>& out);
// The head of a Batches frame whose `batches_size` bytes of batches follow
// it, so that a leader can send them from where they lie (writev).
inline constexpr std::size_t kBatchesHeadSize = kFrameHeaderSize + 4 + 8 + 8;
std::array<std::byte, kBatchesHeadSize> batches_head(std::uint32_t stream, std::uint64_t high_watermark,
                                                     std::uint64_t log_start, std::uint32_t batches_size) noexcept;

struct Decoded {
  enum class State : std::uint8_t { need_more, ok, bad };
  State state = State::need_more;
  std::size_t size = 0;   // the frame's bytes (ok), or how many are needed at least (need_more)
  Message message;        // ok: views point into the input
  std::string error;      // bad: what is wrong, for the log and the peer
};
// Decodes the frame at the start of `in`. need_more while it is not whole
// (its length field says how long it is; one over kMaxFrameLength is bad at
// once). A Batches frame's batches are checked for framing only: each a v2
// header (magic 2, a batchLength that fits), wholly inside, each starting at
// the offset after the one before. CRCs and records are the log writer's
// to check.
Decoded decode(std::span<const std::byte> in);

}  // namespace ringbus::cluster::wire
