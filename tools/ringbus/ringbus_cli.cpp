// ringbus: the command line of a ringbus instance (tools/README.md).
// Admin subcommands talk to ringbusd over its control socket; produce and
// consume use the topic's rings directly, as any client program does.
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "cli.h"
#include "ringbus/topic.h"

namespace ringbus::cli {
std::atomic<bool> g_stop{false};
}  // namespace ringbus::cli

int main(int argc, char** argv) {
  using namespace ringbus::cli;
  CLI::App app{"ringbus: manage topics, publish and read records on this host's ringbus broker"};
  app.footer(
      "The broker is found by instance name: --instance, else $RINGBUS_INSTANCE, else \"default\".\n"
      "Exit codes: 0 done, 1 error, 2 bad command line, 3 no broker or unknown topic, 4 timed out.\n"
      "Run 'ringbus SUBCOMMAND --help' for each subcommand's options and examples.");
  app.require_subcommand(1);
  Global g;
  std::string instance;
  app.add_option("--instance,-i", instance, "the broker's instance name");
  std::int64_t timeout_ms = 10000;
  app.add_option("--request-timeout", timeout_ms, "how long to wait for the broker's answers (default 10s)")
      ->transform(duration_units())
      ->check(CLI::PositiveNumber);
  int code = kExitOk;
  add_topic_commands(app, g, code);
  add_produce_command(app, g, code);
  add_consume_command(app, g, code);
  add_group_commands(app, g, code);
  add_stats_command(app, g, code);
  add_cluster_commands(app, g, code);
  add_log_commands(app, code);
  add_perf_commands(app, g, code);
  // Resolve the global options before any subcommand's callback runs.
  app.parse_complete_callback([&] {
    g.instance = instance.empty() ? ringbus::default_instance() : instance;
    g.timeout = std::chrono::milliseconds(timeout_ms);
    if (auto s = ringbus::validate_name("instance", g.instance); !s) throw CLI::ValidationError("--instance", s.error().message);
  });

  struct sigaction sa{};
  sa.sa_handler = [](int) { g_stop.store(true); };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 says only "A subcommand is required" for a word it did not know
    // as one: name the word.
    std::string path = "ringbus";
    CLI::App* at = &app;
    while (!at->get_subcommands().empty()) {
      at = at->get_subcommands().front();
      path += " " + at->get_name();
    }
    const std::vector<std::string> rest = at->remaining();
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && !rest.empty() && !at->get_subcommands({}).empty()) {
      std::fprintf(stderr, "%s: unknown subcommand '%s' (try '%s --help')\n", path.c_str(), rest.front().c_str(),
                   path.c_str());
      return kExitUsage;
    }
    (void)app.exit(e);
    return kExitUsage;
  }
  return code;
}
