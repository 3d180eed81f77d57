// ringbus topic create|list|describe|delete, ringbus stats: requests to the
// broker over the control channel.
#include <thread>

#include "cli.h"
#include "control_protocol.h"
#include "control_socket.h"

namespace ringbus::cli {

namespace {

using control::ControlClient;
using control::Json;

}  // namespace

bool call(const Global& g, std::string_view op, control::Json fields, control::Json& out, int& code) {
  auto c = ControlClient::connect(g.instance, g.timeout);
  if (!c) {
    code = fail(c.error());
    return false;
  }
  auto r = c->call(op, std::move(fields));
  if (!r) {
    code = fail(r.error());
    return false;
  }
  out = std::move(r.value());
  return true;
}

namespace {

void print_topic(const Json& t) {
  fmt::print("topic {} (id {}): {} partitions, ring {} bytes, max record {} bytes, abandoned claim timeout {} ms\n",
             t["name"].get<std::string>(), t["topic_id"].get<std::uint64_t>(), t["partitions"].get<std::uint32_t>(),
             t["ring_bytes"].get<std::uint64_t>(), t["max_record_size"].get<std::uint32_t>(),
             t["abandoned_claim_timeout_ms"].get<std::int64_t>());
  fmt::print("{:>9} {:>14} {:>14} {:>14} {:>14} {:>7} {}\n", "partition", "log start", "end offset", "written",
             "durable", "gating", "error");
  for (const Json& p : t["partition_info"]) {
    // Without a commit log the log's columns are "-".
    const bool log = p["has_log"].get<bool>();
    const auto log_field = [&](const char* key) { return log ? std::to_string(p[key].get<std::uint64_t>()) : "-"; };
    const int err = p["log_error"].get<int>();
    fmt::print("{:>9} {:>14} {:>14} {:>14} {:>14} {:>7} {}\n", p["partition"].get<std::uint32_t>(),
               log_field("log_start_offset"), p["end_offset"].get<std::uint64_t>(), log_field("written_offset"),
               log_field("durable_offset"), p["gating_readers"].get<std::uint32_t>(),
               log && err != 0 ? std::strerror(err) : "-");
  }
}

struct CreateOptions {
  std::string name;
  std::uint32_t partitions = 1;
  std::uint64_t ring_bytes = 0;
  std::uint64_t max_record_size = 0;
  std::uint64_t segment_bytes = 0;
  std::int64_t segment_age_ms = -1;
  std::uint64_t retention_bytes = 0;
  std::int64_t retention_age_ms = -1;
  std::string durability;
  std::int64_t flush_interval_ms = -1;
  std::uint64_t flush_bytes = 0;
};

}  // namespace

void add_topic_commands(CLI::App& app, const Global& g, int& code) {
  CLI::App* topic = app.add_subcommand("topic", "create, list, describe and delete topics");
  topic->require_subcommand(1);

  auto o = std::make_shared<CreateOptions>();
  CLI::App* create = topic->add_subcommand("create", "create a topic");
  create->footer(
      "Sizes take units (64MiB, 1GiB, 4096), durations too (100ms, 10s, 7d); options left out take the\n"
      "defaults (bus/README.md). Examples:\n"
      "  ringbus topic create orders --partitions 8\n"
      "  ringbus topic create audit --durability every_ack --retention-age 30d --ring-bytes 256MiB");
  create->add_option("NAME", o->name, "topic name: 1-249 of [A-Za-z0-9._-], not starting with '.'")->required();
  create->add_option("--partitions,-p", o->partitions, "partitions (1-1024)")->capture_default_str();
  create->add_option("--ring-bytes", o->ring_bytes, "ring size per partition: a power of two, 64KiB-1TiB (default 64MiB)")
      ->transform(CLI::AsSizeValue(false));
  create->add_option("--max-record-size", o->max_record_size, "largest key+headers+value (default 1MiB, or what fits a quarter of a smaller ring)")
      ->transform(CLI::AsSizeValue(false));
  create->add_option("--segment-bytes", o->segment_bytes, "roll log segments at this size (default 1GiB)")
      ->transform(CLI::AsSizeValue(false));
  create->add_option("--segment-age", o->segment_age_ms, "... or at this age (default 7d)")->transform(duration_units());
  create->add_option("--retention-bytes", o->retention_bytes, "delete the oldest segments above this per partition (default: no limit)")
      ->transform(CLI::AsSizeValue(false));
  create->add_option("--retention-age", o->retention_age_ms, "... or older than this (default 7d; 0ms: no limit)")
      ->transform(duration_units());
  create->add_option("--durability", o->durability, "page_cache, interval (default) or every_ack")
      ->check(CLI::IsMember({"page_cache", "interval", "every_ack"}));
  create->add_option("--flush-interval", o->flush_interval_ms, "for interval: fdatasync this often (default 100ms)")
      ->transform(duration_units());
  create->add_option("--flush-bytes", o->flush_bytes, "for interval: also after this many bytes")
      ->transform(CLI::AsSizeValue(false));
  create->callback([&g, &code, o] {
    Json t{{"name", o->name}, {"partitions", o->partitions}};
    if (o->ring_bytes != 0) t["ring_bytes"] = o->ring_bytes;
    if (o->max_record_size != 0) {
      t["max_record_size"] = o->max_record_size;
    } else if (o->ring_bytes != 0 && o->ring_bytes / 4 > 32) {
      // The default (1 MiB) would not fit a small ring: take what fits.
      t["max_record_size"] = std::min<std::uint64_t>(1 << 20, o->ring_bytes / 4 - 32);
    }
    if (o->segment_bytes != 0) t["segment_bytes"] = o->segment_bytes;
    if (o->segment_age_ms >= 0) t["segment_age_ms"] = o->segment_age_ms;
    if (o->retention_bytes != 0) t["retention_bytes"] = o->retention_bytes;
    if (o->retention_age_ms >= 0) t["retention_age_ms"] = o->retention_age_ms;
    if (!o->durability.empty()) t["durability"] = o->durability;
    if (o->flush_interval_ms >= 0) t["flush_interval_ms"] = o->flush_interval_ms;
    if (o->flush_bytes != 0) t["flush_bytes"] = o->flush_bytes;
    Json r;
    if (!call(g, "create_topic", Json{{"topic", t}}, r, code)) return;
    fmt::print("created topic {} ({} partitions)\n", o->name, r["topic"]["partitions"].get<std::uint32_t>());
  });

  CLI::App* list = topic->add_subcommand("list", "list the topics, one per line");
  list->callback([&g, &code] {
    Json r;
    if (!call(g, "list_topics", Json::object(), r, code)) return;
    for (const Json& t : r["topics"]) fmt::print("{}\n", t.get<std::string>());
  });

  auto describe_name = std::make_shared<std::string>();
  auto describe_json = std::make_shared<bool>(false);
  CLI::App* describe = topic->add_subcommand("describe", "a topic's settings and its partitions' offsets");
  describe->footer("Example:\n  ringbus topic describe orders --json");
  describe->add_option("NAME", *describe_name, "topic")->required();
  describe->add_flag("--json", *describe_json, "print the broker's answer as JSON");
  describe->callback([&g, &code, describe_name, describe_json] {
    Json r;
    if (!call(g, "describe_topic", Json{{"name", *describe_name}}, r, code)) return;
    if (*describe_json) {
      fmt::print("{}\n", r["topic"].dump(2));
    } else {
      print_topic(r["topic"]);
    }
  });

  auto delete_name = std::make_shared<std::string>();
  CLI::App* del = topic->add_subcommand("delete", "delete a topic and its commit log");
  del->footer("Producers get topic_deleted; consumers read what was published, then stop.\nExample:\n  ringbus topic delete orders");
  del->add_option("NAME", *delete_name, "topic")->required();
  del->callback([&g, &code, delete_name] {
    Json r;
    if (!call(g, "delete_topic", Json{{"name", *delete_name}}, r, code)) return;
    fmt::print("deleted topic {}\n", *delete_name);
  });
}

void add_stats_command(CLI::App& app, const Global& g, int& code) {
  auto watch = std::make_shared<double>(0);
  CLI::App* stats = app.add_subcommand("stats", "the broker's metrics per topic partition");
  stats->footer("Examples:\n  ringbus stats\n  ringbus stats --watch 1     # refresh every second until Ctrl-C");
  stats->add_option("--watch", *watch, "refresh every SECONDS until interrupted")->check(CLI::Range(0.1, 3600.0));
  stats->callback([&g, &code, watch] {
    auto c = ControlClient::connect(g.instance, g.timeout);
    if (!c) {
      code = fail(c.error());
      return;
    }
    auto ping = c->call("ping");
    if (!ping) {
      code = fail(ping.error());
      return;
    }
    const auto port = ping.value()["metrics_port"].get<std::uint32_t>();
    do {
      auto r = c->call("stats");
      if (!r) {
        code = fail(r.error());
        return;
      }
      const Json& s = r.value()["stats"];
      if (*watch > 0) fmt::print("\x1b[H\x1b[2J");  // home, clear: refresh in place
      fmt::print("{:<24} {:>5} {:>14} {:>14} {:>14} {:>14} {:>12} {}\n", "topic", "part", "log start", "end offset",
                 "durable", "retained B", "in rec/s", "error");
      for (const Json& p : s["partitions"]) {
        const int err = p["log_error"].get<int>();
        fmt::print("{:<24} {:>5} {:>14} {:>14} {:>14} {:>14} {:>12.0f} {}\n", p["topic"].get<std::string>(),
                   p["partition"].get<std::uint32_t>(), p["log_start_offset"].get<std::uint64_t>(),
                   p["end_offset"].get<std::uint64_t>(), p["durable_offset"].get<std::uint64_t>(),
                   p["retained_bytes"].get<std::uint64_t>(), p["records_in_per_second"].get<double>(),
                   err == 0 ? "-" : std::strerror(err));
      }
      if (!s["groups"].empty()) {
        fmt::print("\n{:<24} {:<16} {:<6} {:>5} {:>14} {:>12} {:>12}\n", "topic", "group", "mode", "part", "committed", "lag",
                   "out rec/s");
        for (const Json& gr : s["groups"]) {
          fmt::print("{:<24} {:<16} {:<6} {:>5} {:>14} {:>12} {:>12.0f}\n", gr["topic"].get<std::string>(),
                     gr["group"].get<std::string>(), gr["mode"].get<std::string>(), gr["partition"].get<std::uint32_t>(),
                     gr["committed"].get<std::uint64_t>(), gr["lag"].get<std::uint64_t>(),
                     gr["records_out_per_second"].get<double>());
        }
      }
      fmt::print("broker errors logged: {}; metrics: {}\n", s["errors"].get<std::uint64_t>(),
                 port == 0 ? std::string("off") : fmt::format("http://127.0.0.1:{}/metrics", port));
      std::fflush(stdout);
      if (*watch <= 0) break;
      for (int i = 0; i < static_cast<int>(*watch * 10) && !g_stop.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    } while (!g_stop.load());
  });
}

}  // namespace ringbus::cli
