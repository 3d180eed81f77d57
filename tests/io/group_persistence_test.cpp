// Consumer-group positions kept by the broker in its data directory: they
// survive a clean restart and a SIGKILL of the broker; a corrupt offsets
// file is refused with its name; the codec round-trips.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "../bus/process_support.h"
#include "../bus/test_support.h"
#include "group_offsets.h"
#include "ringbus/broker.h"
#include "ringbus/group.h"

namespace ringbus::test {
namespace {

using namespace std::chrono_literals;

struct GroupPersistence : ::testing::Test {
  std::string instance = unique_instance("grp");
  std::filesystem::path data = std::filesystem::temp_directory_path() / ("ringbus-data-" + instance);
  std::vector<std::string> messages;

  ~GroupPersistence() override {
    std::error_code ec;
    std::filesystem::remove_all(data, ec);
  }
  Broker start() {
    BrokerOptions o{instance, data.string()};
    o.logger = [this](const char* level, const std::string& m) { messages.push_back(std::string(level) + ": " + m); };
    auto b = Broker::start(o);
    if (!b) {
      ADD_FAILURE() << b.error().message;
      std::abort();
    }
    return std::move(b.value());
  }
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
