// ringbusd's configuration: defaults that work with no file at all, a TOML
// file (tools/README.md, "ringbusd.toml"), then command-line overrides.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/broker.h"
#include "ringbus/result.h"

namespace ringbus::daemon {

struct DaemonConfig {
  std::string instance;            // default: $RINGBUS_INSTANCE, else "default"
  std::string data_dir;            // default: /var/tmp/ringbus/<instance>
  bool memory_only = false;        // no commit log: topics live in shared memory only
  std::uint32_t flusher_threads = 1;
  IoBackend io_backend = IoBackend::io_uring;
  std::string log_level = "info";  // trace, debug, info, warn, error
  bool metrics = true;             // the Prometheus endpoint on 127.0.0.1
  std::uint32_t metrics_port = 0;  // 0: a free port the kernel picks (logged; `ringbus stats` prints it)
  std::uint32_t scrub_mib_per_second = 32;  // the scrubber's read rate (0: no scrubber)
  std::uint32_t scrub_interval_hours = 24;  // a pass over every sealed segment at most this often
  // A cluster (cluster/README.md): with etcd endpoints the node joins it;
  // without, ringbusd runs alone.
  std::vector<std::string> etcd;          // "http://host:port", tried in turn
  std::string cluster = "ringbus";        // the cluster's name (its keys in etcd, the handshake)
  std::string node;                       // this node's name, unique in the cluster
  std::string listen;                     // the replication port, host:port
  std::string advertise;                  // what other nodes dial ("": listen's)
  std::string cluster_secret_file;        // the shared secret's file (else $RINGBUS_CLUSTER_SECRET)
  std::string cluster_secret;             // read from it by finish_config
  std::uint32_t lease_ttl_seconds = 2;    // the node's etcd lease
  std::uint32_t replica_max_lag_ms = 10'000;  // a mirror not caught up this long leaves the in-sync set
};

DaemonConfig default_config();

// Reads TOML text into `config` (only the keys present change). Refuses a
// syntax error, an unknown key or a bad value, naming `source` (the file),
// the line and the key.
Status apply_toml(DaemonConfig& config, std::string_view text, std::string_view source);
Status apply_toml_file(DaemonConfig& config, const std::string& path);

// The checks that need the whole configuration (after overrides); fills the
// default data directory, and reads the cluster's secret.
Status finish_config(DaemonConfig& config);

}  // namespace ringbus::daemon
