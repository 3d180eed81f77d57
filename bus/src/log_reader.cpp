#include "log_reader.h"

#include <algorithm>
#include <cstring>

#include "segment_files.h"

namespace ringbus::log {

namespace {
// Reads are at least this large: sequential catch-up reads stream.
constexpr std::size_t kReadChunk = 1 << 20;
// A read ahead holds the largest batch seen, up to this (a larger one is
// completed by a read of its rest, as without a read ahead).
constexpr std::size_t kMaxReadAhead = 4 * kReadChunk;
// next_unread(): after a batch this large, the next header is read alone,
// in a read this small (the batch's bytes are not needed here).
constexpr std::size_t kHeaderOnlyFrom = 16 << 10;
constexpr std::size_t kHeaderRead = 4 << 10;
}  // namespace

LogReader::LogReader(FileIo& io, std::string dir, bool read_ahead)
    : io_(io), dir_(std::move(dir)), read_ahead_(read_ahead) {}

LogReader::~LogReader() { close_segment(); }

ReadStatus LogReader::fail(ReadStatus s, std::string message) {
  error_ = std::move(message);
  return s;
}

void LogReader::close_segment() {
  settle_ahead();  // its buffer and handle are in use until it completes
  ahead_len_ = -1;
  if (fd_ >= 0) io_.close(fd_);
  fd_ = -1;
  buf_len_ = 0;
}

ReadStatus LogReader::refresh() {
  auto list = list_segments(io_, dir_);
  if (!list) return fail(ReadStatus::error, list.error().message);
  segments_ = std::move(list.value());
  if (!segments_.empty()) earliest_ = segments_.front();
  return ReadStatus::end;
}

ReadStatus LogReader::open_segment(std::size_t i) {
  close_segment();
  seg_ = i;
  const std::string path = segment_path(dir_, segments_[i], kLogExt);
  auto fd = io_.open_read(path);
  if (!fd) {
    // Retention deleted it between the listing and the open.
    if (fd.error().code == Errc::not_found) return fail(ReadStatus::out_of_range, fd.error().message);
    return fail(ReadStatus::error, fd.error().message);
  }
  fd_ = fd.value();
  io_.advise_sequential(fd_);  // consumers read segments through, a batch after the other
  const std::int64_t got = load(0, sizeof(SegmentHeader), kReadChunk);
  if (got < 0) return ReadStatus::error;
  if (auto s = check_segment_header(std::span(buf_.get(), static_cast<std::size_t>(got)), path, segments_[i]); !s) {
    // Nothing in a segment with a bad header is trusted: closed, so that
    // skip_corrupt goes on at the next segment instead of scanning this
    // one from the last segment's position for batches that look whole.
    close_segment();
    return fail(ReadStatus::corrupt, s.error().message);
  }
  SegmentHeader h;
  std::memcpy(&h, buf_.get(), sizeof h);
  format_ = h.version;
  pos_ = sizeof(SegmentHeader);
  next_offset_ = segments_[i];
  return ReadStatus::batch;
}

std::int64_t LogReader::load(std::uint64_t pos, std::size_t need, std::size_t chunk) {
  if (pos >= buf_at_ && pos + need <= buf_at_ + buf_len_) return static_cast<std::int64_t>(buf_at_ + buf_len_ - pos);
  if (take_ahead(pos) && pos + need <= buf_at_ + buf_len_) {
    start_ahead(pos);
    return static_cast<std::int64_t>(buf_len_);
  }
  const std::size_t want = std::max(need, chunk);
  // What the buffer already holds from `pos` on is kept, not read again: a
  // batch whose header was read with the chunk before it but that runs past
  // the chunk's end (the flusher's batches are a little over 1 MiB) costs
  // one read of the rest, not a second read of the whole.
  const std::size_t kept =
      pos >= buf_at_ && pos < buf_at_ + buf_len_ ? static_cast<std::size_t>(buf_at_ + buf_len_ - pos) : 0;
  if (buf_capacity_ < want) {
    std::unique_ptr<std::byte[]> bigger(new std::byte[want]);  // not zero-filled: a reader of a small log does not pay for 1 MiB of memset
    if (kept != 0) std::memcpy(bigger.get(), buf_.get() + (pos - buf_at_), kept);
    buf_ = std::move(bigger);
    buf_capacity_ = want;
  } else if (kept != 0 && pos != buf_at_) {
    std::memmove(buf_.get(), buf_.get() + (pos - buf_at_), kept);
  }
  auto got = io_.read(fd_, pos + kept, std::span(buf_.get() + kept, want - kept));
  if (!got) {
    error_ = got.error().message;
    buf_len_ = 0;
    return -1;
  }
  buf_at_ = pos;
  buf_len_ = kept + got.value();
  fill_limit_ = kept != 0 ? std::min(fill_limit_, read_limit_) : read_limit_;
  start_ahead(pos);
  return static_cast<std::int64_t>(buf_len_);
}

void LogReader::settle_ahead() {
  if (!ahead_pending_) return;
  ahead_pending_ = false;
  ahead_len_ = -1;
  IoCompletion c;
  while (io_.pending() > 0) {
    if (io_.reap(std::span(&c, 1), 1) == 1) {
      ahead_len_ = c.result;  // bytes read, or -errno: then not used (a read now says why)
      return;
    }
  }
}

bool LogReader::take_ahead(std::uint64_t pos) {
  if (!ahead_pending_ && ahead_len_ < 0) return false;
  settle_ahead();
  // Used only where the reader goes on (not after a seek elsewhere) and if
  // the batch there was wholly written when it was read.
  const bool good = ahead_at_ == pos && ahead_len_ > 0 && next_offset_ < ahead_fill_limit_;
  if (good) {
    std::swap(buf_, ahead_);
    std::swap(buf_capacity_, ahead_capacity_);
    buf_at_ = pos;
    buf_len_ = static_cast<std::size_t>(ahead_len_);
    fill_limit_ = ahead_fill_limit_;
  }
  ahead_len_ = -1;
  return good;
}

void LogReader::start_ahead(std::uint64_t pos) {
  if (!read_ahead_ || ahead_pending_ || ahead_len_ >= 0 || fd_ < 0) return;
  // From the first batch the buffer does not wholly hold, found by its
  // headers. They may be stale past the fill limit: then the guess is wrong
  // and take_ahead() drops the read.
  const std::size_t header_size = batch_header_size(format_);
  const std::uint64_t end = buf_at_ + buf_len_;
  std::uint64_t p = pos;
  while (p + header_size <= end) {
    BatchInfo h;
    if (peek_batch(std::span(buf_.get() + (p - buf_at_), header_size), format_, h) != Peek::plausible) return;
    if (p + h.batch_length > end) break;
    largest_batch_ = std::max<std::size_t>(largest_batch_, h.batch_length);
    p += h.batch_length;
  }
  if (p == pos) return;  // the batch at pos is not wholly read yet: load() reads its rest first
  const std::size_t want = std::clamp(largest_batch_ + header_size, kReadChunk, kMaxReadAhead);
  if (ahead_capacity_ < want) {
    ahead_.reset(new std::byte[want]);
    ahead_capacity_ = want;
  }
  if (!io_.read_async(fd_, p, std::span(ahead_.get(), want), 0)) return;
  ahead_pending_ = true;
  ahead_at_ = p;
  ahead_fill_limit_ = read_limit_;
}

// The file position to start scanning at for `offset` in the open segment:
// the last index entry at or below it, if the index is sound; else the first
// batch. The index is only a hint: the scan that follows checks every batch.
std::uint64_t LogReader::index_position(std::uint64_t offset) {
  const std::uint64_t base = segments_[seg_];
  const std::optional<IndexEntry> e = find_index_entry<IndexEntry>(
      io_, segment_path(dir_, base, kIndexExt), base,
      [&](const IndexEntry& x) { return x.relative_offset <= offset - base; });
  auto log_size = io_.size(fd_);
  if (!e || !log_size) return sizeof(SegmentHeader);
  const bool sound = e->position >= sizeof(SegmentHeader) && e->position < log_size.value() && e->position % batch_alignment(format_) == 0;
  return sound ? e->position : sizeof(SegmentHeader);
}

ReadStatus LogReader::seek(std::uint64_t offset) { return seek_listed(offset, false); }

ReadStatus LogReader::seek_listed(std::uint64_t offset, bool fresh) {
  // The listing of the segments is kept between seeks: listing a directory
  // of 10,000 segments costs more than the rest of a seek. It is read again
  // when it cannot be trusted: it is empty; the offset lies below its first
  // segment (retention moved the earliest) or in its last one (newer
  // segments may have rolled since); the segment to open is gone.
  for (;;) {
    if (!fresh && (segments_.empty() || offset < segments_.front() || offset >= segments_.back())) {
      if (auto s = refresh(); s == ReadStatus::error) return s;
      fresh = true;
    }
    if (segments_.empty() || offset < segments_.front()) {
      if (segments_.empty()) earliest_ = offset;
      return fail(ReadStatus::out_of_range, "offset " + std::to_string(offset) + " is out of range, earliest is " +
                                                std::to_string(earliest_));
    }
    const auto it = std::upper_bound(segments_.begin(), segments_.end(), offset);
    const ReadStatus s = open_segment(static_cast<std::size_t>(it - segments_.begin()) - 1);
    if (s == ReadStatus::batch) break;
    if (s != ReadStatus::out_of_range || fresh) return s;
    segments_.clear();  // deleted since the listing: list again
  }
  pos_ = index_position(offset);
  // Step over whole batches below `offset`, reading only their headers.
  const std::size_t header_size = batch_header_size(format_);
  for (;;) {
    const std::int64_t got = load(pos_, header_size, kReadChunk);
    if (got < 0) return ReadStatus::error;
    if (got < static_cast<std::int64_t>(header_size)) break;  // end of segment: next() goes on
    BatchInfo h;
    if (peek_batch(std::span(buf_.get() + (pos_ - buf_at_), header_size), format_, h) != Peek::plausible) break;
    next_offset_ = h.base_offset;
    if (h.base_offset + h.offset_span > offset) break;
    next_offset_ = h.base_offset + h.offset_span;
    pos_ += h.batch_length;
  }
  return ReadStatus::batch;
}

// Up to the next batch's header, going on in the next segment at the end of
// one: `batch` with its header in buf_ at pos_ (`peek` says how far it
// could be read), or end, error, corrupt. `chunk`: how much to read at once.
ReadStatus LogReader::next_header(std::uint64_t limit, BatchInfo& h, Peek& peek, std::size_t chunk) {
  if (fd_ < 0) return fail(ReadStatus::error, "the reader is not positioned (seek first)");
  for (;;) {
    if (next_offset_ >= limit) return ReadStatus::end;
    read_limit_ = limit;
    if (next_offset_ >= fill_limit_) buf_len_ = 0;  // the buffer may predate this batch's write
    const std::size_t header_size = batch_header_size(format_);
    const std::int64_t got = load(pos_, header_size, chunk);
    if (got < 0) return ReadStatus::error;
    if (got == 0) {
      // The end of this segment: go on in the next one.
      if (seg_ + 1 >= segments_.size()) {
        const std::uint64_t current = segments_[seg_];
        if (auto s = refresh(); s == ReadStatus::error) return s;
        const auto it = std::upper_bound(segments_.begin(), segments_.end(), current);
        if (it == segments_.end()) return ReadStatus::end;  // not rolled yet
        seg_ = static_cast<std::size_t>(it - segments_.begin()) - 1;
      }
      const std::uint64_t expected = next_offset_;
      if (auto s = open_segment(seg_ + 1); s != ReadStatus::batch) return s;
      // A later segment starts where the previous one ended; if recovery
      // cut the previous one short, offsets resume at the new base.
      next_offset_ = std::max(expected, segments_[seg_]);
      continue;
    }
    if (got < static_cast<std::int64_t>(header_size)) {
      return fail(ReadStatus::corrupt, segment_path(dir_, segments_[seg_], kLogExt) + ": a batch header is cut off at byte " +
                                           std::to_string(pos_));
    }
    peek = peek_batch(std::span(buf_.get() + (pos_ - buf_at_), header_size), format_, h);
    // A batch at or past the limit may still be being written: not read yet.
    if (peek != Peek::none && h.base_offset >= limit) return ReadStatus::end;
    return ReadStatus::batch;
  }
}

ReadStatus LogReader::next(std::uint64_t limit, DecodedBatch& out) {
  BatchInfo h;
  Peek peek;
  if (const ReadStatus s = next_header(limit, h, peek, kReadChunk); s != ReadStatus::batch) return s;
  const std::int64_t got = load(pos_, peek == Peek::plausible ? h.batch_length : batch_header_size(format_), kReadChunk);
  if (got < 0) return ReadStatus::error;
  out = decode_batch(std::span(buf_.get() + (pos_ - buf_at_), static_cast<std::size_t>(got)), format_, scratch_);
  if (!out.ok()) {
    return fail(ReadStatus::corrupt, segment_path(dir_, segments_[seg_], kLogExt) + " at byte " + std::to_string(pos_) +
                                         ": " + to_string(out.error) + " (" + out.detail + ")");
  }
  batch_pos_ = pos_;
  pos_ += out.header.batch_length;
  next_offset_ = std::max(next_offset_, out.header.base_offset + out.header.offset_span);
  return ReadStatus::batch;
}

ReadStatus LogReader::next_unread(std::uint64_t limit, BatchInfo& out) {
  // Large batches: only a header's worth is read at each. Small ones: a
  // chunk holds many headers (one read for all).
  const std::size_t chunk = last_length_ >= kHeaderOnlyFrom ? kHeaderRead : kReadChunk;
  Peek peek;
  if (const ReadStatus s = next_header(limit, out, peek, chunk); s != ReadStatus::batch) return s;
  if (peek != Peek::plausible) {
    return fail(ReadStatus::corrupt, segment_path(dir_, segments_[seg_], kLogExt) + " at byte " + std::to_string(pos_) +
                                         ": " + (peek == Peek::none ? "no batch starts there" : "the batch's header is damaged"));
  }
  last_length_ = out.batch_length;
  batch_pos_ = pos_;
  pos_ += out.batch_length;
  next_offset_ = std::max(next_offset_, out.base_offset + out.offset_span);
  return ReadStatus::batch;
}

ReadStatus LogReader::skip_segment() {
  // By base offset: refresh() replaces the list, so an index into it goes
  // stale when retention deleted older segments meanwhile.
  if (segments_.empty()) return fail(ReadStatus::end, "no segment to skip");
  const std::uint64_t current = segments_[seg_];
  if (auto s = refresh(); s == ReadStatus::error) return s;
  const auto it = std::upper_bound(segments_.begin(), segments_.end(), current);
  if (it == segments_.end()) return fail(ReadStatus::end, "no segment after " + std::to_string(current));
  return open_segment(static_cast<std::size_t>(it - segments_.begin()));
}

ReadStatus LogReader::skip_corrupt(std::uint64_t limit) {
  if (fd_ >= 0) {
    auto size = io_.size(fd_);
    if (!size) return fail(ReadStatus::error, size.error().message);
    const std::size_t header_size = batch_header_size(format_);
    const std::uint32_t step = batch_alignment(format_);
    for (std::uint64_t p = pos_ + step; p + header_size <= size.value(); p += step) {
      std::int64_t got = load(p, header_size, kReadChunk);
      if (got < 0) return ReadStatus::error;
      BatchInfo h;
      if (peek_batch(std::span(buf_.get() + (p - buf_at_), header_size), format_, h) != Peek::plausible ||
          h.base_offset < next_offset_ || h.base_offset >= limit) {
        continue;
      }
      got = load(p, h.batch_length, kReadChunk);
      if (got < 0) return ReadStatus::error;
      if (!decode_batch(std::span(buf_.get() + (p - buf_at_), static_cast<std::size_t>(got)), format_, scratch_).ok()) continue;
      pos_ = p;
      next_offset_ = h.base_offset;
      return ReadStatus::batch;
    }
    pos_ = size.value();  // nothing intact in the rest: next() goes on from the end
  }
  for (;;) {
    const ReadStatus s = skip_segment();
    if (s == ReadStatus::batch || s == ReadStatus::error) return s;
    if (s == ReadStatus::end) {
      next_offset_ = std::max(next_offset_, limit);
      return s;
    }
    // A segment whose header is bad: the one after it.
  }
}

ReadStatus LogReader::seek_time(std::int64_t timestamp_ns, std::uint64_t limit, std::uint64_t* offset) {
  // Records are found by Kafka's millisecond timestamp: the query rounded
  // down to its millisecond, so that every comparison in nanoseconds below
  // agrees with one in milliseconds (ns >= k ms exactly when ms_of(ns) >= k).
  const std::int64_t query_ms = detail::ms_of(timestamp_ns);
  timestamp_ns = query_ms * 1'000'000;
  // The newest timestamp a segment's time index knows (its last entry), or
  // INT64_MIN if it has none. Monotonic across segments (entries carry the
  // largest timestamp seen so far, and every closed segment has one: its
  // first batch is always indexed), so a binary search applies.
  auto last_time = [&](std::uint64_t base, std::uint32_t* rel) -> std::int64_t {
    const std::string path = segment_path(dir_, base, kTimeIndexExt);
    auto fd = io_.open_read(path);
    std::int64_t ts = INT64_MIN;
    if (!fd) return ts;
    auto size = io_.size(fd.value());
    if (size && size.value() >= sizeof(IndexHeader) + sizeof(TimeIndexEntry)) {
      std::byte head[sizeof(IndexHeader)];
      TimeIndexEntry e{};
      const std::uint64_t at = size.value() - (size.value() - sizeof(IndexHeader)) % sizeof e - sizeof e;
      auto h = io_.read(fd.value(), 0, head);
      auto got = io_.read(fd.value(), at, std::span(reinterpret_cast<std::byte*>(&e), sizeof e));
      if (h && got && got.value() == sizeof e && check_index_header(std::span(head, h.value()), path, true, base)) {
        ts = e.timestamp_ns;
        if (rel != nullptr) *rel = e.relative_offset;
      }
    }
    io_.close(fd.value());
    return ts;
  };
  // The listing is kept as seek() keeps it, and read again when it is
  // empty, when the timestamp falls in its last segment or after (newer
  // segments may have rolled), or when a segment it names is gone.
  bool fresh = false;
  auto relist = [&]() {
    fresh = true;
    return refresh();
  };
  for (;;) {
    if (segments_.empty() && !fresh && relist() == ReadStatus::error) return ReadStatus::error;
    if (segments_.empty()) {
      *offset = limit;
      return ReadStatus::end;
    }
    // First segment whose index has reached timestamp_ns. Start scanning at
    // its last index entry below the timestamp; if it has none, at the last
    // entry of the segment before it (the match may lie in that one's tail).
    std::size_t lo = 0;
    std::size_t hi = segments_.size();
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      // The active segment's entries may not be on disk yet; it is the newest.
      if (mid + 1 == segments_.size() || last_time(segments_[mid], nullptr) >= timestamp_ns) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    if (!fresh && lo + 1 >= segments_.size()) {
      if (relist() == ReadStatus::error) return ReadStatus::error;
      continue;
    }
    std::uint64_t from = segments_.front();
    bool in_lo = false;
    if (lo < segments_.size()) {
      const std::optional<TimeIndexEntry> e =
          find_index_entry<TimeIndexEntry>(io_, segment_path(dir_, segments_[lo], kTimeIndexExt), segments_[lo],
                                           [&](const TimeIndexEntry& x) { return x.timestamp_ns < timestamp_ns; });
      if (e) {
        from = segments_[lo] + e->relative_offset;
        in_lo = true;
      }
    }
    if (!in_lo && lo > 0) {
      std::uint32_t rel = 0;
      from = segments_[lo - 1] + (last_time(segments_[lo - 1], &rel) != INT64_MIN ? rel : 0);
    }
    const ReadStatus s = seek_listed(from, fresh);
    if (s == ReadStatus::out_of_range && !fresh) {
      if (relist() == ReadStatus::error) return ReadStatus::error;
      continue;  // retention deleted segments since the listing
    }
    if (s != ReadStatus::batch) return s;
    break;
  }
  // Scan batches until one reaches the timestamp, then find the record.
  for (;;) {
    DecodedBatch b;
    const ReadStatus s = next(limit, b);
    if (s == ReadStatus::end) {
      *offset = next_offset_;
      return ReadStatus::end;
    }
    if (s != ReadStatus::batch) return s;
    if (b.header.max_timestamp_ns < timestamp_ns) continue;
    std::uint64_t found = b.header.base_offset + b.header.offset_span;
    bool have = false;
    for_each_record(b, 0, [&](const Record& r) {
      if (!have && r.timestamp_ms >= query_ms) {
        found = r.offset;
        have = true;
      }
    });
    *offset = found;
    // Back to the start of this batch, so next() returns it again.
    pos_ -= b.header.batch_length;
    next_offset_ = b.header.base_offset;
    return ReadStatus::batch;
  }
}

}  // namespace ringbus::log
