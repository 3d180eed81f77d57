// Consumer-group positions kept by the broker in its data directory: they
// survive a clean restart and a SIGKILL of the broker; a corrupt offsets
// file is refused with its name; the codec round-trips. Retention policy
// consumed deletes what every group has durably committed past.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "../bus/process_support.h"
#include "../bus/test_support.h"
#include "log_fixture.h"
#include "group_offsets.h"
#include "ringbus/broker.h"
#include "ringbus/group.h"

namespace ringbus::test {
namespace {

using namespace std::chrono_literals;

struct GroupPersistence : LogFixture {
  GroupPersistence() : LogFixture("grp") {}
  void publish(int n, int first = 0) {
    auto p = Producer::open(instance, "t");
    ASSERT_TRUE(p.ok());
    PublishResult last;
    for (int i = first; i < first + n; ++i) {
      last = p->publish("", std::to_string(i));
      ASSERT_TRUE(last.ok());
    }
    // On disk before anything else: a broker killed with SIGKILL loses what
    // its flusher had not written.
    ASSERT_EQ(p->wait_durable(last, 10s), PublishStatus::ok);
  }
  // Reads at least n records (poll hands over whole batches, and a batch
  // from disk may hold many).
  std::vector<std::string> read(GroupConsumer& m, std::size_t n) {
    std::vector<std::string> got;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
      (void)m.poll([&](const Record& r) { got.emplace_back(r.value); }, n - got.size());
      if (got.size() < n) (void)m.wait(10ms);
    }
    return got;
  }
};

GroupOptions options(GroupMode mode) {
  GroupOptions o;
  o.settings.mode = mode;
  o.settings.start = StartPosition::Kind::earliest;
  return o;
}

TEST_F(GroupPersistence, PubsubPositionSurvivesARestart) {
  std::size_t consumed = 0;
  {
    Broker b = start();
    ASSERT_TRUE(b.create_topic(topic("t", 1, 64 * 1024, 1024)).ok());
    publish(100);
    auto m = GroupConsumer::join(instance, "t", "g", options(GroupMode::pubsub));
    ASSERT_TRUE(m.ok()) << m.error().message;
    consumed = read(*m, 40).size();
    ASSERT_TRUE(m->commit(/*durable=*/true).ok());
  }  // the member leaves, the broker closes
  Broker b = start();
  publish(10, 100);
  auto m = GroupConsumer::join(instance, "t", "g", options(GroupMode::pubsub));
  ASSERT_TRUE(m.ok()) << m.error().message;
  const auto got = read(*m, 110 - consumed);
  ASSERT_EQ(got.size(), 110 - consumed);
  EXPECT_EQ(got.front(), std::to_string(consumed));
}

TEST_F(GroupPersistence, QueuePositionAndSettingsSurviveARestart) {
  {
    Broker b = start();
    ASSERT_TRUE(b.create_topic(topic("t", 2, 64 * 1024, 1024)).ok());
    publish(300);
    GroupOptions o = options(GroupMode::queue);
    o.settings.max_deliveries = 7;
    auto m = GroupConsumer::join(instance, "t", "q", o);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(read(*m, 300).size(), 300u);
    (void)m->poll([](const Record&) {});  // acknowledges the last chunks
    ASSERT_TRUE(m->commit(true).ok());
  }
  Broker b = start();
  publish(10, 300);
  auto info = describe_group(instance, "t", "q");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->settings.mode, GroupMode::queue);
  EXPECT_EQ(info->settings.max_deliveries, 7u);
  std::uint64_t lag = 0;
  for (const auto& p : info->partitions) lag += p.lag;
  EXPECT_EQ(lag, 10u);
  auto m = GroupConsumer::join(instance, "t", "q", options(GroupMode::queue));
  ASSERT_TRUE(m.ok());
  const auto got = read(*m, 10);
  EXPECT_EQ(got.size(), 10u);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).count("300"), 1u);
}

TEST_F(GroupPersistence, PositionsSurviveASigkillOfTheBroker) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = spawn([&] {
    ::close(ready[0]);
    Broker b = start();
    if (!b.create_topic(topic("t", 1, 64 * 1024, 1024))) return 1;
    publish(100);
    auto m = GroupConsumer::join(instance, "t", "g", options(GroupMode::pubsub));
    if (!m) return 2;
    const auto n = static_cast<char>(read(*m, 70).size());
    if (!m->commit(true)) return 3;
    (void)::write(ready[1], &n, 1);
    ::pause();  // killed here, still a member, broker running
    return 0;
  });
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  Broker b = start();  // recovers the log, cleans the dead broker's shared memory, restores the group
  auto info = describe_group(instance, "t", "g");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->partitions[0].committed, static_cast<std::uint64_t>(c));
  publish(10, 100);
  auto m = GroupConsumer::join(instance, "t", "g", options(GroupMode::pubsub));
  ASSERT_TRUE(m.ok()) << m.error().message;
  const auto got = read(*m, 110 - static_cast<std::size_t>(c));
  ASSERT_EQ(got.size(), 110 - static_cast<std::size_t>(c));
  EXPECT_EQ(got.front(), std::to_string(c));
}

// A member read records a SIGKILLed broker's ring lost before they were
// written: its group's position is past the log's end. The next broker moves
// it back to the end, so the group reads what is published there next.
TEST_F(GroupPersistence, APositionPastTheLogEndIsMovedBackToTheEnd) {
  {
    Broker b = start();
    ASSERT_TRUE(b.create_topic(topic("t", 1, 64 * 1024, 1024)).ok());
    publish(10);
    auto m = GroupConsumer::join(instance, "t", "q", options(GroupMode::queue));
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(read(*m, 10).size(), 10u);
    ASSERT_TRUE(m->commit(true).ok());
  }
  const auto path = data / "t" / "groups" / "q.offsets";
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(raw.size());
  std::memcpy(bytes.data(), raw.data(), raw.size());
  auto g = io::decode_group_offsets(bytes, path.string());
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ(g->committed[0], 10u);
  g->committed[0] = 25;  // 15 records the log never got
  const auto out = io::encode_group_offsets(g.value());
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(out.data()),
                                                                 static_cast<std::streamsize>(out.size()));
  Broker b = start();
  auto info = describe_group(instance, "t", "q");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->partitions[0].committed, 10u);
  bool warned = false;
  for (const auto& msg : messages) warned = warned || msg.find("past the log's end") != std::string::npos;
  EXPECT_TRUE(warned);
  publish(5, 10);
  auto m = GroupConsumer::join(instance, "t", "q", options(GroupMode::queue));
  ASSERT_TRUE(m.ok());
  const auto got = read(*m, 5);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got.front(), "10");
}

TEST_F(GroupPersistence, DurableCommitWithoutADataDirectoryIsRefused) {
  auto b = Broker::start({instance});
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->create_topic(topic("t", 1)).ok());
  auto m = GroupConsumer::join(instance, "t", "g");
  ASSERT_TRUE(m.ok());
  const Status s = m->commit(true);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("no data directory"), std::string::npos);
}

TEST_F(GroupPersistence, ACorruptOffsetsFileIsLoggedAndNotLoaded) {
  {
    Broker b = start();
    ASSERT_TRUE(b.create_topic(topic("t", 1, 64 * 1024, 1024)).ok());
    auto m = GroupConsumer::join(instance, "t", "g", options(GroupMode::pubsub));
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(m->commit(true).ok());
  }
  const auto path = data / "t" / "groups" / "g.offsets";
  ASSERT_TRUE(std::filesystem::exists(path));
  std::ofstream(path, std::ios::binary | std::ios::in) << "garbage";
  Broker b = start();
  bool logged = false;
  for (const auto& msg : messages) logged = logged || (msg.find("g.offsets is not loaded") != std::string::npos);
  EXPECT_TRUE(logged);
  EXPECT_FALSE(describe_group(instance, "t", "g").ok());
}

// Retention policy consumed: nothing goes while no group exists; then the
// log's start follows the slowest group's durable position, never past it,
// down to the active segment. A topic with the default policy keeps what its
// group consumed.
TEST_F(GroupPersistence, RetentionConsumedDeletesWhatEveryGroupHasCommitted) {
  Broker b = start();
  for (const std::string name : {"t", "u"}) {
    TopicConfig c = topic(name, 1, 1 << 20, 4096);
    c.log.segment_bytes = 1 << 20;  // the smallest: about 1000 of these records
    c.log.durability = Durability::page_cache;
    if (name == "t") c.log.retention_policy = RetentionPolicy::consumed;
    ASSERT_TRUE(b.create_topic(c).ok());
  }
  constexpr std::size_t kRecords = 4000;
  const std::string pad(1000, 'x');
  for (const char* name : {"t", "u"}) {
    auto p = Producer::open(instance, name);
    ASSERT_TRUE(p.ok());
    PublishResult last;
    for (std::size_t i = 0; i < kRecords; ++i) {
      last = p->publish("", pad + std::to_string(i));
      ASSERT_TRUE(last.ok());
    }
    ASSERT_EQ(p->wait_durable(last, 10s), PublishStatus::ok);
  }
  const auto log_start = [&](const char* name) { return b.describe_topic(name)->partition_info[0].log_start_offset; };
  const auto segments = [&] {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(data / "t" / "0")) n += e.path().extension() == ".log";
    return n;
  };
  const auto await = [](const auto& done) {
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    return done();
  };
  ASSERT_GE(segments(), 4u);
  std::this_thread::sleep_for(1500ms);  // retention looks every second
  EXPECT_EQ(log_start("t"), 0u) << "no group yet: nothing counts as consumed";

  auto fast = GroupConsumer::join(instance, "t", "fast", options(GroupMode::pubsub));
  auto slow = GroupConsumer::join(instance, "t", "slow", options(GroupMode::pubsub));
  auto other = GroupConsumer::join(instance, "u", "all", options(GroupMode::pubsub));
  ASSERT_TRUE(fast.ok() && slow.ok() && other.ok());
  EXPECT_EQ(read(*fast, kRecords).size(), kRecords);
  ASSERT_TRUE(fast->commit(true).ok());
  EXPECT_EQ(read(*other, kRecords).size(), kRecords);
  ASSERT_TRUE(other->commit(true).ok());
  (void)read(*slow, 1500);
  ASSERT_TRUE(slow->commit(true).ok());
  const std::uint64_t slow_at = describe_group(instance, "t", "slow")->partitions[0].committed;
  ASSERT_GE(slow_at, 1500u);
  ASSERT_LT(slow_at, kRecords);

  EXPECT_TRUE(await([&] { return log_start("t") > 0; })) << "the first segment is consumed by both groups";
  std::this_thread::sleep_for(1500ms);
  EXPECT_LE(log_start("t"), slow_at) << "retention passed the slow group";
  EXPECT_GT(segments(), 1u);
  EXPECT_EQ(log_start("u"), 0u) << "policy limits: consumed segments stay";

  EXPECT_EQ(read(*slow, kRecords - slow_at).size(), kRecords - slow_at);
  ASSERT_TRUE(slow->commit(true).ok());
  EXPECT_TRUE(await([&] { return segments() == 1; })) << "everything but the active segment is consumed";
  EXPECT_LE(log_start("t"), kRecords);
  // What is left reads from the new start.
  slow->leave();
  fast->leave();
  ASSERT_TRUE(reset_group(instance, "t", "fast", GroupPosition{GroupPosition::Kind::earliest}).ok());
  auto again = GroupConsumer::join(instance, "t", "fast", options(GroupMode::pubsub));
  ASSERT_TRUE(again.ok());
  const auto rest = read(*again, kRecords - log_start("t"));
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front(), pad + std::to_string(log_start("t")));
}

TEST(GroupOffsetsCodec, RoundTripsAndRefusesDamage) {
  io::GroupOffsets g;
  g.name = "billing";
  g.settings.mode = GroupMode::queue;
  g.settings.max_deliveries = 5;
  g.settings.dead_letter_topic = "billing-dlq";
  g.committed = {1, 2, 3};
  auto bytes = io::encode_group_offsets(g);
  auto back = io::decode_group_offsets(bytes, "x");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->name, "billing");
  EXPECT_EQ(back->settings.dead_letter_topic, "billing-dlq");
  EXPECT_EQ(back->committed, g.committed);
  bytes[bytes.size() - 1] ^= std::byte{1};
  auto bad = io::decode_group_offsets(bytes, "x.offsets");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("CRC32C"), std::string::npos);
  bytes.resize(10);
  EXPECT_EQ(io::decode_group_offsets(bytes, "x").error().code, Errc::corrupt);
}

}  // namespace
}  // namespace ringbus::test
