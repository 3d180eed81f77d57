// ringbus topic create|list|describe|alter|delete, ringbus stats: requests to the
// broker over the control channel.
#include <optional>
#include <thread>
#include <utility>

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
  if (t.value("mirror", false)) {
    fmt::print("a mirror's copy: another node of the cluster leads it (ringbus cluster status); consumers read it "
               "here, producers are refused\n");
  }
  if (t.contains("log")) {
    const Json& l = t["log"];
    const auto ms = [&](const char* key) { return l[key].get<std::int64_t>(); };
    const auto bytes = [&](const char* key) { return l[key].get<std::uint64_t>(); };
    fmt::print("log: durability {}", l["durability"].get<std::string>());
    if (l["durability"] == "interval") fmt::print(" (flush every {} ms or {} bytes)", ms("flush_interval_ms"), bytes("flush_bytes"));
    fmt::print("; segments of {} bytes or {} ms; retention {} bytes, {} ms (0: no limit), policy {}; compression {}\n",
               bytes("segment_bytes"), ms("segment_age_ms"), bytes("retention_bytes"), ms("retention_age_ms"),
               l["retention_policy"].get<std::string>(), l.value("compression", "none"));
  }
  fmt::print("{:>9} {:>14} {:>14} {:>14} {:>14} {:>7} {}\n", "partition", "log start", "end offset", "written",
             "durable", "gating", "notes");
  for (const Json& p : t["partition_info"]) {
    // Without a commit log the log's columns are "-".
    const bool log = p["has_log"].get<bool>();
    const auto log_field = [&](const char* key) { return log ? std::to_string(p[key].get<std::uint64_t>()) : "-"; };
    const int err = p["log_error"].get<int>();
    std::string error = p.value("offline", false)
                            ? fmt::format("OFFLINE: {} (the broker's log names the file and what to do)", std::strerror(err))
                            : log && err != 0 ? std::strerror(err) : "-";
    if (const auto damaged = p.value("damaged_segments", 0U); damaged != 0) {
      error = (error == "-" ? "" : error + "; ") +
              fmt::format("{} damaged segment(s) (the broker's log names them; ringbus log verify)", damaged);
    }
    if (const auto owner = p.value("exclusive_owner", 0); owner != 0) {
      error = (error == "-" ? "" : error + "; ") +
              fmt::format("owned by the exclusive producer of client {} (others get partition_owned)", owner);
    }
    fmt::print("{:>9} {:>14} {:>14} {:>14} {:>14} {:>7} {}\n", p["partition"].get<std::uint32_t>(),
               log_field("log_start_offset"), p["end_offset"].get<std::uint64_t>(), log_field("written_offset"),
               log_field("durable_offset"), p["gating_readers"].get<std::uint32_t>(), error);
  }
}

// The commit log's settings, for create and alter: each left out keeps the
// default (create) or the topic's current value (alter).
struct LogOptions {
  std::optional<std::uint64_t> segment_bytes;
  std::optional<std::int64_t> segment_age_ms;
  std::optional<std::uint64_t> retention_bytes;
  std::optional<std::int64_t> retention_age_ms;
  std::string retention_policy;
  std::string durability;
  std::string compression;
  std::optional<std::int64_t> flush_interval_ms;
  std::optional<std::uint64_t> flush_bytes;

  void add_to(CLI::App* app) {
    app->add_option("--segment-bytes", segment_bytes, "roll log segments at this size (default 1GiB)")
        ->transform(CLI::AsSizeValue(false));
    app->add_option("--segment-age", segment_age_ms, "... or at this age (default 7d)")->transform(duration_units());
    app->add_option("--retention-bytes", retention_bytes,
                    "delete the oldest segments above this per partition (default 0: no limit)")
        ->transform(CLI::AsSizeValue(false));
    app->add_option("--retention-age", retention_age_ms, "... or older than this (default 7d; 0ms: no limit)")
        ->transform(duration_units());
    app->add_option("--retention-policy", retention_policy,
                    "limits (default): only the two limits above delete; consumed: also delete a segment once every "
                    "consumer group of the topic has committed past it")
        ->check(CLI::IsMember({"limits", "consumed"}));
    app->add_option("--durability", durability, "page_cache, interval (default) or every_ack")
        ->check(CLI::IsMember({"page_cache", "interval", "every_ack"}));
    app->add_option("--compression", compression,
                    "none (default), gzip, snappy, lz4 or zstd: how the broker compresses the batches it writes "
                    "(batches already written stay as they are)")
        ->check(CLI::IsMember({"none", "gzip", "snappy", "lz4", "zstd"}));
    app->add_option("--flush-interval", flush_interval_ms, "for interval: fdatasync this often (default 100ms)")
        ->transform(duration_units());
    app->add_option("--flush-bytes", flush_bytes, "for interval: also after this many bytes (default 0: off)")
        ->transform(CLI::AsSizeValue(false));
  }
  // The control channel's fields (control_protocol.h) of the options given.
  void put(Json& t) const {
    if (segment_bytes) t["segment_bytes"] = *segment_bytes;
    if (segment_age_ms) t["segment_age_ms"] = *segment_age_ms;
    if (retention_bytes) t["retention_bytes"] = *retention_bytes;
    if (retention_age_ms) t["retention_age_ms"] = *retention_age_ms;
    if (!retention_policy.empty()) t["retention_policy"] = retention_policy;
    if (!durability.empty()) t["durability"] = durability;
    if (!compression.empty()) t["compression"] = compression;
    if (flush_interval_ms) t["flush_interval_ms"] = *flush_interval_ms;
    if (flush_bytes) t["flush_bytes"] = *flush_bytes;
  }
};

struct CreateOptions {
  std::string name;
  std::uint32_t partitions = 1;
  std::uint64_t ring_bytes = 0;
  std::uint64_t max_record_size = 0;
  std::uint32_t replicas = 1;
  std::uint32_t min_insync = 1;
  LogOptions log;
};

}  // namespace

void add_topic_commands(CLI::App& app, const Global& g, int& code) {
  CLI::App* topic = app.add_subcommand("topic", "create, list, describe, alter and delete topics");
  topic->require_subcommand(1);

  auto o = std::make_shared<CreateOptions>();
  CLI::App* create = topic->add_subcommand("create", "create a topic");
  create->footer(
      "Sizes take units (64MiB, 1GiB, 4096), durations too (100ms, 10s, 7d); options left out take the\n"
      "defaults (bus/README.md). Examples:\n"
      "  ringbus topic create orders --partitions 8\n"
      "  ringbus topic create audit --durability every_ack --retention-age 30d --ring-bytes 256MiB\n"
      "  ringbus topic create payments --replicas 3 --min-insync 2   (a broker in a cluster: ringbusd --etcd)");
  create->add_option("NAME", o->name, "topic name: 1-249 of [A-Za-z0-9._-], not starting with '.'")->required();
  create->add_option("--partitions,-p", o->partitions, "partitions (1-1024)")->capture_default_str();
  create->add_option("--ring-bytes", o->ring_bytes, "ring size per partition: a power of two, 64KiB-1TiB (default 2MiB)")
      ->transform(CLI::AsSizeValue(false));
  create->add_option("--max-record-size", o->max_record_size, "largest key+headers+value (default 1MiB, or what fits a quarter of a smaller ring)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::PositiveNumber);  // 0 would read as "the default"
  create->add_option("--replicas", o->replicas,
                     "copies on as many nodes of the broker's cluster, this node leading first (1-5)")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  create->add_option("--min-insync", o->min_insync,
                     "in-sync replicas, the leader included, that acks=all needs (1 to --replicas)")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  o->log.add_to(create);
  create->callback([&g, &code, o] {
    Json t{{"name", o->name}, {"partitions", o->partitions}};
    if (o->ring_bytes != 0) t["ring_bytes"] = o->ring_bytes;
    if (o->max_record_size != 0) {
      t["max_record_size"] = o->max_record_size;
    } else if (o->ring_bytes != 0 && o->ring_bytes / 4 > 32) {
      // The default would not fit a small ring: take what fits.
      t["max_record_size"] = std::min<std::uint64_t>(TopicConfig{}.max_record_size, o->ring_bytes / 4 - 32);
    }
    o->log.put(t);
    Json req{{"topic", t}};
    if (o->replicas != 1 || o->min_insync != 1) {
      req["replicas"] = o->replicas;
      req["min_insync"] = o->min_insync;
    }
    Json r;
    if (!call(g, "create_topic", req, r, code)) return;
    fmt::print("created topic {} ({} partitions", o->name, r["topic"]["partitions"].get<std::uint32_t>());
    if (r.contains("replicas")) {
      std::string on;
      for (const Json& n : r["replicas"]) on += (on.empty() ? "" : ", ") + n.get<std::string>();
      fmt::print("; replicas {}; min in sync {}", on, r["min_insync"].get<std::uint32_t>());
    }
    fmt::print(")\n");
  });

  auto a = std::make_shared<std::pair<std::string, LogOptions>>();
  CLI::App* alter = topic->add_subcommand("alter", "change a topic's commit-log settings");
  alter->footer(
      "Options left out keep their current value; the flushers apply the new ones at once (segment size\n"
      "from the next segment). Partitions, ring size and max record size are fixed at creation: they\n"
      "shape the rings live producers and consumers have mapped (and which partition a key goes to).\n"
      "Examples:\n"
      "  ringbus topic alter orders --retention-policy consumed\n"
      "  ringbus topic alter audit --retention-age 90d --durability every_ack");
  alter->add_option("NAME", a->first, "topic")->required();
  a->second.add_to(alter);
  for (const char* fixed : {"--partitions", "--ring-bytes", "--max-record-size"}) {
    // Accepted only to say why not (rather than "unknown option").
    alter->add_option(fixed, "fixed at creation: cannot be altered")->group("");
  }
  alter->callback([&g, &code, a, alter] {
    for (const char* fixed : {"--partitions", "--ring-bytes", "--max-record-size"}) {
      if (alter->count(fixed) != 0) {
        fmt::print(stderr,
                   "ringbus: {} cannot be altered: it is fixed when a topic is created (the rings live producers "
                   "and consumers have mapped depend on it); create a new topic instead\n",
                   fixed);
        code = kExitUsage;
        return;
      }
    }
    Json changes = Json::object();
    a->second.put(changes);
    if (changes.empty()) {
      fmt::print(stderr, "ringbus: nothing to alter: give at least one setting (see --help)\n");
      code = kExitUsage;
      return;
    }
    Json r;
    if (!call(g, "alter_topic", Json{{"name", a->first}, {"log", changes}}, r, code)) return;
    fmt::print("altered topic {}\n", a->first);
    print_topic(r["topic"]);
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
      if (const Json& sc = s.value("scrub", Json::object()); !sc.empty()) {
        fmt::print("scrubber: {} passes, {} sealed segments ({} MiB) checked, {} damaged segment(s)\n",
                   sc["passes"].get<std::uint64_t>(), sc["segments_checked"].get<std::uint64_t>(),
                   sc["bytes_checked"].get<std::uint64_t>() >> 20, sc["damaged_segments"].get<std::uint64_t>());
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
