// ringbusd's configuration file: defaults, every key, and one test per kind
// of refusal (the message names the file, the line and the key).
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon_config.h"

namespace ringbus::daemon {
namespace {

DaemonConfig parse_ok(const std::string& text) {
  DaemonConfig c = default_config();
  auto s = apply_toml(c, text, "test.toml");
  EXPECT_TRUE(s) << (s ? "" : s.error().message);
  return c;
}

std::string parse_error(const std::string& text) {
  DaemonConfig c = default_config();
  auto s = apply_toml(c, text, "test.toml");
  EXPECT_FALSE(s) << "accepted: " << text;
  return s ? "" : s.error().message;
}

TEST(DaemonConfig, NoFileGivesWorkingDefaults) {
  DaemonConfig c = default_config();
  ASSERT_TRUE(finish_config(c));
  EXPECT_EQ(c.data_dir, "/var/tmp/ringbus/" + c.instance);
  EXPECT_EQ(c.flusher_threads, 1u);
  EXPECT_TRUE(c.metrics);
  EXPECT_EQ(c.metrics_port, 0u);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.scrub_mib_per_second, 32u);
  EXPECT_EQ(c.scrub_interval_hours, 24u);
}

TEST(DaemonConfig, EveryKeyIsRead) {
  DaemonConfig c = parse_ok(
      "instance = \"prod\"\ndata_dir = \"/srv/rb\"\nflusher_threads = 4\nio_backend = \"pwrite\"\n"
      "log_level = \"debug\"\n[metrics]\nenabled = false\nport = 9644\n[scrub]\nrate_mib_per_second = 0\n"
      "interval_hours = 168\n");
  EXPECT_EQ(c.instance, "prod");
  EXPECT_EQ(c.data_dir, "/srv/rb");
  EXPECT_EQ(c.flusher_threads, 4u);
  EXPECT_EQ(c.io_backend, IoBackend::pwrite);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_FALSE(c.metrics);
  EXPECT_EQ(c.metrics_port, 9644u);
  EXPECT_EQ(c.scrub_mib_per_second, 0u);
  EXPECT_EQ(c.scrub_interval_hours, 168u);
}

// The example `cmake --install` ships (tools/ringbusd/ringbusd.toml): every
// key it sets is read, and what it says it leaves at the default is.
TEST(DaemonConfig, TheShippedExampleIsValid) {
  std::ifstream in(RINGBUS_EXAMPLE_CONFIG);
  ASSERT_TRUE(in) << RINGBUS_EXAMPLE_CONFIG;
  std::stringstream text;
  text << in.rdbuf();
  DaemonConfig c = parse_ok(text.str());
  ASSERT_TRUE(finish_config(c));
  const DaemonConfig d = default_config();
  EXPECT_EQ(c.data_dir, "/var/lib/ringbus");
  EXPECT_EQ(c.instance, d.instance);
  EXPECT_EQ(c.flusher_threads, d.flusher_threads);
  EXPECT_EQ(c.io_backend, d.io_backend);
  EXPECT_EQ(c.log_level, d.log_level);
  EXPECT_EQ(c.metrics, d.metrics);
  EXPECT_EQ(c.metrics_port, d.metrics_port);
  EXPECT_EQ(c.scrub_mib_per_second, d.scrub_mib_per_second);
  EXPECT_EQ(c.scrub_interval_hours, d.scrub_interval_hours);
}

TEST(DaemonConfig, MemoryOnlyHasNoDataDirectory) {
  DaemonConfig c = parse_ok("memory_only = true\n");
  ASSERT_TRUE(finish_config(c));
  EXPECT_TRUE(c.data_dir.empty());
}

TEST(DaemonConfig, MemoryOnlyWithADataDirectoryIsRefused) {
  DaemonConfig c = parse_ok("memory_only = true\ndata_dir = \"/srv\"\n");
  auto s = finish_config(c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("memory_only and data_dir"), std::string::npos);
}

TEST(DaemonConfig, UnknownKeyNamesFileLineAndKey) {
  const std::string m = parse_error("instance = \"a\"\n\nflusher_thread = 2\n");
  EXPECT_NE(m.find("test.toml:3: key 'flusher_thread' is unknown"), std::string::npos) << m;
}

TEST(DaemonConfig, UnknownKeyInMetricsTable) {
  const std::string m = parse_error("[metrics]\nport = 1\nadress = \"x\"\n");
  EXPECT_NE(m.find("test.toml:3: key 'metrics.adress' is unknown"), std::string::npos) << m;
}

TEST(DaemonConfig, WrongTypeNamesTheKey) {
  const std::string m = parse_error("flusher_threads = \"two\"\n");
  EXPECT_NE(m.find("test.toml:1: key 'flusher_threads' must be an integer from 1 to 256"), std::string::npos) << m;
}

TEST(DaemonConfig, OutOfRangeNamesTheKey) {
  EXPECT_NE(parse_error("[metrics]\nport = 70000\n").find("key 'metrics.port' must be an integer from 0 to 65535"),
            std::string::npos);
  EXPECT_NE(parse_error("flusher_threads = 0\n").find("flusher_threads"), std::string::npos);
  EXPECT_NE(parse_error("[scrub]\ninterval_hours = -1\n").find("key 'scrub.interval_hours' must be an integer from 0"),
            std::string::npos);
  EXPECT_NE(parse_error("[scrub]\nrate = 5\n").find("key 'scrub.rate' is unknown (known: rate_mib_per_second"),
            std::string::npos);
}

TEST(DaemonConfig, BadEnumValuesAreRefused) {
  EXPECT_NE(parse_error("io_backend = \"aio\"\n").find("must be \"io_uring\" or \"pwrite\""), std::string::npos);
  EXPECT_NE(parse_error("log_level = \"loud\"\n").find("must be trace, debug, info, warn or error"), std::string::npos);
}

TEST(DaemonConfig, BadInstanceNameIsRefused) {
  EXPECT_NE(parse_error("instance = \"a/b\"\n").find("key 'instance'"), std::string::npos);
}

TEST(DaemonConfig, SyntaxErrorNamesTheLine) {
  const std::string m = parse_error("instance = \"a\"\nflusher_threads = = 2\n");
  EXPECT_EQ(m.rfind("test.toml:2:", 0), 0u) << m;
}

// A cluster node: the keys, the secret from its file, and each refusal.
TEST(DaemonConfig, ClusterKeysMakeANode) {
  const auto secret = std::filesystem::temp_directory_path() / ("ringbus-secret-" + std::to_string(::getpid()));
  std::ofstream(secret) << "s3cret\n";
  DaemonConfig c = parse_ok("etcd = [\"http://10.0.0.9:2379\", \"http://10.0.0.10:2379\"]\ncluster = \"prod\"\n"
                            "node = \"a\"\nlisten = \"10.0.0.1:7100\"\ncluster_secret_file = \"" + secret.string() +
                            "\"\nlease_ttl_seconds = 3\nreplica_max_lag_ms = 2500\n");
  ASSERT_TRUE(finish_config(c));
  std::filesystem::remove(secret);
  EXPECT_EQ(c.etcd, (std::vector<std::string>{"http://10.0.0.9:2379", "http://10.0.0.10:2379"}));
  EXPECT_EQ(c.cluster, "prod");
  EXPECT_EQ(c.node, "a");
  EXPECT_EQ(c.listen, "10.0.0.1:7100");
  EXPECT_EQ(c.cluster_secret, "s3cret");
  EXPECT_EQ(c.lease_ttl_seconds, 3u);
  EXPECT_EQ(c.replica_max_lag_ms, 2500u);
  EXPECT_EQ(default_config().replica_max_lag_ms, 10'000u);
  DaemonConfig one = parse_ok("etcd = \"http://127.0.0.1:2379\"\n");
  EXPECT_EQ(one.etcd, std::vector<std::string>{"http://127.0.0.1:2379"});
}

TEST(DaemonConfig, AClusterNodeMissingWhatItNeedsIsRefusedSayingWhat) {
  const auto refused = [](const std::string& text) {
    DaemonConfig c = parse_ok(text);
    auto s = finish_config(c);
    EXPECT_FALSE(s) << text;
    return s ? std::string() : s.error().message;
  };
  ::unsetenv("RINGBUS_CLUSTER_SECRET");
  EXPECT_NE(refused("node = \"a\"\n").find("give its etcd endpoints"), std::string::npos);
  EXPECT_NE(refused("etcd = \"127.0.0.1:2379\"\nnode = \"a\"\nlisten = \"x:1\"\n").find("is not an http:// URL"),
            std::string::npos);
  EXPECT_NE(refused("etcd = \"http://e:1\"\nlisten = \"x:1\"\n").find("needs a name"), std::string::npos);
  EXPECT_NE(refused("etcd = \"http://e:1\"\nnode = \"a\"\n").find("--listen"), std::string::npos);
  EXPECT_NE(refused("etcd = \"http://e:1\"\nnode = \"a\"\nlisten = \"x:1\"\n").find("shared secret"), std::string::npos);
  EXPECT_NE(refused("etcd = \"http://e:1\"\nnode = \"a\"\nlisten = \"x:1\"\ncluster_secret_file = \"/nonexistent\"\n")
                .find("cannot read the cluster secret file /nonexistent"),
            std::string::npos);
  EXPECT_NE(refused("etcd = \"http://e:1\"\nnode = \"a\"\nlisten = \"x:1\"\nmemory_only = true\n").find("memory_only"),
            std::string::npos);
  EXPECT_NE(parse_error("lease_ttl_seconds = 0\n").find("lease_ttl_seconds"), std::string::npos);
  EXPECT_NE(parse_error("replica_max_lag_ms = 50\n").find("replica_max_lag_ms"), std::string::npos);
  EXPECT_NE(parse_error("etcd = [1]\n").find("must be a URL or a list of URLs"), std::string::npos);
}

TEST(DaemonConfig, MissingFileIsReported) {
  DaemonConfig c = default_config();
  auto s = apply_toml_file(c, "/nonexistent/ringbusd.toml");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("/nonexistent/ringbusd.toml"), std::string::npos);
}

}  // namespace
}  // namespace ringbus::daemon
