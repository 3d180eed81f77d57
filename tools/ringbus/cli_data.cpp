// ringbus produce, ringbus consume: the data path, straight into and out of
// the topic's rings (and its commit log), never through the broker.
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "ringbus/consumer.h"
#include "ringbus/group.h"
#include "ringbus/producer.h"
#include "ringbus/topic.h"

namespace ringbus::cli {

Result<Source> Source::open(const Global& g, const std::string& topic, const std::string& group, bool queue,
                            const ConsumerOptions& co, bool auto_ack) {
  Source s;
  if (group.empty()) {
    auto plain = Consumer::open(g.instance, topic, co);
    if (!plain) return plain.error();
    s.plain.emplace(std::move(plain.value()));
    return s;
  }
  GroupOptions go;
  go.settings.mode = queue ? GroupMode::queue : GroupMode::pubsub;
  go.settings.start = co.start.kind == StartPosition::Kind::earliest ? StartPosition::Kind::earliest
                                                                      : StartPosition::Kind::latest;
  go.auto_ack = auto_ack;
  auto member = GroupConsumer::join(g.instance, topic, group, go);
  if (!member) return member.error();
  s.member.emplace(std::move(member.value()));
  return s;
}

namespace {

// Reads the next line, without its '\n', into `line`. A line longer than
// `limit` bytes is not read whole (a 200 MB line would be held in memory
// only to be refused): false, with `too_long` set, once it passes the limit.
bool read_line(std::istream& in, std::string& line, std::size_t limit, bool& too_long) {
  line.clear();
  too_long = false;
  std::streambuf* buf = in.rdbuf();
  for (;;) {
    const int c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) {
      in.setstate(std::ios::eofbit);
      return !line.empty();
    }
    if (c == '\n') return true;
    if (line.size() == limit) {
      too_long = true;
      return false;
    }
    line.push_back(static_cast<char>(c));
  }
}

struct ProduceOptions {
  std::string topic;
  std::string file;
  bool keyed = false;
  std::string key_separator;
  std::vector<std::string> headers;
  double rate = 0;
  bool durable = false;  // --durable: --acks local
  std::string acks;      // "", "local" or "all"
  std::int64_t partition = -1;
};

// After not_leader: which node to produce to instead, if this host knows.
std::string leader_said(const Producer& p, PublishStatus s) {
  if (s != PublishStatus::not_leader) return "";
  const std::string leader = p.leader();
  return leader.empty() ? " (no leader is known here yet: ringbus cluster status)" : " (node '" + leader + "' leads it)";
}

int produce(const Global& g, const ProduceOptions& o) {
  std::vector<std::pair<std::string, std::string>> header_store;
  for (const std::string& h : o.headers) {
    const std::size_t eq = h.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "ringbus: --header '%s' is not NAME=VALUE\n", h.c_str());
      return kExitUsage;
    }
    header_store.emplace_back(h.substr(0, eq), h.substr(eq + 1));
  }
  std::vector<Header> headers;
  for (const auto& [n, v] : header_store) headers.push_back({n, v});
  const std::string sep = o.keyed && o.key_separator.empty() ? std::string("\t") : o.key_separator;

  auto p = Producer::open(g.instance, o.topic);
  if (!p) return fail(p.error());
  if (o.partition >= static_cast<std::int64_t>(p->partitions())) {
    std::fprintf(stderr, "ringbus: --partition %lld: topic '%s' has %u partitions\n", static_cast<long long>(o.partition),
                 o.topic.c_str(), p->partitions());
    return kExitUsage;
  }
  const std::uint32_t partition = o.partition < 0 ? kAutoPartition : static_cast<std::uint32_t>(o.partition);

  std::ifstream file;
  if (!o.file.empty() && o.file != "-") {
    file.open(o.file);
    if (!file) {
      std::fprintf(stderr, "ringbus: cannot read %s\n", o.file.c_str());
      return kExitError;
    }
  }
  std::istream& in = file.is_open() ? static_cast<std::istream&>(file) : std::cin;
  std::map<std::uint32_t, PublishResult> last;  // per partition, for --acks
  std::uint64_t n = 0;
  const auto start = std::chrono::steady_clock::now();
  std::string line;
  // No record is longer than this line: the separator and the max record size.
  const std::size_t line_limit = p->max_record_size() + sep.size();
  bool too_long = false;
  while (!g_stop.load(std::memory_order_relaxed) && read_line(in, line, line_limit, too_long)) {
    std::string_view key;
    std::string_view value = line;
    if (!sep.empty()) {
      if (const std::size_t at = line.find(sep); at != std::string::npos) {
        key = std::string_view(line).substr(0, at);
        value = std::string_view(line).substr(at + sep.size());
      }
    }
    if (o.rate > 0) {
      std::this_thread::sleep_until(start + std::chrono::duration<double>(static_cast<double>(n) / o.rate));
    }
    const PublishResult r = p->publish(key, value, headers, partition);
    if (!r.ok()) {
      std::fprintf(stderr, "ringbus: line %llu: %s%s (%llu records published before it)\n",
                   static_cast<unsigned long long>(n + 1), to_string(r.status), leader_said(*p, r.status).c_str(),
                   static_cast<unsigned long long>(n));
      return r.status == PublishStatus::topic_deleted || r.status == PublishStatus::no_broker ? kExitNotFound : kExitError;
    }
    last[r.partition] = r;
    ++n;
  }
  if (too_long) {
    std::fprintf(stderr, "ringbus: line %llu: record too large: longer than the topic's max record size (%u bytes); "
                         "not read further (%llu records published before it)\n",
                 static_cast<unsigned long long>(n + 1), p->max_record_size(), static_cast<unsigned long long>(n));
    return kExitError;
  }
  const std::string acks = o.acks.empty() && o.durable ? "local" : o.acks;
  if (!acks.empty()) {
    for (const auto& [part, r] : last) {
      const PublishStatus s = acks == "all" ? p->wait_replicated(r, std::chrono::seconds(30))
                                            : p->wait_durable(r, std::chrono::seconds(30));
      if (s != PublishStatus::ok) {
        std::fprintf(stderr, "ringbus: partition %u: not %s: %s%s\n", part,
                     acks == "all" ? "durable on every in-sync replica" : "durable", to_string(s),
                     leader_said(*p, s).c_str());
        return s == PublishStatus::no_broker ? kExitNotFound : kExitError;
      }
    }
  }
  std::fprintf(stderr, "produced %llu records to %s%s\n", static_cast<unsigned long long>(n), o.topic.c_str(),
               acks == "all" ? " (durable on every in-sync replica)" : acks == "local" ? " (durable)" : "");
  return kExitOk;
}

struct ConsumeOptions {
  std::string topic;
  std::string from = "latest";
  std::uint64_t count = 0;
  std::string format = "value";
  std::vector<std::uint32_t> partitions;
  std::int64_t timeout_ms = -1;
  std::string group;
  bool gating = false;
  bool queue = false;
  std::string read_up_to = "replicated";
};

void print_record(const Record& r, const std::string& format) {
  if (format == "value") {
    std::fwrite(r.value.data(), 1, r.value.size(), stdout);
    std::fputc('\n', stdout);
  } else if (format == "key-value") {
    std::fwrite(r.key.data(), 1, r.key.size(), stdout);
    std::fputc('\t', stdout);
    std::fwrite(r.value.data(), 1, r.value.size(), stdout);
    std::fputc('\n', stdout);
  } else {
    nlohmann::json h = nlohmann::json::object();
    for (const Header& x : r.headers) h[std::string(x.name)] = std::string(x.value);
    const nlohmann::json j{{"partition", r.partition},         {"offset", r.offset},
                           {"timestamp_ms", r.timestamp_ms},   {"key", std::string(r.key)},
                           {"value", std::string(r.value)},    {"headers", std::move(h)}};
    // Bytes that are not UTF-8 are replaced (U+FFFD) rather than failing the line.
    std::fputs(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str(), stdout);
    std::fputc('\n', stdout);
  }
}

int consume(const Global& g, const ConsumeOptions& o) {
  if (!o.group.empty()) {
    if (o.from != "earliest" && o.from != "latest") {
      std::fprintf(stderr, "ringbus: --from with --group is earliest or latest (where a new group starts); "
                           "move an existing group with 'ringbus group reset'\n");
      return kExitUsage;
    }
    if (!o.partitions.empty()) {
      std::fprintf(stderr, "ringbus: --partition and --group do not go together (the group assigns partitions)\n");
      return kExitUsage;
    }
  } else if (o.queue) {
    std::fprintf(stderr, "ringbus: --queue needs --group\n");
    return kExitUsage;
  }
  if (o.gating && !o.group.empty()) {
    std::fprintf(stderr, "ringbus: --gating and --group do not go together (group members never hold producers back)\n");
    return kExitUsage;
  }
  if (o.read_up_to == "published" && !o.group.empty()) {
    std::fprintf(stderr, "ringbus: --read-up-to published and --group do not go together (a group commits only "
                         "replicated records, so that no failover takes back a committed position)\n");
    return kExitUsage;
  }
  ConsumerOptions co;
  if (o.from == "earliest") {
    co.start = StartPosition::earliest();
  } else if (o.from == "latest") {
    co.start = StartPosition::latest();
  } else {
    std::uint64_t off = 0;
    const char* end = o.from.data() + o.from.size();
    if (!o.from.empty() && std::from_chars(o.from.data(), end, off).ptr == end) {
      co.start = StartPosition::at(off);
    } else if (const auto ms = parse_time_ms(o.from)) {
      co.start = StartPosition::at_time(*ms * 1'000'000);
    } else {
      std::fprintf(stderr, "ringbus: --from '%s': expected earliest, latest, an offset, or a UTC time like "
                           "2026-11-25T10:00:00Z or @UNIX_MS\n", o.from.c_str());
      return kExitUsage;
    }
  }
  co.partitions = o.partitions;
  co.gating = o.gating;
  co.read_up_to = o.read_up_to == "published" ? ReadUpTo::published : ReadUpTo::replicated;
  // Each printed record is acknowledged; what a chunk held beyond --count
  // goes back to the group when we leave.
  auto source = Source::open(g, o.topic, o.group, o.queue, co, /*auto_ack=*/false);
  if (!source) return fail(source.error());
  Source& c = source.value();
  // pubsub member: where each partition's unprinted records start (poll
  // hands over whole batches; what --count cuts off must stay the group's).
  std::map<std::uint32_t, std::uint64_t> unprinted;
  std::uint64_t n = 0;
  const auto idle_limit = std::chrono::milliseconds(o.timeout_ms);
  auto deadline = std::chrono::steady_clock::now() + idle_limit;
  bool told_no_broker = false;
  while (!g_stop.load(std::memory_order_relaxed) && (o.count == 0 || n < o.count)) {
    const std::size_t want = o.count == 0 ? 1024 : static_cast<std::size_t>(std::min<std::uint64_t>(o.count - n, 1024));
    const PollResult r = c.poll(
        [&](const Record& rec) {
          // poll delivers whole batches: stop printing at the count.
          if (o.count != 0 && n >= o.count) {
            unprinted.try_emplace(rec.partition, rec.offset);
            return;
          }
          print_record(rec, o.format);
          if (c.member && c.member->mode() == GroupMode::queue) (void)c.member->ack(rec.partition, rec.offset);
          ++n;
        },
        want);
    if (std::ferror(stdout) != 0) {
      // The reader of our output went away (a closed pipe): stop quietly, as
      // cat does under `| head`; any other write error is an error.
      return errno == EPIPE ? kExitOk : (std::perror("ringbus: writing records"), kExitError);
    }
    if (r.status == PollStatus::topic_deleted) {
      std::fflush(stdout);
      std::fprintf(stderr, "ringbus: topic '%s' was deleted (after %llu records)\n", o.topic.c_str(),
                   static_cast<unsigned long long>(n));
      return kExitNotFound;
    }
    if (r.status != PollStatus::ok) std::fprintf(stderr, "ringbus: %s\n", to_string(r.status));
    if (r.records > 0) deadline = std::chrono::steady_clock::now() + idle_limit;
    if (r.records == 0) {
      std::fflush(stdout);
      // Idle: also notice a reader that went away (`| head`) without waiting
      // for the next record to fail its write.
      pollfd out{STDOUT_FILENO, 0, 0};
      if (::poll(&out, 1, 0) > 0 && (out.revents & (POLLERR | POLLHUP)) != 0) return kExitOk;
      if (o.timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline) {
        std::fprintf(stderr, "ringbus: no record for %lld ms (timed out after %llu records)\n",
                     static_cast<long long>(o.timeout_ms), static_cast<unsigned long long>(n));
        return kExitTimeout;
      }
      const WaitStatus w = c.wait(std::chrono::milliseconds(100));
      if (w == WaitStatus::no_broker && !told_no_broker) {
        std::fprintf(stderr,
                     "ringbus: no broker is running for instance '%s': reading what producers still publish into "
                     "the rings (nothing is made durable until a broker starts)\n",
                     g.instance.c_str());
      }
      if (w == WaitStatus::timed_out && told_no_broker) std::fprintf(stderr, "ringbus: a broker is running again\n");
      if (w != WaitStatus::ready) told_no_broker = w == WaitStatus::no_broker;
    }
  }
  std::fflush(stdout);
  if (c.member) {
    if (c.member->mode() == GroupMode::pubsub) {
      for (const auto& [partition, offset] : unprinted) (void)c.member->rewind(partition, offset);
    }
    // On disk before we say we are done (a broker killed right after must
    // not forget); a broker without a data directory keeps them in memory.
    const Status durable = c.member->commit(/*durable=*/true);
    c.member->leave();  // a queue member hands back what it did not acknowledge
    if (!durable && durable.error().code != Errc::invalid_argument) {
      std::fprintf(stderr, "ringbus: the group's position is not durable: %s\n", durable.error().message.c_str());
      return kExitError;
    }
  }
  return kExitOk;
}

}  // namespace

void add_produce_command(CLI::App& app, const Global& g, int& code) {
  auto o = std::make_shared<ProduceOptions>();
  CLI::App* cmd = app.add_subcommand("produce", "publish one record per line of stdin (or a file)");
  cmd->footer(
      "Records without a key go round-robin over the partitions; with a key, to the key's partition.\n"
      "Examples:\n"
      "  seq 1 1000 | ringbus produce numbers\n"
      "  printf 'truck-7\\t{\"speed\":88}\\n' | ringbus produce trucks --keyed --durable\n"
      "  seq 1 100 | ringbus produce payments --acks all\n"
      "  ringbus produce logs --file app.log --header source=app --rate 500");
  cmd->add_option("TOPIC", o->topic, "topic")->required();
  cmd->add_option("--file,-f", o->file, "read this file instead of stdin ('-': stdin)");
  cmd->add_flag("--keyed,-k", o->keyed, "each line is KEY<TAB>VALUE");
  cmd->add_option("--key-separator", o->key_separator, "split KEY and VALUE at this string instead of a tab");
  cmd->add_option("--header,-H", o->headers, "NAME=VALUE header on every record (repeatable)");
  cmd->add_option("--rate", o->rate, "at most this many records per second")->check(CLI::PositiveNumber);
  auto* durable = cmd->add_flag("--durable", o->durable, "exit only once every record is durable in the commit log (--acks local)");
  cmd->add_option("--acks", o->acks,
                  "exit only once every record is durable: 'local' in this broker's commit log, 'all' on every "
                  "in-sync replica of a replicated topic (at least its min_insync of them)")
      ->check(CLI::IsMember({"local", "all"}))
      ->excludes(durable);
  cmd->add_option("--partition", o->partition, "publish every record to this partition")->check(CLI::NonNegativeNumber);
  cmd->callback([&g, &code, o] { code = produce(g, *o); });
}

void add_consume_command(CLI::App& app, const Global& g, int& code) {
  auto o = std::make_shared<ConsumeOptions>();
  CLI::App* cmd = app.add_subcommand("consume", "print records of a topic, one per line");
  cmd->footer(
      "Without --count it follows the topic until interrupted.\n"
      "Examples:\n"
      "  ringbus consume numbers --from earliest --count 1000\n"
      "  ringbus consume trucks --from latest --format json\n"
      "  ringbus consume trucks --from 5000 --partition 2 --format key-value\n"
      "  ringbus consume trucks --from 2026-11-25T10:00:00Z --count 100\n"
      "  ringbus consume orders --group billing --from earliest      # every group sees every record\n"
      "  ringbus consume jobs --group workers --queue --count 10     # members share the records");
  cmd->add_option("TOPIC", o->topic, "topic")->required();
  cmd->add_option("--from", o->from,
                  "earliest, latest (default), an offset (in every partition read), or a UTC time: "
                  "2026-11-25T10:00:00Z or @UNIX_MS (each partition's first record at or after it)");
  cmd->add_option("--count,-n", o->count, "exit after this many records");
  cmd->add_option("--format", o->format, "value (default), key-value (KEY<TAB>VALUE) or json (one object per line)")
      ->check(CLI::IsMember({"value", "key-value", "json"}));
  cmd->add_option("--partition", o->partitions, "read only these partitions (repeatable)");
  cmd->add_option("--timeout", o->timeout_ms, "give up (exit 4) when no record came for this long")
      ->transform(duration_units());
  cmd->add_option("--group,-g", o->group, "read as a member of this consumer group (created if new; positions are committed)");
  cmd->add_flag("--gating", o->gating, "producers wait for this consumer: it never misses a record (a stopped one holds them back until it dies)");
  cmd->add_flag("--queue", o->queue, "the group is a queue: its members share the records one by one (default: publish-subscribe)");
  cmd->add_option("--read-up-to", o->read_up_to,
                  "on a replicated topic: 'replicated' (default) prints only records every in-sync replica holds, "
                  "which no failover takes back; 'published' prints each record as soon as it is published")
      ->check(CLI::IsMember({"replicated", "published"}));
  cmd->callback([&g, &code, o] { code = consume(g, *o); });
}

}  // namespace ringbus::cli
