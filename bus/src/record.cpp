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

std::size_t encoded_headers_size(std::span<const Header> headers) noexcept {
  std::size_t n = 0;
  for (const Header& h : headers) {
    if (h.name.size() > UINT16_MAX || h.value.size() > UINT32_MAX) return SIZE_MAX;
    n += kHeaderPrefix + h.name.size() + h.value.size();
  }
  return n;
}

void encode_headers(std::span<const Header> headers, std::byte* dst) noexcept {
  for (const Header& h : headers) {
    const auto name_len = static_cast<std::uint16_t>(h.name.size());
    const auto value_len = static_cast<std::uint32_t>(h.value.size());
    std::memcpy(dst, &name_len, 2);
    std::memcpy(dst + 2, &value_len, 4);
    std::memcpy(dst + kHeaderPrefix, h.name.data(), name_len);
    std::memcpy(dst + kHeaderPrefix + name_len, h.value.data(), value_len);
    dst += kHeaderPrefix + name_len + value_len;
  }
}

}  // namespace detail

HeaderView::iterator::iterator(std::string_view rest) : rest_(rest), at_end_(false) { decode(); }

void HeaderView::iterator::decode() {
  if (rest_.size() < detail::kHeaderPrefix) {
    at_end_ = true;  // a clean end (empty) or a truncated prefix
    return;
  }
  std::uint16_t name_len = 0;
  std::uint32_t value_len = 0;
  std::memcpy(&name_len, rest_.data(), 2);
  std::memcpy(&value_len, rest_.data() + 2, 4);
  if (rest_.size() - detail::kHeaderPrefix < static_cast<std::size_t>(name_len) + value_len) {
    at_end_ = true;  // malformed: lengths run past the end
    return;
  }
  current_.name = rest_.substr(detail::kHeaderPrefix, name_len);
  current_.value = rest_.substr(detail::kHeaderPrefix + name_len, value_len);
}

HeaderView::iterator& HeaderView::iterator::operator++() {
  rest_.remove_prefix(detail::kHeaderPrefix + current_.name.size() + current_.value.size());
  decode();
  return *this;
}

bool HeaderView::valid() const {
  // The iterator stops at the first malformed header; valid if it used all.
  std::size_t used = 0;
  for (const Header& h : *this) used += detail::kHeaderPrefix + h.name.size() + h.value.size();
  return used == encoded_.size();
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
