#include "trucking_run.h"

#include <unistd.h>
#include <xxhash.h>

#include <csignal>

#include "ringbus/topic.h"

namespace ringbus::trucking {

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

std::int64_t steady_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::int64_t realtime_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t realtime_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void sleep_until_ms(std::int64_t deadline) {
  const std::int64_t left = deadline - steady_ms();
  if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(left));
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() noexcept { return g_stop != 0; }

bool give_up(const Error& e, std::int64_t deadline_ms) noexcept {
  const bool hopeless = e.code == Errc::invalid_argument || e.code == Errc::version_mismatch;
  return hopeless || steady_ms() > deadline_ms || stop_requested();
}

std::optional<GroupConsumer> join_group(const std::string& program, const std::string& instance, const std::string& topic,
                                        const std::string& group, const GroupOptions& options, double timeout_s) {
  return retry(program, "join group '" + group + "' of topic '" + topic + "'", timeout_s,
               [&] { return GroupConsumer::join(instance, topic, group, options); });
}

std::optional<Producer> open_producer(const std::string& program, const std::string& instance, const std::string& topic,
                                      double timeout_s) {
  return retry(program, "publish to topic '" + topic + "'", timeout_s, [&] { return Producer::open(instance, topic); });
}

std::uint64_t topic_end(const std::string& instance, const char* topic) {
  auto t = describe_topic(instance, topic);
  std::uint64_t n = 0;
  if (t) {
    for (const PartitionInfo& p : t->partition_info) n += p.end_offset;
  }
  return n;
}

std::optional<std::uint64_t> group_lag(const std::string& instance, const char* topic, const char* group) {
  auto g = describe_group(instance, topic, group);
  if (!g) return std::nullopt;
  std::uint64_t n = 0;
  for (const GroupPartitionInfo& p : g->partitions) n += p.lag;
  return n;
}

ReceivedRecords::ReceivedRecords(const std::string& dir, const char* program) {
  if (dir.empty()) return;
  path_ = dir + "/received-" + program + "-" + std::to_string(::getpid()) + ".csv";
  file_.open(path_, std::ios::trunc);
}

void ReceivedRecords::add(const char* topic, const Record& r) {
  if (path_.empty()) return;
  file_ << topic << ',' << r.partition << ',' << r.offset << ',' << hash(r.value) << '\n';
}

bool ReceivedRecords::flush() { return path_.empty() || static_cast<bool>(file_.flush()); }

std::uint64_t ReceivedRecords::hash(std::string_view value) noexcept { return XXH64(value.data(), value.size(), 0); }

}  // namespace ringbus::trucking
