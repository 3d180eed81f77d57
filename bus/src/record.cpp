#include <cstdint>
#include <cstring>

#include "record_headers.h"
#include "ringbus/record.h"

namespace ringbus {

const char* to_string(PublishStatus s) noexcept {
  switch (s) {
    case PublishStatus::ok: return "ok";
    case PublishStatus::back_pressured:
      return "back-pressured (the ring is full up to its slowest gating reader, or to a claim still being written)";
    case PublishStatus::timed_out: return "timed out waiting for space in the ring";
    case PublishStatus::record_too_large: return "record too large for the topic's max record size";
    case PublishStatus::invalid_partition: return "no such partition";
    case PublishStatus::claim_revoked: return "claim revoked (held past the abandoned-claim timeout)";
    case PublishStatus::topic_deleted: return "topic deleted";
    case PublishStatus::invalid_argument: return "invalid argument";
    case PublishStatus::no_commit_log: return "the topic has no commit log (the broker has no data directory)";
    case PublishStatus::log_failed: return "the commit log cannot write (disk full or I/O error; see the broker's log)";
    case PublishStatus::partition_offline: return "the partition is offline: its commit log could not be opened (see the broker's log)";
    case PublishStatus::no_broker: return "no broker is running for this instance (start ringbusd: it writes what the ring holds)";
    case PublishStatus::not_enough_replicas: return "fewer replicas are in sync than the topic's min_insync (ringbus cluster status says which)";
    case PublishStatus::not_leader: return "another node of the cluster leads the topic (this host has a mirror's copy, or stopped leading it)";
    case PublishStatus::partition_owned: return "an exclusive producer owns the partition (ProducerOptions::exclusive)";
  }
  return "unknown";
}

const char* to_string(PollStatus s) noexcept {
  switch (s) {
    case PollStatus::ok: return "ok";
    case PollStatus::lapped: return "lapped (producers overwrote records this consumer had not read)";
    case PollStatus::topic_deleted: return "topic deleted";
    case PollStatus::corrupt: return "corrupt record (skipped past it)";
    case PollStatus::out_of_range: return "offset out of range (deleted by retention; resumed at the earliest)";
  }
  return "unknown";
}

const char* to_string(WaitStatus s) noexcept {
  switch (s) {
    case WaitStatus::ready: return "ready";
    case WaitStatus::timed_out: return "timed out";
    case WaitStatus::no_broker: return "no broker is alive (records are not made durable until one starts)";
  }
  return "unknown";
}

namespace detail {

namespace {
std::uint64_t zigzag(std::int64_t v) noexcept {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
}  // namespace

std::size_t varint_size(std::int64_t v) noexcept {
  std::uint64_t z = zigzag(v);
  std::size_t n = 1;
  while (z >= 0x80) {
    z >>= 7;
    ++n;
  }
  return n;
}

std::byte* put_varint(std::byte* dst, std::int64_t v) noexcept {
  std::uint64_t z = zigzag(v);
  while (z >= 0x80) {
    *dst++ = static_cast<std::byte>((z & 0x7f) | 0x80);
    z >>= 7;
  }
  *dst++ = static_cast<std::byte>(z);
  return dst;
}

std::size_t encoded_headers_size(std::span<const Header> headers) noexcept {
  std::size_t n = varint_size(static_cast<std::int64_t>(headers.size()));
  for (const Header& h : headers) {
    if (h.name.size() > INT32_MAX || h.value.size() > INT32_MAX) return SIZE_MAX;
    const auto name = static_cast<std::int64_t>(h.name.size());
    const auto value = static_cast<std::int64_t>(h.value.size());
    n += varint_size(name) + h.name.size() + varint_size(value) + h.value.size();
  }
  return n;
}

void encode_headers(std::span<const Header> headers, std::byte* dst) noexcept {
  dst = put_varint(dst, static_cast<std::int64_t>(headers.size()));
  for (const Header& h : headers) {
    dst = put_varint(dst, static_cast<std::int64_t>(h.name.size()));
    if (!h.name.empty()) std::memcpy(dst, h.name.data(), h.name.size());
    dst += h.name.size();
    dst = put_varint(dst, static_cast<std::int64_t>(h.value.size()));
    if (!h.value.empty()) std::memcpy(dst, h.value.data(), h.value.size());
    dst += h.value.size();
  }
}

}  // namespace detail

namespace {
const std::byte* bytes_of(std::string_view s) { return reinterpret_cast<const std::byte*>(s.data()); }
}  // namespace

HeaderView::iterator::iterator(std::string_view rest, std::uint32_t count) : rest_(rest), remaining_(count), at_end_(false) {
  decode();
}

void HeaderView::iterator::decode() {
  if (remaining_ == 0) {
    at_end_ = true;
    return;
  }
  const std::byte* p = bytes_of(rest_);
  const std::byte* end = p + rest_.size();
  std::int64_t name_len = 0;
  std::int64_t value_len = 0;
  if (!detail::read_varint(p, end, name_len, 5) || name_len < 0 || name_len > end - p) {
    at_end_ = true;  // malformed: valid() says so
    return;
  }
  const std::byte* name = p;
  p += name_len;
  if (!detail::read_varint(p, end, value_len, 5) || value_len < -1 || value_len > end - p) {
    at_end_ = true;
    return;
  }
  current_.name = std::string_view(reinterpret_cast<const char*>(name), static_cast<std::size_t>(name_len));
  current_.value = std::string_view(reinterpret_cast<const char*>(p), value_len < 0 ? 0 : static_cast<std::size_t>(value_len));
  if (value_len > 0) p += value_len;
  next_ = static_cast<std::size_t>(p - bytes_of(rest_));
}

HeaderView::iterator& HeaderView::iterator::operator++() {
  rest_.remove_prefix(next_);
  --remaining_;
  decode();
  return *this;
}

HeaderView::iterator HeaderView::begin() const {
  const std::byte* p = bytes_of(encoded_);
  std::int64_t count = 0;
  if (encoded_.empty() || !detail::read_varint(p, p + encoded_.size(), count, 5) || count <= 0) return iterator();
  return iterator(encoded_.substr(static_cast<std::size_t>(p - bytes_of(encoded_))), static_cast<std::uint32_t>(std::min<std::int64_t>(count, INT32_MAX)));
}

bool HeaderView::valid() const {
  // No headers: nothing stored (a ring frame) or a count of 0 (a batch's record).
  if (encoded_.empty() || (encoded_.size() == 1 && encoded_[0] == '\0')) return true;
  const std::byte* p = bytes_of(encoded_);
  const std::byte* end = p + encoded_.size();
  std::int64_t count = 0;
  if (!detail::read_varint(p, end, count, 5) || count < 0) return false;
  // The iterator stops at the first malformed header: valid if it read the
  // count it was told and used every byte.
  std::int64_t seen = 0;
  const char* last = reinterpret_cast<const char*>(p);
  for (auto it = begin(); it != this->end(); ++it) {
    ++seen;
    last = it->value.data() + it->value.size();
  }
  if (seen != count) return false;
  if (count == 0) return p == end;
  return last == encoded_.data() + encoded_.size();
}

bool HeaderView::find(std::string_view name, std::string_view& value) const {
  for (const Header& h : *this) {
    if (h.name == name) {
      value = h.value;
      return true;
    }
  }
  return false;
}

}  // namespace ringbus
