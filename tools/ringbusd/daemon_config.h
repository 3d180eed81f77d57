// ringbusd's configuration: defaults that work with no file at all, a TOML
// file (tools/README.md, "ringbusd.toml"), then command-line overrides.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

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
};

DaemonConfig default_config();

// Reads TOML text into `config` (only the keys present change). Refuses a
// syntax error, an unknown key or a bad value, naming `source` (the file),
// the line and the key.
Status apply_toml(DaemonConfig& config, std::string_view text, std::string_view source);
Status apply_toml_file(DaemonConfig& config, const std::string& path);

// The checks that need the whole configuration (after overrides); fills the
// default data directory.
Status finish_config(DaemonConfig& config);

}  // namespace ringbus::daemon
