// ringbus log dump|verify: the segment files of a partition, read directly
// (no broker needed).
#include <memory>

#include "cli.h"
#include "segment_check.h"

namespace ringbus::cli {

namespace {

using log::BatchSummary;
using log::check_path;
using log::CheckOptions;
using log::SegmentReport;

std::string printable(std::string_view s, std::size_t max) {
  std::string out;
  for (const char c : s.substr(0, max)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '.';
  }
  if (s.size() > max) out += "...";
  return out;
}

int report(const std::vector<log::SegmentReport>& reports, bool verbose) {
  std::uint64_t problems = 0;
  for (const log::SegmentReport& r : reports) {
    problems += r.problems.size();
    if (verbose || !r.problems.empty()) {
      fmt::print("{}: offsets {}..{}, {} batches, {} records, {} bytes of data{}{}\n", r.path, r.base_offset,
                 r.end_offset, r.batches, r.records, r.data_end,
                 r.zero_tail != 0 ? fmt::format(", {} preallocated bytes", r.zero_tail) : "",
                 r.problems.empty() ? ": ok" : "");
    }
    for (const std::string& p : r.problems) fmt::print(stderr, "  problem: {}\n", p);
  }
  if (problems != 0) {
    fmt::print(stderr, "ringbus: {} problem(s) in {} segment(s)\n", problems, reports.size());
    return kExitError;
  }
  fmt::print("{} segment(s): no problems\n", reports.size());
  return kExitOk;
}

}  // namespace

void add_log_commands(CLI::App& app, int& code) {
  CLI::App* log = app.add_subcommand("log", "read and check commit-log segment files (no broker needed)");
  log->require_subcommand(1);

  struct DumpOptions {
    std::string path;
    bool records = false;
    std::size_t max_bytes = 64;
  };
  auto d = std::make_shared<DumpOptions>();
  CLI::App* dump = log->add_subcommand("dump", "print the batches (and records) of segment files");
  dump->footer(
      "PATH is a segment file (<base offset>.log) or a partition directory (<data-dir>/<topic>/<partition>).\n"
      "Examples:\n"
      "  ringbus log dump /var/tmp/ringbus/default/orders/0\n"
      "  ringbus log dump /var/tmp/ringbus/default/orders/0/00000000000000000000.log --records");
  dump->add_option("PATH", d->path, "segment file or partition directory")->required();
  dump->add_flag("--records", d->records, "also print each record: offset, timestamp, key, value");
  dump->add_option("--max-bytes", d->max_bytes, "print at most this many bytes of a key or value")->capture_default_str();
  dump->callback([&code, d] {
    log::CheckOptions o;
    o.on_batch = [](const log::BatchSummary& s) {
      const log::BatchInfo& b = s.info;
      fmt::print("batch at byte {}: offsets {}..{} ({} records), {} bytes, timestamps {}..{} ms, leader epoch {}, {}\n",
                 s.position, b.base_offset, b.base_offset + b.offset_span - 1, b.record_count, b.batch_length,
                 b.first_timestamp_ns / 1'000'000, b.max_timestamp_ns / 1'000'000, b.leader_epoch,
                 b.compression == Compression::none ? std::string("uncompressed") : to_string(b.compression));
    };
    if (d->records) {
      o.on_record = [d](const Record& r) {
        fmt::print("  offset {} timestamp {} ms key \"{}\" value \"{}\"\n", r.offset, r.timestamp_ms,
                   printable(r.key, d->max_bytes), printable(r.value, d->max_bytes));
      };
    }
    auto reports = log::check_path(d->path, o);
    if (!reports) {
      code = fail(reports.error());
      return;
    }
    code = report(reports.value(), true);
  });

  auto verify_path = std::make_shared<std::string>();
  CLI::App* verify = log->add_subcommand("verify", "check every batch's CRC and framing, offsets and the indexes");
  verify->footer(
      "Exit 0 when everything checks, 1 with each problem named (file, byte or index entry).\n"
      "A segment being written by a running broker may end in a batch still in flight.\n"
      "Example:\n"
      "  ringbus log verify /var/tmp/ringbus/default/orders/0");
  verify->add_option("PATH", *verify_path, "segment file or partition directory")->required();
  verify->callback([&code, verify_path] {
    auto reports = log::check_path(*verify_path, log::CheckOptions{});
    if (!reports) {
      code = fail(reports.error());
      return;
    }
    code = report(reports.value(), false);
  });
}

}  // namespace ringbus::cli
