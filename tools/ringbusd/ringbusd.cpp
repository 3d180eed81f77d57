// ringbusd: the per-host broker. Owns a shared-memory instance and a data
// directory; creates and deletes topics on request (the control channel,
// tools/control); runs the flushers and retention; recovers the logs at
// start; serves metrics; shuts down cleanly on SIGTERM or SIGINT.
// tools/README.md has the options, the configuration file and the exit codes.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "control_protocol.h"
#include "control_service.h"
#include "cluster_node.h"
#include "cluster_operations.h"
#include "control_socket.h"
#include "daemon_config.h"
#include "metrics.h"
#include "ringbus/broker.h"

namespace {

using ringbus::control::Json;
using namespace ringbus;
using namespace ringbus::daemon;

// Exit codes (tools/README.md).
constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // could not start (instance taken, data directory refused, ...)
constexpr int kExitUsage = 2;  // bad option or configuration

std::int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// Joins the cluster; in a cluster, topics are created in etcd (replicated
// as asked) and `ringbus cluster status` asks this node what it knows.
Result<std::unique_ptr<cluster::ClusterNode>> start_cluster_node(const DaemonConfig& config, Broker& broker,
                                                                 const io::LogFn& log, control::ControlService& service) {
  cluster::NodeOptions o;
  o.cluster = config.cluster;
  o.node = config.node;
  o.listen = config.listen;
  o.advertise = config.advertise;
  o.secret = config.cluster_secret;
  o.etcd.endpoints = config.etcd;
  o.lease.ttl = std::chrono::seconds(config.lease_ttl_seconds);
  o.max_lag = std::chrono::milliseconds(config.replica_max_lag_ms);
  o.log = log;
  auto started = cluster::ClusterNode::start(o, broker);
  if (!started) return started.error();
  control::add_cluster_operations(service, *started.value(), broker);
  return started;
}

int run(DaemonConfig config) {
  auto logger = spdlog::stderr_color_mt("ringbusd");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_default_logger(logger);

  // Signals are taken by sigtimedwait in this thread only: block them before
  // any thread starts (threads inherit the mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<Metrics> metrics;
  BrokerOptions bo;
  bo.instance = config.instance;
  bo.data_dir = config.memory_only ? "" : config.data_dir;
  bo.flusher_threads = config.flusher_threads;
  bo.io_backend = config.io_backend;
  bo.scrub_bytes_per_second = std::uint64_t{config.scrub_mib_per_second} << 20;
  bo.scrub_interval = std::chrono::hours(config.scrub_interval_hours);
  // Set once the metrics exist; the flushers may log from their threads
  // before that (recovery, disk errors), hence atomic.
  std::atomic<Metrics*> metrics_ptr{nullptr};
  bo.logger = [&metrics_ptr](const char* level, const std::string& message) {
    const std::string_view l(level);
    if (l == "error") {
      spdlog::error("{}", message);
      if (Metrics* m = metrics_ptr.load(std::memory_order_acquire); m != nullptr) m->count_error();
    } else if (l == "warn") {
      spdlog::warn("{}", message);
    } else {
      spdlog::info("{}", message);
    }
  };
  spdlog::info("starting: instance '{}', {}{}", config.instance,
               config.memory_only ? std::string("memory only (no commit log)") : "data directory " + config.data_dir,
               config.etcd.empty() ? std::string() : ", node '" + config.node + "' of cluster '" + config.cluster + "'");
  auto broker = Broker::start(bo);
  if (!broker) {
    spdlog::error("{}", broker.error().message);
    return kExitError;
  }
  metrics = std::make_unique<Metrics>(broker.value(), config.memory_only ? "" : config.data_dir);
  metrics_ptr.store(metrics.get(), std::memory_order_release);
  metrics->sample(monotonic_ns());

  std::unique_ptr<MetricsHttpServer> http;
  if (config.metrics) {
    auto h = MetricsHttpServer::start(static_cast<std::uint16_t>(config.metrics_port), *metrics);
    if (!h) {
      spdlog::error("{}", h.error().message);
      return kExitError;
    }
    http = std::move(h.value());
    spdlog::info("metrics on http://127.0.0.1:{}/metrics", http->port());
  }
  const std::uint16_t metrics_port = http ? http->port() : 0;
  control::ControlService service(broker.value(), [](const std::string& what) { spdlog::info("{}", what); });
  service.add("ping", [&](const Json&) {
    return control::ok_response({{"pid", ::getpid()},
                                 {"instance", config.instance},
                                 {"data_dir", config.memory_only ? "" : config.data_dir},
                                 {"metrics_port", metrics_port},
                                 {"version", RINGBUS_VERSION}});
  });
  service.add("stats", [&](const Json&) { return control::ok_response({{"stats", metrics->json()}}); });
  // The node first: it adds its operations, and a ping answered means the
  // node has joined.
  std::unique_ptr<cluster::ClusterNode> node;
  if (!config.etcd.empty()) {
    auto n = start_cluster_node(config, broker.value(), bo.logger, service);
    if (!n) {
      spdlog::error("{}", n.error().message);
      return kExitError;
    }
    node = std::move(n.value());
    metrics->set_cluster(node.get());
  }
  // The server's thread answers requests; Broker methods are thread-safe.
  auto control = control::ControlServer::start(control::socket_path(config.instance),
                                               [&](const Json& req) { return service.handle(req); });
  if (!control) {
    spdlog::error("{}", control.error().message);
    return kExitError;
  }
  spdlog::info("ready: control socket {}", control.value()->path());

  for (;;) {
    const timespec second{1, 0};
    const int sig = ::sigtimedwait(&signals, nullptr, &second);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("{}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    if (sig == SIGHUP) spdlog::info("SIGHUP ignored (the configuration is read at start)");
    metrics->sample(monotonic_ns());
  }
  control.value()->stop();  // no new requests while the broker closes
  metrics->set_cluster(nullptr);
  node.reset();  // gives its leaderships up at once (its lease revoked)
  http.reset();
  broker.value().close();  // flushes, marks the logs clean, removes the shared memory
  spdlog::info("stopped cleanly");
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringbusd: the ringbus broker of this host (one per instance).\n"
               "Owns the instance's shared memory and the topics' commit logs in its data directory."};
  app.footer(
      "Settings come from the defaults, then --config FILE (TOML), then the options given here.\n"
      "Examples:\n"
      "  ringbusd --data-dir /var/lib/ringbus\n"
      "  RINGBUS_INSTANCE=test ringbusd --memory-only\n"
      "  ringbusd --config /etc/ringbus/ringbusd.toml --log-level debug\n"
      "  ringbusd --data-dir /var/lib/ringbus --node a --listen 10.0.0.1:7100 --etcd http://10.0.0.9:2379 \\\n"
      "           --cluster-secret-file /etc/ringbus/cluster.secret\n"
      "Exit codes: 0 stopped cleanly, 1 could not start, 2 bad option or configuration.");
  std::string config_file;
  std::string instance;
  std::string data_dir;
  bool memory_only = false;
  std::uint32_t flusher_threads = 0;
  std::string io_backend;
  std::string log_level;
  int metrics_port = -1;
  bool no_metrics = false;
  app.add_option("--config", config_file, "TOML configuration file (tools/README.md)")->check(CLI::ExistingFile);
  app.add_option("--instance", instance, "instance name (default: $RINGBUS_INSTANCE, else \"default\")");
  auto* dd = app.add_option("--data-dir", data_dir, "where the commit logs live (default: /var/tmp/ringbus/<instance>)");
  app.add_flag("--memory-only", memory_only, "no commit log: topics live in shared memory only")->excludes(dd);
  app.add_option("--flusher-threads", flusher_threads, "threads that write the commit logs")->check(CLI::Range(1, 256));
  app.add_option("--io-backend", io_backend, "how the flushers write")->check(CLI::IsMember({"io_uring", "pwrite"}));
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--metrics-port", metrics_port, "Prometheus endpoint on 127.0.0.1 (0: any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_flag("--no-metrics", no_metrics, "no metrics endpoint");
  std::vector<std::string> etcd;
  std::string cluster, node, listen, advertise, secret_file;
  app.add_option("--etcd", etcd, "join a cluster through these etcd endpoints (http://HOST:PORT, comma-separated)")
      ->delimiter(',');
  app.add_option("--cluster", cluster, "the cluster's name (default \"ringbus\")");
  app.add_option("--node", node, "this node's name in the cluster");
  app.add_option("--listen", listen, "the replication port other nodes dial, HOST:PORT");
  app.add_option("--advertise", advertise, "the address other nodes dial, if not --listen's (HOST:PORT)");
  app.add_option("--cluster-secret-file", secret_file,
                 "file holding the cluster's shared secret (default: $RINGBUS_CLUSTER_SECRET)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return kExitUsage;
  }

  DaemonConfig config = default_config();
  if (!config_file.empty()) {
    if (auto s = apply_toml_file(config, config_file); !s) {
      std::fprintf(stderr, "ringbusd: %s\n", s.error().message.c_str());
      return kExitUsage;
    }
  }
  if (!instance.empty()) config.instance = instance;
  if (!data_dir.empty()) {
    config.data_dir = data_dir;
    config.memory_only = false;
  }
  if (memory_only) {
    config.memory_only = true;
    config.data_dir.clear();
  }
  if (flusher_threads != 0) config.flusher_threads = flusher_threads;
  if (io_backend == "pwrite") config.io_backend = IoBackend::pwrite;
  if (io_backend == "io_uring") config.io_backend = IoBackend::io_uring;
  if (!log_level.empty()) config.log_level = log_level;
  if (metrics_port >= 0) config.metrics_port = static_cast<std::uint32_t>(metrics_port);
  if (no_metrics) config.metrics = false;
  if (!etcd.empty()) config.etcd = etcd;
  if (!cluster.empty()) config.cluster = cluster;
  if (!node.empty()) config.node = node;
  if (!listen.empty()) config.listen = listen;
  if (!advertise.empty()) config.advertise = advertise;
  if (!secret_file.empty()) config.cluster_secret_file = secret_file;
  if (auto s = finish_config(config); !s) {
    std::fprintf(stderr, "ringbusd: %s\n", s.error().message.c_str());
    return kExitUsage;
  }
  return run(std::move(config));
}
