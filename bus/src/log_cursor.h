// A partition's commit log read forward from an offset: the disk path of a
// Consumer (consumer.cpp), and the read-at-offset a fetch over the network
// will need. It knows nothing of rings: the caller gives the limit (the
// partition's written offset: below it every batch is completely written)
// and decides which of a batch's records it delivers.
//
// Threading: one thread at a time (it owns its reader and its file handle).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "batch_codec.h"
#include "file_io.h"
#include "log_reader.h"

namespace ringbus::log {

struct LogStep {
  enum Kind : std::uint8_t {
    batch,    // a batch was read; `next` is the offset after it
    end,      // nothing more below the limit (yet); `next` is where reading goes on
    lost,     // the records from `from` are gone (retention deleted them, or the
              // file system refused: error()); the cursor went on at `next`,
              // unless positioned() says it could not
    corrupt,  // a damaged batch: the cursor went on at `next`, the next intact
              // batch; what lies between is lost to this reader
  };
  Kind kind;
  std::uint64_t next;
};

class LogCursor {
 public:
  explicit LogCursor(std::string dir);

  // Positions the cursor at `offset`. With or_earliest, an offset retention
  // deleted starts at the earliest the log still holds instead (the files
  // are the truth, not a log start some header names). Returns where it
  // starts, or false with the reason in error().
  bool seek(std::uint64_t offset, bool or_earliest, std::uint64_t& at);
  // Reads the next batch below `limit` and calls fn(const Record&) for each
  // of its records (some may lie below the offset sought: callers skip
  // them). `from` is the first offset the caller still wants: after a loss
  // the cursor goes on at the earliest offset at or past it.
  template <class F>
  LogStep read(std::uint64_t limit, std::uint32_t partition, std::uint64_t from, F&& fn) {
    DecodedBatch batch;
    const ReadStatus s = reader_->next(limit, batch);
    if (s == ReadStatus::batch) {
      for_each_record(batch, partition, fn);
      return {LogStep::batch, batch.header.base_offset + batch.header.offset_span};
    }
    return after(s, limit, from);
  }
  // The offset the next read starts at (for waits: is there more below the limit?).
  std::uint64_t next_offset() const noexcept { return reader_->next_offset(); }
  // False once a seek failed (the log holds nothing at or past the offset).
  bool positioned() const noexcept { return positioned_; }
  const std::string& error() const noexcept { return error_; }

 private:
  LogStep after(ReadStatus s, std::uint64_t limit, std::uint64_t from);

  std::string dir_;
  std::unique_ptr<FileIo> io_;  // the reader's own (it reads ahead)
  std::unique_ptr<LogReader> reader_;
  std::string error_;
  bool positioned_ = false;
};

}  // namespace ringbus::log
