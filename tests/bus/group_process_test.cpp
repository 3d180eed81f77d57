// Queue-group members in separate processes: one is killed with SIGKILL in
// the middle of the stream; what it held unacknowledged goes to the others,
// and together they see every record (records the killed member reported
// but had not acknowledged may come twice: at-least-once).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <map>
#include <set>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "process_support.h"
#include "ringbus/group.h"
#include "test_support.h"

namespace ringbus::test {
namespace {

using namespace std::chrono_literals;
using GroupProcessTest = BrokerFixture;

// A member process: reports "<value>\n" on `out` for each record (one
// write(2) each, so a SIGKILL never tears a line), then acknowledges it.
int member(const std::string& instance, int out, int total, bool slow) {
  GroupOptions o;
  o.settings.mode = GroupMode::queue;
  o.settings.start = StartPosition::Kind::earliest;
  o.auto_ack = false;
  auto g = GroupConsumer::join(instance, "q", "workers", o);
  if (!g) return 1;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  int idle = 0;
  while (std::chrono::steady_clock::now() < deadline && idle < 300) {
    const PollResult r = g->poll([&](const Record& rec) {
      const std::string line = std::string(rec.value) + "\n";
      if (::write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::abort();
      if (slow) std::this_thread::sleep_for(1ms);
      (void)g->ack(rec.partition, rec.offset);
    });
    if (r.status != PollStatus::ok) return 2;
    idle = r.records == 0 ? idle + 1 : 0;
    if (r.records == 0) (void)g->wait(10ms);
  }
  (void)total;
  return 0;
}

TEST_F(GroupProcessTest, AMemberKilledMidStreamHasItsRecordsRedelivered) {
  constexpr int kRecords = 20'000;
  create(topic("q", 2, 4 << 20));
  Producer p = producer("q");
  for (int i = 0; i < kRecords; ++i) ASSERT_TRUE(p.publish("", std::to_string(i)).ok());
  const std::string dir = "/var/tmp/ringbus-group-process-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  auto open_out = [&](const char* name) { return ::open((dir + "/" + name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644); };
  const int victim_out = open_out("victim");
  const pid_t victim = spawn([&] { return member(instance, victim_out, kRecords, /*slow=*/true); });
  // Let it take some chunks, then kill it in the middle of one.
  std::this_thread::sleep_for(300ms);
  ::kill(victim, SIGKILL);
  ::waitpid(victim, nullptr, 0);
  ::close(victim_out);
  std::vector<pid_t> others;
  std::vector<int> outs;
  for (const char* name : {"a", "b"}) {
    const int fd = open_out(name);
    outs.push_back(fd);
    others.push_back(spawn([&, fd] { return member(instance, fd, kRecords, false); }));
  }
  EXPECT_EQ(wait_all(others, std::chrono::seconds(120)), "");
  for (int fd : outs) ::close(fd);
  auto read_lines = [&](const char* name) {
    std::ifstream f(dir + "/" + name);
    std::vector<std::string> v;
    for (std::string l; std::getline(f, l);) v.push_back(l);
    return v;
  };
  const auto from_victim = read_lines("victim");
  EXPECT_GT(from_victim.size(), 0u) << "the victim read nothing before it was killed";
  EXPECT_LT(from_victim.size(), static_cast<std::size_t>(kRecords));
  std::map<std::string, int> count;
  for (const char* name : {"victim", "a", "b"}) {
    for (const auto& l : read_lines(name)) ++count[l];
  }
  EXPECT_EQ(count.size(), static_cast<std::size_t>(kRecords)) << "records were lost";
  // Only what the victim reported may come twice, and at most what it could
  // hold: one chunk per partition.
  const std::set<std::string> victim_set(from_victim.begin(), from_victim.end());
  int twice = 0;
  for (const auto& [v, n] : count) {
    if (n > 1) {
      ++twice;
      EXPECT_EQ(n, 2) << v;
      EXPECT_TRUE(victim_set.contains(v)) << v << " came twice, not from the killed member";
    }
  }
  EXPECT_LE(twice, 2 * 64);
  auto info = describe_group(instance, "q", "workers");
  ASSERT_TRUE(info.ok());
  for (const auto& part : info->partitions) EXPECT_EQ(part.committed, part.end_offset);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ringbus::test
