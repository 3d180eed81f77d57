#include "replication_protocol.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "byte_order.h"
#include "record_batch.h"

namespace ringbus::cluster::wire {

namespace {

using detail::load_be;
using detail::store_be;

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out), start_(out.size()) {
    out_.resize(start_ + kFrameHeaderSize);
  }
  template <class T>
  void put(T v) {
    const std::size_t at = out_.size();
    out_.resize(at + sizeof(T));
    store_be(out_.data() + at, v);
  }
  void bytes(std::span<const std::byte> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void str(const std::string& s, std::size_t limit) {
    const std::size_t n = std::min(s.size(), limit);
    put<std::uint16_t>(static_cast<std::uint16_t>(n));
    bytes(std::as_bytes(std::span(s.data(), n)));
  }
  // Writes the length and type in front of what was put.
  void finish(Type t) {
    store_be(out_.data() + start_, static_cast<std::uint32_t>(out_.size() - start_ - 4));
    out_[start_ + 4] = static_cast<std::byte>(t);
  }

 private:
  std::vector<std::byte>& out_;
  std::size_t start_;
};

// Reads a frame's body; the first field that does not fit, or a name over
// its limit, sets the error and every later read returns zeros.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> b) : b_(b) {}
  template <class T>
  T get(const char* field) {
    if (!take(sizeof(T), field)) return T{};
    return load_be<T>(b_.data() + at_ - sizeof(T));
  }
  template <std::size_t N>
  std::array<std::byte, N> fixed(const char* field) {
    std::array<std::byte, N> a{};
    if (take(N, field)) std::memcpy(a.data(), b_.data() + at_ - N, N);
    return a;
  }
  std::string str(const char* field, std::size_t limit) {
    const auto n = get<std::uint16_t>(field);
    if (!error_.empty()) return {};
    if (n > limit) {
      fail(std::string(field) + " is " + std::to_string(n) + " bytes, over the limit of " + std::to_string(limit));
      return {};
    }
    if (!take(n, field)) return {};
    return std::string(reinterpret_cast<const char*>(b_.data() + at_ - n), n);
  }
  std::span<const std::byte> span(std::size_t n, const char* field) {
    if (!take(n, field)) return {};
    return b_.subspan(at_ - n, n);
  }
  std::span<const std::byte> rest() {
    auto r = b_.subspan(at_);
    at_ = b_.size();
    return r;
  }
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }
  bool failed() const noexcept { return !error_.empty(); }
  // The error, or one for bytes left over.
  std::string finish() {
    if (error_.empty() && at_ != b_.size())
      error_ = std::to_string(b_.size() - at_) + " bytes left over after the last field";
    return error_;
  }

 private:
  bool take(std::size_t n, const char* field) {
    if (!error_.empty()) return false;
    if (b_.size() - at_ < n) {
      fail(std::string("truncated in ") + field);
      return false;
    }
    at_ += n;
    return true;
  }
  std::span<const std::byte> b_;
  std::size_t at_ = 0;
  std::string error_;
};

// Each batch a v2 header wholly inside, starting where the one before ends.
std::string check_batches(std::span<const std::byte> b) {
  std::uint64_t expect = 0;
  for (std::size_t at = 0, n = 0; at < b.size(); ++n) {
    log::v2::BatchHeader h;
    const auto where = "batch " + std::to_string(n) + " (byte " + std::to_string(at) + ")";
    if (!log::v2::peek_header(b.subspan(at), h)) return where + " is cut short in its header";
    if (h.magic != log::v2::kMagic) return where + " has magic " + std::to_string(h.magic) + ", not 2";
    if (h.batch_length < static_cast<std::int32_t>(log::v2::kHeaderSize - log::v2::kLogOverhead) ||
        h.size() > b.size() - at)
      return where + " has batchLength " + std::to_string(h.batch_length) + ", which does not fit the frame";
    if (h.base_offset < 0 || h.last_offset_delta < 0)
      return where + " has a negative base offset or offset delta";
    const auto base = static_cast<std::uint64_t>(h.base_offset);
    if (n > 0 && base != expect)
      return where + " starts at offset " + std::to_string(base) + ", not " + std::to_string(expect) +
             " where the one before ends";
    expect = h.next_offset();
    at += h.size();
  }
  return {};
}

Message decode_body(Type t, Reader& r) {
  switch (t) {
    case Type::hello: {
      Hello m;
      if (r.get<std::uint32_t>("hello.magic") != kMagic) r.fail("not a ringbus replication hello (magic)");
      m.version = r.get<std::uint16_t>("hello.version");
      m.cluster = r.str("hello.cluster", kMaxNameSize);
      m.node = r.str("hello.node", kMaxNameSize);
      m.nonce = r.fixed<kNonceSize>("hello.nonce");
      return m;
    }
    case Type::welcome: {
      Welcome m;
      m.version = r.get<std::uint16_t>("welcome.version");
      m.node = r.str("welcome.node", kMaxNameSize);
      m.nonce = r.fixed<kNonceSize>("welcome.nonce");
      m.proof = r.fixed<kProofSize>("welcome.proof");
      return m;
    }
    case Type::proof:
      return ProofMsg{r.fixed<kProofSize>("proof.proof")};
    case Type::follow: {
      Follow m;
      m.stream = r.get<std::uint32_t>("follow.stream");
      m.topic = r.str("follow.topic", kMaxNameSize);
      m.topic_id = r.get<std::uint64_t>("follow.topic_id");
      m.partition = r.get<std::uint32_t>("follow.partition");
      if (m.stream == 0) r.fail("follow.stream is 0 (stream 0 is the link)");
      return m;
    }
    case Type::following: {
      Following m;
      m.stream = r.get<std::uint32_t>("following.stream");
      m.leader_epoch = r.get<std::int32_t>("following.leader_epoch");
      m.log_start = r.get<std::uint64_t>("following.log_start");
      m.log_end = r.get<std::uint64_t>("following.log_end");
      m.high_watermark = r.get<std::uint64_t>("following.high_watermark");
      return m;
    }
    case Type::epoch_query: {
      EpochQuery m;
      m.stream = r.get<std::uint32_t>("epoch_query.stream");
      m.epoch = r.get<std::int32_t>("epoch_query.epoch");
      return m;
    }
    case Type::epoch_end: {
      EpochEnd m;
      m.stream = r.get<std::uint32_t>("epoch_end.stream");
      m.epoch = r.get<std::int32_t>("epoch_end.epoch");
      m.end_offset = r.get<std::uint64_t>("epoch_end.end_offset");
      return m;
    }
    case Type::fetch: {
      Fetch m;
      m.stream = r.get<std::uint32_t>("fetch.stream");
      m.offset = r.get<std::uint64_t>("fetch.offset");
      return m;
    }
    case Type::batches: {
      Batches m;
      m.stream = r.get<std::uint32_t>("batches.stream");
      m.high_watermark = r.get<std::uint64_t>("batches.high_watermark");
      m.log_start = r.get<std::uint64_t>("batches.log_start");
      m.batches = r.rest();
      if (m.batches.size() > kMaxBatchesBytes) r.fail("batches: more than the 64 MiB a frame may hold");
      if (auto why = check_batches(m.batches); !why.empty()) r.fail("batches: " + why);
      return m;
    }
    case Type::ack: {
      Ack m;
      m.stream = r.get<std::uint32_t>("ack.stream");
      m.written = r.get<std::uint64_t>("ack.written");
      m.durable = r.get<std::uint64_t>("ack.durable");
      if (m.durable > m.written) r.fail("ack.durable is past ack.written");
      return m;
    }
    case Type::error: {
      ErrorMsg m;
      m.stream = r.get<std::uint32_t>("error.stream");
      const auto code = r.get<std::uint16_t>("error.code");
      if (code < 1 || code > static_cast<std::uint16_t>(ErrorCode::shutting_down))
        r.fail("error.code " + std::to_string(code) + " is unknown");
      m.code = static_cast<ErrorCode>(code);
      m.message = r.str("error.message", kMaxMessageSize);
      return m;
    }
    case Type::groups: {
      Groups m;
      m.stream = r.get<std::uint32_t>("groups.stream");
      const auto count = r.get<std::uint32_t>("groups.count");
      // Each file takes at least its size field: a count past that is a lie,
      // refused before anything is reserved for it.
      if (count > kMaxFrameLength / 4) r.fail("groups.count " + std::to_string(count) + " cannot fit a frame");
      for (std::uint32_t i = 0; i < count && !r.failed(); ++i) {
        const auto size = r.get<std::uint32_t>("groups.file_size");
        if (size > kMaxGroupFileSize) {
          r.fail("groups: file " + std::to_string(i) + " is " + std::to_string(size) + " bytes, over the limit of " +
                 std::to_string(kMaxGroupFileSize));
        }
        const auto file = r.span(size, "groups.file");
        if (!r.failed()) m.files.push_back(file);
      }
      return m;
    }
  }
  return Hello{};  // not reached: the type was checked
}

}  // namespace

const char* to_string(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::protocol: return "protocol";
    case ErrorCode::version: return "version";
    case ErrorCode::auth: return "auth";
    case ErrorCode::unknown_topic: return "unknown_topic";
    case ErrorCode::not_leader: return "not_leader";
    case ErrorCode::out_of_range: return "out_of_range";
    case ErrorCode::bad_batch: return "bad_batch";
    case ErrorCode::storage: return "storage";
    case ErrorCode::shutting_down: return "shutting_down";
  }
  return "unknown";
}


const char* to_string(Type t) noexcept {
  switch (t) {
    case Type::hello: return "hello";
    case Type::welcome: return "welcome";
    case Type::proof: return "proof";
    case Type::follow: return "follow";
    case Type::following: return "following";
    case Type::epoch_query: return "epoch_query";
    case Type::epoch_end: return "epoch_end";
    case Type::fetch: return "fetch";
    case Type::batches: return "batches";
    case Type::ack: return "ack";
    case Type::error: return "error";
    case Type::groups: return "groups";
  }
  return "unknown";
}

Type type_of(const Message& m) noexcept { return static_cast<Type>(m.index() + 1); }

void encode(const Message& m, std::vector<std::byte>& out) {
  Writer w(out);
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Hello>) {
          w.put(kMagic);
          w.put(v.version);
          w.str(v.cluster, kMaxNameSize);
          w.str(v.node, kMaxNameSize);
          w.bytes(v.nonce);
        } else if constexpr (std::is_same_v<T, Welcome>) {
          w.put(v.version);
          w.str(v.node, kMaxNameSize);
          w.bytes(v.nonce);
          w.bytes(v.proof);
        } else if constexpr (std::is_same_v<T, ProofMsg>) {
          w.bytes(v.proof);
        } else if constexpr (std::is_same_v<T, Follow>) {
          w.put(v.stream);
          w.str(v.topic, kMaxNameSize);
          w.put(v.topic_id);
          w.put(v.partition);
        } else if constexpr (std::is_same_v<T, Following>) {
          w.put(v.stream);
          w.put(v.leader_epoch);
          w.put(v.log_start);
          w.put(v.log_end);
          w.put(v.high_watermark);
        } else if constexpr (std::is_same_v<T, EpochQuery>) {
          w.put(v.stream);
          w.put(v.epoch);
        } else if constexpr (std::is_same_v<T, EpochEnd>) {
          w.put(v.stream);
          w.put(v.epoch);
          w.put(v.end_offset);
        } else if constexpr (std::is_same_v<T, Fetch>) {
          w.put(v.stream);
          w.put(v.offset);
        } else if constexpr (std::is_same_v<T, Batches>) {
          w.put(v.stream);
          w.put(v.high_watermark);
          w.put(v.log_start);
          w.bytes(v.batches);
        } else if constexpr (std::is_same_v<T, Ack>) {
          w.put(v.stream);
          w.put(v.written);
          w.put(v.durable);
        } else if constexpr (std::is_same_v<T, ErrorMsg>) {
          w.put(v.stream);
          w.put(static_cast<std::uint16_t>(v.code));
          w.str(v.message, kMaxMessageSize);
        } else {
          static_assert(std::is_same_v<T, Groups>);
          w.put(v.stream);
          w.put(static_cast<std::uint32_t>(v.files.size()));
          for (const auto& f : v.files) {
            w.put(static_cast<std::uint32_t>(f.size()));
            w.bytes(f);
          }
        }
      },
      m);
  w.finish(type_of(m));
}

std::array<std::byte, kBatchesHeadSize> batches_head(std::uint32_t stream, std::uint64_t high_watermark,
                                                     std::uint64_t log_start, std::uint32_t batches_size) noexcept {
  std::array<std::byte, kBatchesHeadSize> h{};
  store_be<std::uint32_t>(h.data(), static_cast<std::uint32_t>(kBatchesHeadSize - 4 + batches_size));
  h[4] = static_cast<std::byte>(Type::batches);
  store_be(h.data() + 5, stream);
  store_be(h.data() + 9, high_watermark);
  store_be(h.data() + 17, log_start);
  return h;
}

Decoded decode(std::span<const std::byte> in) {
  Decoded d;
  if (in.size() < kFrameHeaderSize) {
    d.size = kFrameHeaderSize;
    return d;
  }
  const auto length = load_be<std::uint32_t>(in.data());
  const auto type = static_cast<std::uint8_t>(in[4]);
  if (length > kMaxFrameLength || length < 1) {
    d.state = Decoded::State::bad;
    d.error = "frame length " + std::to_string(length) + " is outside 1.." + std::to_string(kMaxFrameLength);
    return d;
  }
  if (type < 1 || type > static_cast<std::uint8_t>(Type::groups)) {
    d.state = Decoded::State::bad;
    d.error = "frame type " + std::to_string(type) + " is unknown";
    return d;
  }
  d.size = 4 + std::size_t{length};
  if (in.size() < d.size) return d;
  Reader r(in.subspan(kFrameHeaderSize, d.size - kFrameHeaderSize));
  d.message = decode_body(static_cast<Type>(type), r);
  if (auto why = r.finish(); !why.empty()) {
    d.state = Decoded::State::bad;
    d.error = std::string(to_string(static_cast<Type>(type))) + " frame: " + why;
    return d;
  }
  d.state = Decoded::State::ok;
  return d;
}

}  // namespace ringbus::cluster::wire
