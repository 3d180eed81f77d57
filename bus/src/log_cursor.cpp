#include "log_cursor.h"

#include <algorithm>

namespace ringbus::log {

// Reads ahead on a thread of its own (file_io.h says why not io_uring).
LogCursor::LogCursor(std::string dir) : dir_(std::move(dir)), io_(make_thread_read_io()) {
  reader_ = std::make_unique<LogReader>(*io_, dir_, true);
}

bool LogCursor::seek(std::uint64_t offset, bool or_earliest, std::uint64_t& at) {
  ReadStatus s = reader_->seek(offset);
  if (s == ReadStatus::out_of_range && or_earliest && reader_->earliest() > offset) {
    offset = reader_->earliest();
    s = reader_->seek(offset);
  }
  positioned_ = s == ReadStatus::batch;
  if (!positioned_) {
    error_ = reader_->error();
    return false;
  }
  at = offset;
  return true;
}

LogStep LogCursor::after(ReadStatus s, std::uint64_t limit, std::uint64_t from) {
  if (s == ReadStatus::end) return {LogStep::end, reader_->next_offset()};
  if (s == ReadStatus::corrupt) {
    // Reported once by the caller: it goes on from the next intact batch.
    (void)reader_->skip_corrupt(limit);
    return {LogStep::corrupt, std::max(from, reader_->next_offset())};
  }
  // Out of range (retention) or an error: start again at the earliest the log
  // holds, from a fresh reader (its segment list may be stale).
  error_ = reader_->error();
  const std::uint64_t earliest = std::max(reader_->earliest(), from);
  reader_.reset();  // settles its read ahead before the next reader uses the FileIo
  reader_ = std::make_unique<LogReader>(*io_, dir_, true);
  std::uint64_t at = earliest;
  (void)seek(earliest, false, at);
  return {LogStep::lost, at};
}

}  // namespace ringbus::log
