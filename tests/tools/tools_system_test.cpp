// System tests: a real ringbusd, driven by the ringbus command line and by
// control-channel clients, each in its own process.
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "control_socket.h"
#include "ringbus/topic.h"
#include "../bus/test_support.h"
#include "ringbus/producer.h"

extern char** environ;

namespace ringbus::test {
namespace {

namespace fs = std::filesystem;
using control::ControlClient;
using control::Json;

struct Output {
  int code = -1;
  std::string out;
  std::string err;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A scratch directory and instance name per test.
class Scratch {
 public:
  Scratch() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    instance_ = "systest-" + std::to_string(::getpid()) + "-" + info->name();
    dir_ = "/var/tmp/ringbus-systest-" + std::to_string(::getpid()) + "-" + info->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  // A ringbusd the test ended with SIGKILL leaves its shared memory behind
  // (the next broker of the instance would clean it up, and none comes):
  // without this, every run of the suite leaves some on the machine.
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::remove_all(instance_directory(instance_), ec);
  }
  const std::string& instance() const { return instance_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string instance_;
  std::string dir_;
};

// Runs a program with stdin from `input`, stdout and stderr captured, and
// the instance in RINGBUS_INSTANCE. Killed after `limit`.
Output run(const Scratch& s, const std::string& program, const std::vector<std::string>& args,
           const std::string& input = "", std::chrono::seconds limit = std::chrono::seconds(60)) {
  static std::atomic<int> n{0};  // tests run several CLIs at once from threads
  const std::string base = s.dir() + "/run-" + std::to_string(n++);
  { std::ofstream(base + ".in") << input; }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, (base + ".in").c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, (base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, (base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv_s{program};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s{"RINGBUS_INSTANCE=" + s.instance()};
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("RINGBUS_INSTANCE=", 0) != 0) env_s.emplace_back(*e);
  }
  std::vector<char*> env;
  for (std::string& e : env_s) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = 0;
  Output o;
  if (posix_spawn(&pid, program.c_str(), &fa, nullptr, argv.data(), env.data()) != 0) return o;
  posix_spawn_file_actions_destroy(&fa);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      o.err = "(killed: ran past " + std::to_string(limit.count()) + " s) ";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  o.out = read_file(base + ".out");
  o.err += read_file(base + ".err");
  return o;
}

Output cli(const Scratch& s, const std::vector<std::string>& args, const std::string& input = "") {
  return run(s, RINGBUS_CLI_PATH, args, input);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

// A ringbusd process of the scratch instance.
// Starts `argv` (a path, or a name looked up in PATH) in the background with
// the instance in RINGBUS_INSTANCE and its output in the file `log`.
pid_t start_program(const Scratch& s, std::vector<std::string> argv_s, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("RINGBUS_INSTANCE", s.instance().c_str(), 1);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::dup2(fd, 1);
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

class Daemon {
 public:
  Daemon(const Scratch& s, std::vector<std::string> args) : s_(s) {
    log_ = s.dir() + "/ringbusd-" + std::to_string(starts_++) + ".log";
    std::vector<std::string> argv_s{RINGBUSD_PATH};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    pid_ = start_program(s, std::move(argv_s), log_);
  }
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // Waits until it answers a ping (true), or it exited / 10 s passed (false).
  bool ready() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto c = ControlClient::connect(s_.instance()); c && c->call("ping")) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // Sends sig and returns the exit code (128 + signal if killed by it).
  int stop(int sig = SIGTERM) {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }
  int wait_exit() {
    if (pid_ <= 0) return exit_code_;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string log() const { return read_file(log_); }

 private:
  const Scratch& s_;
  std::string log_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  static inline int starts_ = 0;
};

std::string shm_dir(const Scratch& s) {
  const char* d = std::getenv("RINGBUS_SHM_DIR");
  return std::string(d != nullptr ? d : "/dev/shm") + "/ringbus-" + s.instance();
}

// The README's commands, with the defaults, on a container's shared memory
// (Docker's /dev/shm is 64 MiB): every topic is created and works.
TEST(ToolsSystem, TheReadmeCommandsFitAContainersSharedMemory) {
  Scratch s;
  Tmpfs shm("/tmp/rb-shm-" + std::to_string(::getpid()), "64m");  // short: the socket path has 107 bytes
  if (::geteuid() != 0) GTEST_SKIP() << shm.error;
  ASSERT_TRUE(shm.mounted()) << shm.error;
  ::setenv("RINGBUS_SHM_DIR", shm.path.c_str(), 1);  // this test's process only: ctest runs each test alone
  {
    Daemon d(s, {"--data-dir", s.dir() + "/data"});
    ASSERT_TRUE(d.ready()) << d.log();
    std::vector<std::string> topics = {"trucking_data_truck", "trucking_data_traffic", "trucking_driver_stats"};
    for (const std::string& t : topics) {
      Output o = cli(s, {"topic", "create", t, "--partitions", "4"});
      ASSERT_EQ(o.code, 0) << o.err;
    }
    Output o = cli(s, {"topic", "create", "trucking_pipeline"});
    ASSERT_EQ(o.code, 0) << o.err;
    topics.emplace_back("trucking_pipeline");
    for (const std::string& t : topics) {
      ASSERT_EQ(cli(s, {"produce", t, "--durable"}, "hello\n").code, 0);
      o = cli(s, {"consume", t, "--from", "earliest", "--count", "1", "--timeout", "10s"});
      EXPECT_EQ(o.out, "hello\n") << o.err;
    }
    EXPECT_EQ(d.stop(), 0) << d.log();
  }
  ::unsetenv("RINGBUS_SHM_DIR");
}

TEST(ToolsSystem, ProduceThenConsumeRoundTrip) {
  Scratch s;
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  Output o = cli(s, {"topic", "create", "trucks", "--partitions", "3", "--ring-bytes", "1MiB"});
  ASSERT_EQ(o.code, 0) << o.err;
  std::string input;
  for (int i = 0; i < 3000; ++i) input += "truck-" + std::to_string(i % 17) + "\t" + std::to_string(i) + "\n";
  o = cli(s, {"produce", "trucks", "--keyed", "--durable"}, input);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.err.find("produced 3000 records"), std::string::npos) << o.err;
  o = cli(s, {"consume", "trucks", "--from", "earliest", "--count", "3000", "--format", "key-value", "--timeout", "10s"});
  ASSERT_EQ(o.code, 0) << o.err;
  const auto got = lines(o.out);
  ASSERT_EQ(got.size(), 3000u);
  // Every record once; per key (one partition each) in the order published.
  std::map<std::string, int> last;
  std::vector<bool> seen(3000, false);
  for (const std::string& l : got) {
    const std::size_t tab = l.find('\t');
    ASSERT_NE(tab, std::string::npos) << l;
    const std::string key = l.substr(0, tab);
    const int v = std::stoi(l.substr(tab + 1));
    EXPECT_EQ(key, "truck-" + std::to_string(v % 17));
    EXPECT_FALSE(seen[static_cast<std::size_t>(v)]) << "duplicate " << v;
    seen[static_cast<std::size_t>(v)] = true;
    if (last.count(key) != 0) {
      EXPECT_LT(last[key], v) << "out of order for " << key;
    }
    last[key] = v;
  }
  EXPECT_EQ(d.stop(), 0) << d.log();
}

// ringbus perf: the summary counts what was really sent and read (records
// and value bytes), for plain and queue-group readers and the round trip.
TEST(ToolsSystem, PerfCommandsCountWhatTheySendAndRead) {
  Scratch s;
  Daemon d(s, {"--memory-only"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "p", "--partitions", "2", "--ring-bytes", "4MiB"}).code, 0);
  Output o = cli(s, {"perf", "produce", "p", "--records", "6000", "--record-size", "48", "--batch", "16"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("produce: 6000 records in"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("(48 bytes each); publish_batch call: p50"), std::string::npos) << o.out;
  o = cli(s, {"perf", "consume", "p", "--records", "6000", "--from", "earliest", "--timeout", "10s"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("consume: 6000 records in"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("(48 bytes each)"), std::string::npos) << o.out;
  o = cli(s, {"perf", "consume", "p", "--records", "6000", "--from", "earliest", "--group", "q", "--queue", "--timeout", "10s"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("consume: 6000 records in"), std::string::npos) << o.out;
  // Nothing more comes: exit 4 after the timeout, with what was read.
  o = cli(s, {"perf", "consume", "p", "--records", "10", "--from", "latest", "--timeout", "200ms"});
  EXPECT_EQ(o.code, 4) << o.err;
  EXPECT_NE(o.out.find("consume: 0 records"), std::string::npos) << o.out;
  o = cli(s, {"perf", "roundtrip", "p", "--records", "500", "--rate", "20000"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("roundtrip: 500 records in"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("publish to handler: p50"), std::string::npos) << o.out;
  EXPECT_EQ(cli(s, {"perf", "consume", "nope", "--records", "1"}).code, 3);
  EXPECT_EQ(d.stop(), 0) << d.log();
}

TEST(ToolsSystem, ConsumeFormatsJsonWithOffsetsAndHeaders) {
  Scratch s;
  Daemon d(s, {"--memory-only"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "t"}).code, 0);
  ASSERT_EQ(cli(s, {"produce", "t", "--header", "source=test"}, "a\nb\n").code, 0);
  Output o = cli(s, {"consume", "t", "--from", "0", "--count", "2", "--format", "json", "--timeout", "10s"});
  ASSERT_EQ(o.code, 0) << o.err;
  const auto got = lines(o.out);
  ASSERT_EQ(got.size(), 2u);
  const Json j = Json::parse(got[1]);
  EXPECT_EQ(j["offset"], 1);
  EXPECT_EQ(j["partition"], 0);
  EXPECT_EQ(j["value"], "b");
  EXPECT_EQ(j["headers"]["source"], "test");
  EXPECT_GT(j["timestamp_ms"].get<std::int64_t>(), 1'600'000'000'000);  // milliseconds, after 2020
}

TEST(ToolsSystem, TopicCommandsAndTheirErrors) {
  Scratch s;
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "a", "--partitions", "2", "--durability", "every_ack"}).code, 0);
  ASSERT_EQ(cli(s, {"topic", "create", "b"}).code, 0);
  Output o = cli(s, {"topic", "list"});
  EXPECT_EQ(o.code, 0);
  auto names = lines(o.out);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));

  o = cli(s, {"topic", "describe", "a", "--json"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(Json::parse(o.out)["partitions"], 2);

  o = cli(s, {"topic", "create", "a"});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("already exists"), std::string::npos) << o.err;
  o = cli(s, {"topic", "create", "bad/name"});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("bad/name"), std::string::npos) << o.err;
  o = cli(s, {"topic", "create", "c", "--partitions", "5000"});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("partitions is 5000"), std::string::npos) << o.err;
  o = cli(s, {"topic", "create", "c", "--ring-bytes", "1000"});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("ring_bytes"), std::string::npos) << o.err;
  o = cli(s, {"topic", "describe", "nope"});
  EXPECT_EQ(o.code, 3);
  EXPECT_NE(o.err.find("nope"), std::string::npos) << o.err;
  o = cli(s, {"consume", "nope", "--count", "1"});
  EXPECT_EQ(o.code, 3);
  o = cli(s, {"produce", "nope"}, "x\n");
  EXPECT_EQ(o.code, 3);
  o = cli(s, {"topic", "frobnicate"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("ringbus topic: unknown subcommand 'frobnicate'"), std::string::npos) << o.err;
  o = cli(s, {"frobnicate"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("unknown subcommand 'frobnicate'"), std::string::npos) << o.err;
  o = cli(s, {"topic", "create", "c", "--max-record-size", "0"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("--max-record-size"), std::string::npos) << o.err;

  // alter: the log's settings change and show in describe; the ring's are refused.
  o = cli(s, {"topic", "alter", "a", "--retention-policy", "consumed", "--retention-age", "2d", "--durability", "interval",
              "--compression", "zstd"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("policy consumed; compression zstd"), std::string::npos) << o.out;
  const Json log = Json::parse(cli(s, {"topic", "describe", "a", "--json"}).out)["log"];
  EXPECT_EQ(log["retention_policy"], "consumed");
  EXPECT_EQ(log["compression"], "zstd");
  o = cli(s, {"topic", "alter", "a", "--compression", "brotli"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("--compression"), std::string::npos) << o.err;
  EXPECT_EQ(log["retention_age_ms"], 2 * 86'400'000);
  EXPECT_EQ(log["durability"], "interval");
  o = cli(s, {"topic", "alter", "a", "--partitions", "4"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("--partitions cannot be altered"), std::string::npos) << o.err;
  o = cli(s, {"topic", "alter", "a"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("nothing to alter"), std::string::npos) << o.err;
  o = cli(s, {"topic", "alter", "a", "--segment-bytes", "1000"});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("segment_bytes"), std::string::npos) << o.err;
  EXPECT_EQ(cli(s, {"topic", "alter", "nope", "--retention-age", "1d"}).code, 3);

  ASSERT_EQ(cli(s, {"topic", "delete", "b"}).code, 0);
  EXPECT_EQ(lines(cli(s, {"topic", "list"}).out), std::vector<std::string>{"a"});
  EXPECT_EQ(cli(s, {"topic", "delete", "b"}).code, 3);
  EXPECT_FALSE(fs::exists(s.dir() + "/data/b"));
}

TEST(ToolsSystem, OversizedRecordIsRefusedAndEarlierRecordsStay) {
  Scratch s;
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "small", "--max-record-size", "100"}).code, 0);
  Output o = cli(s, {"produce", "small"}, "one\ntwo\n" + std::string(500, 'x') + "\nfour\n");
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("line 3: record too large"), std::string::npos) << o.err;
  o = cli(s, {"consume", "small", "--from", "earliest", "--count", "2", "--timeout", "10s"});
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(lines(o.out), (std::vector<std::string>{"one", "two"}));
  // A huge line is refused once it passes the limit, not after it was read
  // whole (the bounded reader's message says so).
  o = cli(s, {"produce", "small"}, "five\n" + std::string(64 << 20, 'y') + "\n");
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("line 2: record too large"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("not read further"), std::string::npos) << o.err;
}

TEST(ToolsSystem, NoBrokerIsAClearErrorNotAHang) {
  Scratch s;
  const auto t0 = std::chrono::steady_clock::now();
  Output o = cli(s, {"topic", "list"});
  EXPECT_EQ(o.code, 3);
  EXPECT_NE(o.err.find("no broker is running for instance '" + s.instance() + "'"), std::string::npos) << o.err;
  o = cli(s, {"consume", "t", "--count", "1"});
  EXPECT_EQ(o.code, 3) << o.err;
  o = cli(s, {"--instance", "no/slash", "topic", "list"});
  EXPECT_EQ(o.code, 2) << o.err;
  EXPECT_NE(o.err.find("no/slash"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("no broker"), std::string::npos) << "the bad name is refused before anything runs: " << o.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

TEST(ToolsSystem, SecondBrokerOnTheSameInstanceIsRefused) {
  Scratch s;
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  Daemon second(s, {"--data-dir", s.dir() + "/data2"});
  EXPECT_EQ(second.wait_exit(), 1);
  EXPECT_NE(second.log().find("already has a running broker"), std::string::npos) << second.log();
  EXPECT_EQ(cli(s, {"topic", "list"}).code, 0);  // the first is untouched
}

TEST(ToolsSystem, MalformedConfigIsRefusedNamingFileLineAndKey) {
  Scratch s;
  const std::string path = s.dir() + "/ringbusd.toml";
  std::ofstream(path) << "log_level = \"info\"\n\nflusher_thread = 2\n";
  Daemon d(s, {"--config", path});
  EXPECT_EQ(d.wait_exit(), 2);
  EXPECT_NE(d.log().find(path + ":3: key 'flusher_thread' is unknown"), std::string::npos) << d.log();

  std::ofstream(path) << "[metrics]\nport = \"high\"\n";
  Daemon d2(s, {"--config", path});
  EXPECT_EQ(d2.wait_exit(), 2);
  EXPECT_NE(d2.log().find(path + ":2: key 'metrics.port' must be an integer"), std::string::npos) << d2.log();
}

TEST(ToolsSystem, ConfigFileIsUsedAndOptionsOverrideIt) {
  Scratch s;
  const std::string path = s.dir() + "/ringbusd.toml";
  std::ofstream(path) << "data_dir = \"" << s.dir() << "/from-file\"\nlog_level = \"warn\"\n";
  Daemon d(s, {"--config", path, "--data-dir", s.dir() + "/from-option"});
  ASSERT_TRUE(d.ready()) << d.log();
  auto c = ControlClient::connect(s.instance());
  ASSERT_TRUE(c);
  auto r = c->call("ping");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value()["data_dir"], s.dir() + "/from-option");
  EXPECT_EQ(d.log().find("info"), std::string::npos) << "log_level warn from the file: " << d.log();
}

TEST(ToolsSystem, SigtermShutsDownCleanlyAndARestartGoesOn) {
  Scratch s;
  {
    Daemon d(s, {"--data-dir", s.dir() + "/data"});
    ASSERT_TRUE(d.ready()) << d.log();
    ASSERT_EQ(cli(s, {"topic", "create", "t", "--partitions", "2"}).code, 0);
    ASSERT_EQ(cli(s, {"produce", "t", "--durable"}, "1\n2\n3\n4\n").code, 0);
    EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
    EXPECT_NE(d.log().find("stopped cleanly"), std::string::npos) << d.log();
    EXPECT_FALSE(fs::exists(shm_dir(s))) << "shared memory left behind";
  }
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  EXPECT_EQ(d.log().find("after a crash"), std::string::npos) << "a clean stop needs no tail check: " << d.log();
  ASSERT_EQ(cli(s, {"produce", "t", "--partition", "0"}, "5\n").code, 0);
  Output o = cli(s, {"consume", "t", "--from", "earliest", "--count", "5", "--format", "json", "--timeout", "10s"});
  ASSERT_EQ(o.code, 0) << o.err;
  std::vector<std::string> values;
  std::uint64_t offset_of_5 = 0;
  for (const std::string& l : lines(o.out)) {
    const Json j = Json::parse(l);
    values.push_back(j["value"]);
    if (j["value"] == "5") offset_of_5 = j["offset"];
  }
  std::sort(values.begin(), values.end());
  EXPECT_EQ(values, (std::vector<std::string>{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(offset_of_5, 2u) << "offsets go on from where they stopped (2 records per partition before)";
}

TEST(ToolsSystem, SigintAlsoShutsDownCleanly) {
  Scratch s;
  Daemon d(s, {"--memory-only"});
  ASSERT_TRUE(d.ready()) << d.log();
  EXPECT_EQ(d.stop(SIGINT), 0) << d.log();
  EXPECT_FALSE(fs::exists(shm_dir(s)));
}

TEST(ToolsSystem, SigkillThenRestartRecoversEveryDurableRecord) {
  Scratch s;
  std::string input;
  for (int i = 0; i < 500; ++i) input += std::to_string(i) + "\n";
  {
    Daemon d(s, {"--data-dir", s.dir() + "/data"});
    ASSERT_TRUE(d.ready()) << d.log();
    ASSERT_EQ(cli(s, {"topic", "create", "t", "--durability", "every_ack"}).code, 0);
    ASSERT_EQ(cli(s, {"produce", "t", "--durable"}, input).code, 0);
    EXPECT_EQ(d.stop(SIGKILL), 128 + SIGKILL);
  }
  EXPECT_TRUE(fs::exists(shm_dir(s))) << "a killed broker leaves its shared memory";
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  EXPECT_NE(d.log().find("recovered"), std::string::npos) << d.log();
  Output o = cli(s, {"consume", "t", "--from", "earliest", "--count", "500", "--timeout", "10s"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, input);
}

TEST(ToolsSystem, ControlChannelRefusesGarbageAndOtherVersions) {
  Scratch s;
  Daemon d(s, {"--memory-only"});
  ASSERT_TRUE(d.ready()) << d.log();
  auto c = ControlClient::connect(s.instance());
  ASSERT_TRUE(c);
  auto r = c->call_raw("this is not json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value()["ok"], false);
  EXPECT_EQ(r.value()["code"], "invalid_argument");
  r = c->call_raw(R"({"v":99,"op":"ping"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value()["code"], "version_mismatch");
  EXPECT_NE(r.value()["error"].get<std::string>().find("version 99"), std::string::npos);
  auto u = c->call("reboot");
  ASSERT_FALSE(u);
  EXPECT_NE(u.error().message.find("unknown operation 'reboot'"), std::string::npos);
  auto t = c->call("create_topic", Json{{"topic", {{"name", "x"}, {"partitons", 2}}}});
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("unknown field 'partitons'"), std::string::npos);
  auto no_name = c->call("describe_topic");
  ASSERT_FALSE(no_name);
  EXPECT_NE(no_name.error().message.find("no topic \"name\""), std::string::npos);
  EXPECT_TRUE(c->call("ping")) << "garbage does not close the connection";
  // A line past the limit is refused and the connection closed.
  auto big = c->call_raw(std::string(control::kMaxLineBytes + 10, 'x'));
  ASSERT_TRUE(big);
  EXPECT_EQ(big.value()["ok"], false);
  EXPECT_NE(big.value()["error"].get<std::string>().find("longer than"), std::string::npos);
  // The broker still serves others.
  auto c2 = ControlClient::connect(s.instance());
  ASSERT_TRUE(c2);
  EXPECT_TRUE(c2->call("ping"));
}

TEST(ToolsSystem, AClientOfADeadBrokerGetsAClearError) {
  Scratch s;
  Daemon d(s, {"--memory-only"});
  ASSERT_TRUE(d.ready()) << d.log();
  auto c = ControlClient::connect(s.instance(), std::chrono::seconds(2));
  ASSERT_TRUE(c);
  d.stop(SIGKILL);
  auto r = c->call("ping");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("closed the connection"), std::string::npos) << r.error().message;
  Output o = cli(s, {"topic", "list"});
  EXPECT_EQ(o.code, 3) << o.err;
}

// With a data directory: a dead broker's rings stay, and what needs the
// broker says so at once, with its exit code.
TEST(ToolsSystem, ProduceDurableAndGroupConsumeNameADeadBroker) {
  Scratch s;
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "t"}).code, 0);
  d.stop(SIGKILL);
  // Publishing into the ring still works (the next broker writes it) ...
  Output o = cli(s, {"produce", "t"}, "a\nb\n");
  EXPECT_EQ(o.code, 0) << o.err;
  // ... but nothing becomes durable without a broker: said at once.
  const auto t0 = std::chrono::steady_clock::now();
  o = cli(s, {"produce", "t", "--durable"}, "c\n");
  EXPECT_EQ(o.code, 3) << o.err;
  EXPECT_NE(o.err.find("no broker is running"), std::string::npos) << o.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  o = cli(s, {"consume", "t", "--group", "g", "--from", "earliest", "--count", "3"});
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_EQ(lines(o.out), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_NE(o.err.find("not durable"), std::string::npos) << o.err;
  // A plain consumer reads the ring and is told, once, that no broker runs.
  o = cli(s, {"consume", "t", "--from", "earliest", "--timeout", "500ms"});
  EXPECT_EQ(o.code, 4) << o.err;
  EXPECT_EQ(lines(o.out), (std::vector<std::string>{"a", "b", "c"}));
  const std::string told = "no broker is running for instance '" + s.instance() + "'";
  ASSERT_NE(o.err.find(told), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find(told, o.err.find(told) + 1), std::string::npos) << "said once: " << o.err;
  // A new broker adopts the ring: the records are written to the log.
  Daemon again(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(again.ready()) << again.log();
  o = cli(s, {"produce", "t", "--durable"}, "d\n");
  EXPECT_EQ(o.code, 0) << o.err;
  const Json p0 = Json::parse(cli(s, {"topic", "describe", "t", "--json"}).out)["partition_info"][0];
  EXPECT_EQ(p0["durable_offset"], 4) << p0.dump();
}

std::string http_get(std::uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

TEST(ToolsSystem, MetricsAreServedAsPrometheusTextAndByStats) {
  Scratch s;
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "m"}).code, 0);
  ASSERT_EQ(cli(s, {"produce", "m", "--durable"}, "a\nb\nc\n").code, 0);
  auto c = ControlClient::connect(s.instance());
  ASSERT_TRUE(c);
  const auto port = c->call("ping").value()["metrics_port"].get<std::uint16_t>();
  ASSERT_NE(port, 0);
  // Sampled once a second.
  std::string body;
  for (int i = 0; i < 50 && body.find("ringbus_partition_end_offset{topic=\"m\",partition=\"0\"} 3") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    body = http_get(port, "/metrics");
  }
  EXPECT_EQ(body.rfind("HTTP/1.0 200 OK", 0), 0u) << body;
  EXPECT_NE(body.find("ringbus_partition_end_offset{topic=\"m\",partition=\"0\"} 3"), std::string::npos) << body;
  EXPECT_NE(body.find("ringbus_partition_durable_offset{topic=\"m\",partition=\"0\"} 3"), std::string::npos) << body;
  EXPECT_NE(body.find("# TYPE ringbus_partition_retained_bytes gauge"), std::string::npos);
  EXPECT_NE(body.find("ringbus_broker_errors_total 0"), std::string::npos);
  EXPECT_NE(body.find("ringbus_partition_damaged_segments{topic=\"m\",partition=\"0\"} 0"), std::string::npos) << body;
  EXPECT_NE(body.find("# TYPE ringbus_scrub_bytes_total counter"), std::string::npos) << body;
  EXPECT_EQ(http_get(port, "/nope").rfind("HTTP/1.0 404", 0), 0u);
  Output o = cli(s, {"stats"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("m "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("scrubber: "), std::string::npos) << o.out;
}

// ---- consumer groups ----------------------------------------------------------

std::string numbers(int from, int to) {
  std::string s;
  for (int i = from; i < to; ++i) s += std::to_string(i) + "\n";
  return s;
}

TEST(ToolsSystem, PubsubGroupsEachSeeEveryRecordAndResume) {
  Scratch s;
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "t", "--partitions", "3"}).code, 0);
  ASSERT_EQ(cli(s, {"produce", "t", "--durable"}, numbers(0, 300)).code, 0);
  for (const char* group : {"audit", "billing"}) {
    Output o = cli(s, {"consume", "t", "--group", group, "--from", "earliest", "--count", "300", "--timeout", "10s"});
    ASSERT_EQ(o.code, 0) << o.err;
    const auto got = lines(o.out);
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 300u) << group;
  }
  // The group committed everything: nothing is left for it.
  Output o = cli(s, {"consume", "t", "--group", "audit", "--count", "1", "--timeout", "1s"});
  EXPECT_EQ(o.code, 4) << o.err;
  // In parts: the second run goes on where the first stopped, nothing twice.
  ASSERT_EQ(cli(s, {"produce", "t", "--durable"}, numbers(300, 600)).code, 0);
  Output a = cli(s, {"consume", "t", "--group", "audit", "--count", "100", "--timeout", "10s"});
  Output b = cli(s, {"consume", "t", "--group", "audit", "--count", "200", "--timeout", "10s"});
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  std::set<std::string> both;
  for (const auto& l : lines(a.out)) both.insert(l);
  for (const auto& l : lines(b.out)) EXPECT_TRUE(both.insert(l).second) << "read twice: " << l;
  EXPECT_EQ(both.size(), 300u);
  EXPECT_EQ(*both.begin(), "300");
  o = cli(s, {"group", "describe", "t", "audit"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("pubsub"), std::string::npos) << o.out;
  o = cli(s, {"group", "list", "t"});
  EXPECT_EQ(lines(o.out), (std::vector<std::string>{"audit", "billing"}));
  // Per group and partition in the metrics (sampled once a second).
  auto c = ControlClient::connect(s.instance());
  ASSERT_TRUE(c);
  const auto port = c->call("ping").value()["metrics_port"].get<std::uint16_t>();
  std::string body;
  for (int i = 0; i < 50 && body.find("ringbus_group_lag{topic=\"t\",group=\"billing\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    body = http_get(port, "/metrics");
  }
  EXPECT_NE(body.find("ringbus_group_committed_offset{topic=\"t\",group=\"audit\",mode=\"pubsub\",partition=\"0\"}"),
            std::string::npos) << body;
  o = cli(s, {"stats"});
  EXPECT_NE(o.out.find("billing"), std::string::npos) << o.out;
  EXPECT_EQ(d.stop(), 0) << d.log();
}

TEST(ToolsSystem, QueueGroupMembersTogetherSeeEveryRecordOnce) {
  Scratch s;
  Daemon d(s, {"--memory-only"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "jobs", "--partitions", "2", "--ring-bytes", "4MiB"}).code, 0);
  ASSERT_EQ(cli(s, {"group", "reset", "jobs", "workers", "--to", "earliest", "--queue"}).code, 0);
  std::vector<Output> outs(3);
  std::vector<std::thread> members;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    members.emplace_back([&, i] { outs[i] = cli(s, {"consume", "jobs", "--group", "workers", "--queue", "--timeout", "3s"}); });
  }
  ASSERT_EQ(cli(s, {"produce", "jobs"}, numbers(0, 5000)).code, 0);
  for (auto& t : members) t.join();
  std::multiset<std::string> all;
  for (const Output& o : outs) {
    EXPECT_EQ(o.code, 4) << o.err;  // each stops after 3 s without a record
    for (const auto& l : lines(o.out)) all.insert(l);
  }
  EXPECT_EQ(all.size(), 5000u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 5000u) << "a record went to two members";
  Output o = cli(s, {"group", "describe", "jobs", "workers", "--json"});
  ASSERT_EQ(o.code, 0) << o.err;
  const Json g = Json::parse(o.out);
  for (const Json& p : g["partitions"]) EXPECT_EQ(p["lag"], 0);
}

TEST(ToolsSystem, GroupPositionsSurviveRestartsAndSigkill) {
  Scratch s;
  {
    Daemon d(s, {"--data-dir", s.dir() + "/data"});
    ASSERT_TRUE(d.ready()) << d.log();
    ASSERT_EQ(cli(s, {"topic", "create", "t"}).code, 0);
    ASSERT_EQ(cli(s, {"produce", "t", "--durable"}, numbers(0, 100)).code, 0);
    ASSERT_EQ(cli(s, {"consume", "t", "--group", "g", "--from", "earliest", "--count", "40"}).code, 0);
    EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  }
  {
    Daemon d(s, {"--data-dir", s.dir() + "/data"});
    ASSERT_TRUE(d.ready()) << d.log();
    Output o = cli(s, {"consume", "t", "--group", "g", "--count", "20", "--timeout", "10s"});
    ASSERT_EQ(o.code, 0) << o.err;
    EXPECT_EQ(lines(o.out).front(), "40");
    EXPECT_EQ(d.stop(SIGKILL), 128 + SIGKILL);
  }
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  Output o = cli(s, {"consume", "t", "--group", "g", "--count", "40", "--timeout", "10s"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(lines(o.out).front(), "60");
}

TEST(ToolsSystem, GroupBadInputGetsClearErrors) {
  Scratch s;
  Daemon d(s, {"--memory-only"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "t"}).code, 0);
  Output o = cli(s, {"group", "describe", "t", "nope"});
  EXPECT_EQ(o.code, 3);
  EXPECT_NE(o.err.find("no group 'nope'"), std::string::npos) << o.err;
  o = cli(s, {"group", "list", "missing"});
  EXPECT_EQ(o.code, 3) << o.err;
  o = cli(s, {"consume", "t", "--group", "bad/name", "--count", "1"});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("group name 'bad/name'"), std::string::npos) << o.err;
  o = cli(s, {"consume", "t", "--queue", "--count", "1"});
  EXPECT_EQ(o.code, 2) << o.err;
  o = cli(s, {"group", "reset", "t", "g", "--to", "yesterday"});
  EXPECT_EQ(o.code, 2) << o.err;
  ASSERT_EQ(cli(s, {"group", "reset", "t", "g", "--to", "latest"}).code, 0);
  o = cli(s, {"consume", "t", "--group", "g", "--queue", "--count", "1", "--timeout", "1s"});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("is a pubsub group"), std::string::npos) << o.err;
  // A live member: reset refused.
  std::thread member([&] { (void)cli(s, {"consume", "t", "--group", "g", "--timeout", "2s"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  o = cli(s, {"group", "reset", "t", "g", "--to", "earliest"});
  member.join();
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("live member"), std::string::npos) << o.err;
}

TEST(ToolsSystem, LogVerifyAndDumpReadARealLog) {
  Scratch s;
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "t"}).code, 0);
  ASSERT_EQ(cli(s, {"produce", "t", "--durable"}, numbers(0, 500)).code, 0);
  EXPECT_EQ(d.stop(), 0) << d.log();
  const std::string part = s.dir() + "/data/t/0";
  Output o = cli(s, {"log", "verify", part});
  EXPECT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("1 segment(s): no problems"), std::string::npos) << o.out;
  o = cli(s, {"log", "dump", part, "--records"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("offset 499 "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("value \"499\""), std::string::npos);
  o = cli(s, {"log", "verify", s.dir() + "/nothing"});
  EXPECT_EQ(o.code, 3) << o.err;
  EXPECT_NE(o.err.find("no such segment file or partition directory"), std::string::npos) << o.err;
}

TEST(ToolsSystem, ConsumeFromATime) {
  Scratch s;
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "t", "--partitions", "2"}).code, 0);
  ASSERT_EQ(cli(s, {"produce", "t", "--durable"}, numbers(0, 100)).code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(cli(s, {"produce", "t", "--durable"}, numbers(100, 150)).code, 0);
  Output o = cli(s, {"consume", "t", "--from", "@" + std::to_string(ms), "--count", "50", "--timeout", "5s"});
  ASSERT_EQ(o.code, 0) << o.err;
  std::set<int> got;
  for (const auto& l : lines(o.out)) got.insert(std::stoi(l));
  EXPECT_EQ(got.size(), 50u);
  EXPECT_EQ(*got.begin(), 100);
  o = cli(s, {"consume", "t", "--from", "2001-01-01T00:00:00Z", "--count", "150", "--timeout", "5s"});
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(lines(o.out).size(), 150u);
  EXPECT_EQ(cli(s, {"consume", "t", "--from", "tuesday"}).code, 2);
}

// `ringbus ARGS` run in the background in a pid namespace of its own
// (unshare --pid --fork: it is pid 1 there, as in a container that shares
// /dev/shm with the broker but not its pids), its output to a file.
class InOtherPidNamespace {
 public:
  InOtherPidNamespace(const Scratch& s, std::vector<std::string> args) {
    std::vector<std::string> argv_s{"unshare", "--pid", "--fork", "--kill-child", RINGBUS_CLI_PATH};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    pid_ = start_program(s, std::move(argv_s), s.dir() + "/ns-" + std::to_string(starts_++) + ".log");
  }
  ~InOtherPidNamespace() {
    ::kill(pid_, SIGKILL);  // --kill-child: the program dies with it
    ::waitpid(pid_, nullptr, 0);
  }
  // The program's pid as this namespace sees it (0 until it runs).
  pid_t inner() const {
    const std::string children = read_file("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) + "/children");
    return children.empty() ? 0 : static_cast<pid_t>(std::stol(children));
  }

 private:
  pid_t pid_ = -1;
  static inline int starts_ = 0;
};

// Liveness crosses pid namespaces: a gating consumer and a queue-group member
// whose pids mean nothing here are not taken for dead while they live, and
// are once they die. (Judged by pid, both would stay "alive" for good: they
// are pid 1 in their namespace, and pid 1 here is init.)
TEST(ToolsSystem, OtherPidNamespaceClientsLiveAndDie) {
  if (::geteuid() != 0) GTEST_SKIP() << "unshare --pid needs root (CI runs as root)";
  Scratch s;
  Daemon d(s, {"--data-dir", s.dir() + "/data"});
  ASSERT_TRUE(d.ready()) << d.log();
  ASSERT_EQ(cli(s, {"topic", "create", "g", "--ring-bytes", "64KiB"}).code, 0);
  ASSERT_EQ(cli(s, {"topic", "create", "q"}).code, 0);
  const auto gating_readers = [&] {
    return Json::parse(cli(s, {"topic", "describe", "g", "--json"}).out)["partition_info"][0]["gating_readers"].get<int>();
  };

  // A gating consumer, stopped: producers are held back by it, and stay so
  // past the abandoned-claim timeout (when they look for dead readers).
  {
    InOtherPidNamespace gating(s, {"consume", "g", "--gating", "--from", "earliest"});
    ASSERT_TRUE(eventually([&] { return gating_readers() == 2 && gating.inner() > 0; }, std::chrono::seconds(10)))
        << "the flusher and the consumer";
    ASSERT_EQ(::kill(gating.inner(), SIGSTOP), 0);
    auto p = Producer::open(s.instance(), "g");
    ASSERT_TRUE(p.ok());
    const std::string value(1000, 'v');
    ASSERT_TRUE(eventually([&] { return p->try_publish("", value).status == PublishStatus::back_pressured; },
                           std::chrono::seconds(5)));
    const auto held_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
    while (std::chrono::steady_clock::now() < held_until) {
      ASSERT_EQ(p->try_publish("", value).status, PublishStatus::back_pressured) << "a live reader was taken for dead";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_EQ(::kill(gating.inner(), SIGKILL), 0);
    EXPECT_TRUE(eventually([&] { return p->try_publish("", value).ok(); }, std::chrono::seconds(5)))
        << "a dead reader still holds producers back";
    EXPECT_EQ(gating_readers(), 1);
  }

  // A queue-group member: listed while it lives (with its pid there and its
  // client token), evicted by the broker soon after it dies (well before
  // the 10 s session timeout would).
  const auto members = [&] {
    const Output o = cli(s, {"group", "describe", "q", "w", "--json"});
    return o.code == 0 ? Json::parse(o.out)["members"] : Json::array();
  };
  InOtherPidNamespace member(s, {"consume", "q", "--group", "w", "--queue"});
  ASSERT_TRUE(eventually([&] { return members().size() == 1 && member.inner() > 0; }, std::chrono::seconds(10)));
  const Json m = members()[0];
  EXPECT_EQ(m["pid"], 1) << m.dump();
  EXPECT_GT(m["client"].get<std::int64_t>(), 0) << m.dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(members().size(), 1u) << "a live member was evicted";
  ASSERT_EQ(::kill(member.inner(), SIGKILL), 0);
  EXPECT_TRUE(eventually([&] { return members().empty(); }, std::chrono::seconds(4))) << members().dump();
}

}  // namespace
}  // namespace ringbus::test
