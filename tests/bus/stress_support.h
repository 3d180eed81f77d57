// What the stress tests publish and how consumers check it: every record
// carries (producer id, sequence number); a Checker verifies no loss, no
// duplicate, order kept per producer, and dense offsets per partition.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/record.h"

namespace ringbus::test {

struct Stamp {
  std::uint32_t producer;
  std::uint32_t pad;
  std::uint64_t seq;
};

// A value of `size` bytes (>= sizeof(Stamp)) starting with the stamp; the rest
// is filled from the stamp so a torn record is caught too.
inline std::string stamped(std::uint32_t producer, std::uint64_t seq, std::size_t size) {
  std::string v(std::max(size, sizeof(Stamp)), '\0');
  const Stamp s{producer, 0, seq};
  std::memcpy(v.data(), &s, sizeof s);
  for (std::size_t i = sizeof s; i < v.size(); ++i) v[i] = static_cast<char>('a' + (seq + i) % 26);
  return v;
}

class Checker {
 public:
  Checker(std::uint32_t producers, std::uint32_t partitions)
      : next_seq_(producers, 0), next_offset_(partitions, 0) {}

  // Starts offsets at a given value (for consumers that join late).
  void expect_offset(std::uint32_t partition, std::uint64_t offset) { next_offset_[partition] = offset; }

  void on_record(const Record& r) {
    if (r.value.size() < sizeof(Stamp)) return fail("record " + std::to_string(r.offset) + " too short");
    Stamp s;
    std::memcpy(&s, r.value.data(), sizeof s);
    for (std::size_t i = sizeof s; i < r.value.size(); ++i) {
      if (r.value[i] != static_cast<char>('a' + (s.seq + i) % 26)) {
        return fail("torn record at offset " + std::to_string(r.offset));
      }
    }
    if (s.producer >= next_seq_.size()) return fail("unknown producer " + std::to_string(s.producer));
    if (s.seq != next_seq_[s.producer]) {
      return fail("producer " + std::to_string(s.producer) + ": expected seq " +
                  std::to_string(next_seq_[s.producer]) + ", got " + std::to_string(s.seq) +
                  (s.seq < next_seq_[s.producer] ? " (duplicate or reordered)" : " (lost records)"));
    }
    ++next_seq_[s.producer];
    if (dense_ && r.offset != next_offset_[r.partition]) {
      return fail("partition " + std::to_string(r.partition) + ": expected offset " +
                  std::to_string(next_offset_[r.partition]) + ", got " + std::to_string(r.offset));
    }
    next_offset_[r.partition] = r.offset + 1;
    ++records_;
  }

  // With aborted or revoked offsets, delivered offsets have gaps by design.
  void allow_offset_gaps() { dense_ = false; }
  std::uint64_t records() const { return records_; }
  std::uint64_t seen_from(std::uint32_t producer) const { return next_seq_[producer]; }
  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }

 private:
  void fail(const std::string& what) {
    if (error_.empty()) error_ = what;
  }
  std::vector<std::uint64_t> next_seq_;
  std::vector<std::uint64_t> next_offset_;
  std::uint64_t records_ = 0;
  bool dense_ = true;
  std::string error_;
};

// Scales a record count down under ThreadSanitizer (5-15x slower, and the
// 2-core CI machine runs it too).
constexpr std::uint64_t scaled(std::uint64_t n) {
#if defined(__SANITIZE_THREAD__)
  return n / 10;
#else
  return n;
#endif
}

}  // namespace ringbus::test
