#include "daemon_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "ringbus/topic.h"

namespace ringbus::daemon {

namespace {

// "FILE:LINE: key 'K' ..." for a node of the document.
std::string where(std::string_view source, const toml::source_region& r, std::string_view key) {
  std::string s(source);
  if (r.begin.line != 0) s += ":" + std::to_string(r.begin.line);
  return s + ": key '" + std::string(key) + "'";
}

Error bad(std::string_view source, const toml::node& n, std::string_view key, const std::string& rule) {
  return Error{Errc::invalid_argument, where(source, n.source(), key) + " " + rule};
}

Status get_string(std::string_view src, const toml::node& n, std::string_view key, std::string& out) {
  const auto* v = n.as_string();
  if (v == nullptr) return bad(src, n, key, "must be a string");
  out = v->get();
  return {};
}

Status get_bool(std::string_view src, const toml::node& n, std::string_view key, bool& out) {
  const auto* v = n.as_boolean();
  if (v == nullptr) return bad(src, n, key, "must be true or false");
  out = v->get();
  return {};
}

Status get_uint(std::string_view src, const toml::node& n, std::string_view key, std::int64_t lo, std::int64_t hi,
                std::uint32_t& out) {
  const auto* v = n.as_integer();
  if (v == nullptr || v->get() < lo || v->get() > hi) {
    return bad(src, n, key, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  out = static_cast<std::uint32_t>(v->get());
  return {};
}

Status apply_metrics(DaemonConfig& c, const toml::table& t, std::string_view src) {
  for (auto&& [k, v] : t) {
    const std::string key = "metrics." + std::string(k.str());
    Status s;
    if (k.str() == "enabled") {
      s = get_bool(src, v, key, c.metrics);
    } else if (k.str() == "port") {
      s = get_uint(src, v, key, 0, 65535, c.metrics_port);
    } else {
      return Error{Errc::invalid_argument, where(src, k.source(), key) + " is unknown (known: enabled, port)"};
    }
    if (!s) return s;
  }
  return {};
}

Status apply_scrub(DaemonConfig& c, const toml::table& t, std::string_view src) {
  for (auto&& [k, v] : t) {
    const std::string key = "scrub." + std::string(k.str());
    Status s;
    if (k.str() == "rate_mib_per_second") {
      s = get_uint(src, v, key, 0, 1 << 20, c.scrub_mib_per_second);
    } else if (k.str() == "interval_hours") {
      s = get_uint(src, v, key, 0, 24 * 366, c.scrub_interval_hours);
    } else {
      return Error{Errc::invalid_argument,
                   where(src, k.source(), key) + " is unknown (known: rate_mib_per_second, interval_hours)"};
    }
    if (!s) return s;
  }
  return {};
}

}  // namespace

DaemonConfig default_config() {
  DaemonConfig c;
  c.instance = default_instance();
  return c;
}

Status apply_toml(DaemonConfig& c, std::string_view text, std::string_view src) {
  toml::table doc;
  try {
    doc = toml::parse(text, src);
  } catch (const toml::parse_error& e) {
    std::string s(src);
    if (e.source().begin.line != 0) s += ":" + std::to_string(e.source().begin.line);
    return Error{Errc::invalid_argument, s + ": " + std::string(e.description())};
  }
  for (auto&& [k, v] : doc) {
    const std::string key(k.str());
    Status s;
    if (key == "instance") {
      s = get_string(src, v, key, c.instance);
      if (s) {
        if (auto n = validate_name("instance", c.instance); !n) s = bad(src, v, key, n.error().message);
      }
    } else if (key == "data_dir") {
      s = get_string(src, v, key, c.data_dir);
      if (s && c.data_dir.empty()) s = bad(src, v, key, "is empty (leave it out for the default, or set memory_only)");
    } else if (key == "memory_only") {
      s = get_bool(src, v, key, c.memory_only);
    } else if (key == "flusher_threads") {
      s = get_uint(src, v, key, 1, 256, c.flusher_threads);
    } else if (key == "io_backend") {
      std::string b;
      s = get_string(src, v, key, b);
      if (s && b == "io_uring") {
        c.io_backend = IoBackend::io_uring;
      } else if (s && b == "pwrite") {
        c.io_backend = IoBackend::pwrite;
      } else if (s) {
        s = bad(src, v, key, "must be \"io_uring\" or \"pwrite\", not \"" + b + "\"");
      }
    } else if (key == "log_level") {
      s = get_string(src, v, key, c.log_level);
      if (s && c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
          c.log_level != "error") {
        s = bad(src, v, key, "must be trace, debug, info, warn or error, not \"" + c.log_level + "\"");
      }
    } else if (key == "etcd") {
      c.etcd.clear();
      if (const toml::array* a = v.as_array()) {
        for (const auto& e : *a) {
          if (!e.is_string()) {
            s = bad(src, v, key, "must be a URL or a list of URLs");
            break;
          }
          c.etcd.push_back(e.as_string()->get());
        }
      } else {
        std::string one;
        s = get_string(src, v, key, one);
        if (s) c.etcd.push_back(one);
      }
    } else if (key == "cluster") {
      s = get_string(src, v, key, c.cluster);
    } else if (key == "node") {
      s = get_string(src, v, key, c.node);
    } else if (key == "listen") {
      s = get_string(src, v, key, c.listen);
    } else if (key == "advertise") {
      s = get_string(src, v, key, c.advertise);
    } else if (key == "cluster_secret_file") {
      s = get_string(src, v, key, c.cluster_secret_file);
    } else if (key == "lease_ttl_seconds") {
      s = get_uint(src, v, key, 1, 60, c.lease_ttl_seconds);
    } else if (key == "replica_max_lag_ms") {
      s = get_uint(src, v, key, 100, 600'000, c.replica_max_lag_ms);
    } else if (key == "metrics") {
      const toml::table* t = v.as_table();
      s = t == nullptr ? bad(src, v, key, "must be a table ([metrics])") : apply_metrics(c, *t, src);
    } else if (key == "scrub") {
      const toml::table* t = v.as_table();
      s = t == nullptr ? bad(src, v, key, "must be a table ([scrub])") : apply_scrub(c, *t, src);
    } else {
      return Error{Errc::invalid_argument,
                   where(src, k.source(), key) +
                       " is unknown (known: instance, data_dir, memory_only, flusher_threads, io_backend, "
                       "log_level, etcd, cluster, node, listen, advertise, cluster_secret_file, lease_ttl_seconds, "
                       "replica_max_lag_ms, [metrics], [scrub])"};
    }
    if (!s) return s;
  }
  return {};
}

Status apply_toml_file(DaemonConfig& c, const std::string& path) {
  std::ifstream f(path);
  if (!f) return Error{Errc::not_found, "cannot read the configuration file " + path};
  std::ostringstream text;
  text << f.rdbuf();
  return apply_toml(c, text.str(), path);
}

namespace {

Status finish_cluster(DaemonConfig& c) {
  if (c.etcd.empty()) {
    if (!c.node.empty() || !c.listen.empty()) {
      return Error{Errc::invalid_argument, "node and listen are for a cluster: give its etcd endpoints too (--etcd URL)"};
    }
    return {};
  }
  for (const std::string& e : c.etcd) {
    if (!e.starts_with("http://")) return Error{Errc::invalid_argument, "etcd endpoint '" + e + "' is not an http:// URL"};
  }
  if (c.memory_only) return Error{Errc::invalid_argument, "a cluster node keeps commit logs: memory_only is refused with etcd"};
  if (c.node.empty()) return Error{Errc::invalid_argument, "a cluster node needs a name (--node NAME)"};
  if (auto s = validate_name("node", c.node); !s) return s;
  if (auto s = validate_name("cluster", c.cluster); !s) return s;
  if (c.listen.empty()) return Error{Errc::invalid_argument, "a cluster node needs its replication address (--listen HOST:PORT)"};
  if (!c.cluster_secret_file.empty()) {
    std::ifstream f(c.cluster_secret_file);
    if (!f) return Error{Errc::not_found, "cannot read the cluster secret file " + c.cluster_secret_file};
    std::getline(f, c.cluster_secret);
  } else if (const char* env = std::getenv("RINGBUS_CLUSTER_SECRET"); env != nullptr) {
    c.cluster_secret = env;
  }
  if (c.cluster_secret.empty()) {
    return Error{Errc::invalid_argument, "a cluster node needs the cluster's shared secret: cluster_secret_file, "
                                         "or $RINGBUS_CLUSTER_SECRET"};
  }
  return {};
}

}  // namespace

Status finish_config(DaemonConfig& c) {
  if (auto s = validate_name("instance", c.instance); !s) return s;
  if (c.memory_only && !c.data_dir.empty()) {
    return Error{Errc::invalid_argument, "memory_only and data_dir exclude each other (choose one)"};
  }
  if (!c.memory_only && c.data_dir.empty()) c.data_dir = "/var/tmp/ringbus/" + c.instance;
  return finish_cluster(c);
}

}  // namespace ringbus::daemon
