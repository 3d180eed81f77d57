// Reading a partition's commit log: seek by offset (segment by name, then the
// sparse offset index, then batch headers) or by timestamp (the time
// indexes), then batch after batch across segments. Every batch is checked
// (decode_batch) before anything trusts it.
//
// Used by consumers whose position is no longer in the ring (they read the
// files themselves, never through the broker) and by tools. A reader reads
// only below a limit the caller gives: the flusher's written offset from the
// partition header, below which every batch is completely written.
//
// A reader can read ahead (LogCursor's does): while the caller works
// through a chunk, the next one is read, from the first batch the chunk
// does not wholly hold. It reaps completions from its FileIo, so the FileIo
// must be its own.
//
// Threading: one thread at a time. The writer appends and retention deletes
// concurrently: a deleted segment stays readable through an open handle, and
// a seek below the earliest segment says out_of_range with the earliest.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "batch_codec.h"
#include "file_io.h"

namespace ringbus::log {

enum class ReadStatus : std::uint8_t {
  batch,         // `out` holds the next batch
  end,           // nothing more below the limit (yet)
  out_of_range,  // the offset is below the earliest on disk (earliest() says where)
  corrupt,       // a batch or file failed its checks (error() says which); skip_segment() goes on
  error,         // the file system refused (error() says why)
};

class LogReader {
 public:
  LogReader(FileIo& io, std::string dir, bool read_ahead = false);
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // Positions the reader at the batch that holds `offset` (or the first
  // after it). The next batch may start below `offset`: callers skip those
  // records.
  ReadStatus seek(std::uint64_t offset);
  // Positions the reader at the first batch whose newest record is at or
  // after `timestamp_ns`, and returns in *offset the first record's offset
  // with a timestamp at or after it (the end of the log if none is).
  ReadStatus seek_time(std::int64_t timestamp_ns, std::uint64_t limit, std::uint64_t* offset);
  // Reads the next batch if it lies below `limit`. `out` stays valid until
  // the next call.
  ReadStatus next(std::uint64_t limit, DecodedBatch& out);
  // As next(), but reads and checks only the batch's header (plausible,
  // below `limit`), not its records or CRC: for a sender that sends the
  // bytes from the file (batch_file(), batch_position()) to a receiver that
  // checks the batch whole (a mirror). After large batches it reads little
  // more than their headers.
  ReadStatus next_unread(std::uint64_t limit, BatchInfo& out);
  // After `corrupt`: continues at the next segment (whatever is left of this
  // one is lost to this reader).
  ReadStatus skip_segment();
  // After `corrupt`: continues at the next intact batch, found by scanning
  // the rest of the segment in steps of the batch alignment for a whole
  // batch that passes every check and does not go back in offsets, else at
  // the next segment. Returns batch (next_offset() is where records go on:
  // what lies below it since the bad batch is lost), or end when nothing
  // intact follows below `limit` (next_offset() is then `limit`), or error.
  ReadStatus skip_corrupt(std::uint64_t limit);

  std::uint64_t next_offset() const noexcept { return next_offset_; }
  // Where the batch next() or next_unread() returned last lies: the FileIo
  // handle of its segment (open until the reader moves to another), the
  // segment's base offset, the batch's byte position in it, and the
  // segment's format. A sender can send the batch's bytes from there
  // (sendfile).
  int batch_file() const noexcept { return fd_; }
  std::uint32_t batch_format() const noexcept { return format_; }
  std::uint64_t batch_segment() const noexcept { return segments_.empty() ? 0 : segments_[seg_]; }
  std::uint64_t batch_position() const noexcept { return batch_pos_; }
  // The earliest offset on disk as last seen (after out_of_range: the one to jump to).
  std::uint64_t earliest() const noexcept { return earliest_; }
  const std::string& error() const noexcept { return error_; }

 private:
  ReadStatus refresh();
  // seek(), with `fresh` telling that segments_ was listed just now.
  ReadStatus seek_listed(std::uint64_t offset, bool fresh);
  ReadStatus open_segment(std::size_t i);
  void close_segment();
  // Up to the next batch's header in buf_ at pos_ (next(), next_unread()).
  ReadStatus next_header(std::uint64_t limit, BatchInfo& h, Peek& peek, std::size_t chunk);
  // Makes [pos, pos + need) readable from buf_ if the file has it, reading
  // at least `chunk` bytes when it reads; returns the bytes available from
  // pos (fewer at the end of the file), or -1.
  std::int64_t load(std::uint64_t pos, std::size_t need, std::size_t chunk);
  // The read ahead: start_ahead() after buf_ was filled from `pos`;
  // take_ahead() puts it in buf_ if it starts at `pos` and is still good;
  // settle_ahead() waits for the read in flight.
  void start_ahead(std::uint64_t pos);
  bool take_ahead(std::uint64_t pos);
  void settle_ahead();
  std::uint64_t index_position(std::uint64_t offset);
  ReadStatus fail(ReadStatus s, std::string message);

  FileIo& io_;
  std::string dir_;
  std::vector<std::uint64_t> segments_;  // base offsets as last listed (kept between seeks)
  std::size_t seg_ = 0;
  int fd_ = -1;
  std::uint64_t pos_ = 0;          // file position of the next batch
  std::uint64_t batch_pos_ = 0;    // file position of the batch next() returned last
  std::uint32_t last_length_ = 0;  // of the batch next_unread() returned last
  std::uint64_t next_offset_ = 0;
  std::uint64_t earliest_ = 0;
  std::uint32_t format_ = kSegmentVersionRbb1;  // the open segment's version: its batch format
  std::vector<std::byte> scratch_;              // v2 records, decompressed
  std::unique_ptr<std::byte[]> buf_;
  std::size_t buf_capacity_ = 0;
  std::uint64_t buf_at_ = 0;       // file position of buf_[0]
  std::size_t buf_len_ = 0;
  // Batches below this offset were wholly written when the buffer was
  // filled; the buffer's bytes of later ones may predate their writes
  // (the flusher's writes complete in any order: a later batch can extend
  // the file while an earlier one's bytes are still a hole), so they are
  // read again. read_limit_ is the limit of the next() in progress.
  std::uint64_t fill_limit_ = 0;
  std::uint64_t read_limit_ = 0;
  // The read ahead into ahead_: at file position ahead_at_, of ahead_len_
  // bytes once done (-1: none, or it failed), with the fill limit of the
  // next() that started it (the read ran after it).
  bool read_ahead_ = false;
  bool ahead_pending_ = false;
  std::unique_ptr<std::byte[]> ahead_;
  std::size_t ahead_capacity_ = 0;
  std::uint64_t ahead_at_ = 0;
  std::int64_t ahead_len_ = -1;
  std::uint64_t ahead_fill_limit_ = 0;
  std::size_t largest_batch_ = 0;  // a read ahead holds at least one such batch
  std::string error_;
};

}  // namespace ringbus::log
