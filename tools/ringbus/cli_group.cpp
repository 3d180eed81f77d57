// ringbus group list|describe|reset|delete: consumer groups, through the
// broker's control channel.
#include <ctime>
#include <optional>

#include "cli.h"

namespace ringbus::cli {

using control::Json;

std::optional<std::int64_t> parse_time_ms(const std::string& s) {
  if (s.size() > 1 && s[0] == '@') {
    std::int64_t ms = 0;
    const char* end = s.data() + s.size();
    if (std::from_chars(s.data() + 1, end, ms).ptr == end) return ms;
    return std::nullopt;
  }
  // 2026-11-25T10:00:00Z, optionally with .mmm before the Z (UTC only).
  std::tm t{};
  const char* rest = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &t);
  if (rest == nullptr) return std::nullopt;
  std::int64_t ms = 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9' && digits < 3; ++rest, ++digits) ms = ms * 10 + (*rest - '0');
    for (; digits < 3; ++digits) ms *= 10;
  }
  if (std::string_view(rest) != "Z") return std::nullopt;
  return static_cast<std::int64_t>(::timegm(&t)) * 1000 + ms;
}

namespace {

void print_group(const Json& g) {
  fmt::print("group {} of topic {}: {} (start {}), generation {}", g["name"].get<std::string>(),
             g["topic"].get<std::string>(), g["mode"].get<std::string>(), g["start"].get<std::string>(),
             g["generation"].get<std::uint64_t>());
  if (g["mode"] == "queue") {
    fmt::print(", lease {} ms, max deliveries {}, dead letters to {}", g["lease_ms"].get<std::int64_t>(),
               g["max_deliveries"].get<std::uint32_t>(),
               g["dead_letter_topic"].get<std::string>().empty() ? "(dropped)" : g["dead_letter_topic"].get<std::string>());
  }
  fmt::print("\n{} member(s):\n", g["members"].size());
  for (const Json& m : g["members"]) {
    std::string parts;
    for (const Json& p : m["partitions"]) parts += (parts.empty() ? "" : ",") + std::to_string(p.get<std::uint32_t>());
    fmt::print("  member {} pid {} client {} heartbeat {} ms ago{}\n", m["slot"].get<std::uint32_t>(),
               m["pid"].get<std::int32_t>(), m.value("client", 0), m["heartbeat_age_ms"].get<std::int64_t>(), g["mode"] == "pubsub" ? " partitions " + (parts.empty() ? "-" : parts) : "");
  }
  fmt::print("{:>9} {:>14} {:>14} {:>12} {:>10} {:>12} {:>13}\n", "partition", "committed", "end offset", "lag", "in flight",
             "redelivered", "dead-lettered");
  for (const Json& p : g["partitions"]) {
    fmt::print("{:>9} {:>14} {:>14} {:>12} {:>10} {:>12} {:>13}\n", p["partition"].get<std::uint32_t>(),
               p["committed"].is_null() ? "-" : std::to_string(p["committed"].get<std::uint64_t>()),
               p["end_offset"].get<std::uint64_t>(), p["lag"].get<std::uint64_t>(), p["in_flight"].get<std::uint64_t>(),
               p["redelivered"].get<std::uint64_t>(), p["dead_lettered"].get<std::uint64_t>());
  }
}

struct GroupArgs {
  std::string topic;
  std::string group;
  std::string to;
  bool queue = false;
  bool json = false;
};

}  // namespace

void add_group_commands(CLI::App& app, const Global& g, int& code) {
  CLI::App* group = app.add_subcommand("group", "list, describe, reset and delete consumer groups");
  group->require_subcommand(1);
  auto a = std::make_shared<GroupArgs>();

  CLI::App* list = group->add_subcommand("list", "the groups of a topic, one per line");
  list->footer("Example:\n  ringbus group list orders");
  list->add_option("TOPIC", a->topic, "topic")->required();
  list->callback([&g, &code, a] {
    Json r;
    if (!call(g, "list_groups", Json{{"topic", a->topic}}, r, code)) return;
    for (const Json& n : r["groups"]) fmt::print("{}\n", n.get<std::string>());
  });

  CLI::App* describe = group->add_subcommand("describe", "a group's members, positions and lag per partition");
  describe->footer("Example:\n  ringbus group describe orders billing --json");
  describe->add_option("TOPIC", a->topic, "topic")->required();
  describe->add_option("GROUP", a->group, "group")->required();
  describe->add_flag("--json", a->json, "print the broker's answer as JSON");
  describe->callback([&g, &code, a] {
    Json r;
    if (!call(g, "describe_group", Json{{"topic", a->topic}, {"group", a->group}}, r, code)) return;
    if (a->json) {
      fmt::print("{}\n", r["group"].dump(2));
    } else {
      print_group(r["group"]);
    }
  });

  CLI::App* reset = group->add_subcommand("reset", "move a group (with no live members) to another position");
  reset->footer(
      "TO is earliest, latest, an offset (the same in every partition, clamped to what exists), or a time:\n"
      "2026-11-25T10:00:00Z (UTC) or @UNIX_MILLISECONDS. A group that does not exist is created.\n"
      "Examples:\n"
      "  ringbus group reset orders billing --to earliest\n"
      "  ringbus group reset orders billing --to 2026-11-25T10:00:00Z\n"
      "  ringbus group reset jobs workers --to latest --queue");
  reset->add_option("TOPIC", a->topic, "topic")->required();
  reset->add_option("GROUP", a->group, "group")->required();
  reset->add_option("--to", a->to, "earliest, latest, OFFSET or TIME")->required();
  reset->add_flag("--queue", a->queue, "create the group as a queue group if it does not exist (default pubsub)");
  reset->callback([&g, &code, a] {
    Json to;
    std::uint64_t offset = 0;
    const char* end = a->to.data() + a->to.size();
    if (a->to == "earliest" || a->to == "latest") {
      to = a->to;
    } else if (!a->to.empty() && std::from_chars(a->to.data(), end, offset).ptr == end) {
      to = offset;
    } else if (const auto ms = parse_time_ms(a->to)) {
      to = Json{{"time_ms", *ms}};
    } else {
      std::fprintf(stderr, "ringbus: --to '%s': expected earliest, latest, an offset, a UTC time like 2026-11-25T10:00:00Z or @UNIX_MS\n",
                   a->to.c_str());
      code = kExitUsage;
      return;
    }
    Json r;
    Json req{{"topic", a->topic}, {"group", a->group}, {"to", to}};
    if (a->queue) req["mode"] = "queue";
    if (!call(g, "reset_group", req, r, code)) return;
    print_group(r["group"]);
  });

  CLI::App* del = group->add_subcommand("delete", "delete a group (with no live members) and its positions");
  del->footer("Example:\n  ringbus group delete orders billing");
  del->add_option("TOPIC", a->topic, "topic")->required();
  del->add_option("GROUP", a->group, "group")->required();
  del->callback([&g, &code, a] {
    Json r;
    if (!call(g, "delete_group", Json{{"topic", a->topic}, {"group", a->group}}, r, code)) return;
    fmt::print("deleted group {} of topic {}\n", a->group, a->topic);
  });
}

}  // namespace ringbus::cli
