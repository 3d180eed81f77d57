// The topic registry (files in /dev/shm), the broker's ownership of an
// instance, and how clients refuse files they must not trust.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "partition_format.h"
#include "ringbus/group.h"
#include "test_support.h"
#include "topic_files.h"

namespace ringbus::test {
namespace {

using TopicTest = BrokerFixture;

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

TEST(TopicNames, BadNamesAreRefusedWithTheRuleTheyBreak) {
  EXPECT_NE(validate_name("topic", "").error().message.find("empty"), std::string::npos);
  EXPECT_NE(validate_name("topic", std::string(250, 'a')).error().message.find("249"), std::string::npos);
  EXPECT_NE(validate_name("topic", "a/b").error().message.find("'/'"), std::string::npos);
  EXPECT_NE(validate_name("topic", "sp ace").error().message.find("' '"), std::string::npos);
  EXPECT_NE(validate_name("topic", ".hidden").error().message.find("reserved"), std::string::npos);
  EXPECT_TRUE(validate_name("topic", "trucking_data-truck.v1").ok());
  EXPECT_TRUE(validate_name("topic", std::string(249, 'a')).ok());
}

TEST(TopicConfigs, BadSizesAreRefusedNamingTheField) {
  TopicConfig c = topic("t");
  c.partitions = 0;
  EXPECT_NE(validate_topic_config(c).error().message.find("partitions"), std::string::npos);
  c = topic("t");
  c.ring_bytes = 100'000;  // not a power of two
  EXPECT_NE(validate_topic_config(c).error().message.find("ring_bytes"), std::string::npos);
  c = topic("t");
  c.max_record_size = 64 * 1024;  // more than a quarter of a 64 KiB ring
  EXPECT_NE(validate_topic_config(c).error().message.find("max_record_size"), std::string::npos);
}

TEST_F(TopicTest, CreateListDescribeDelete) {
  create(topic("b", 2));
  create(topic("a", 3, 128 * 1024, 100));
  auto names = broker.list_topics();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names.value(), (std::vector<std::string>{"a", "b"}));
  auto info = describe_topic(instance, "a");  // from any process, without the broker
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->partitions, 3u);
  EXPECT_EQ(info->ring_bytes, 128u * 1024);
  EXPECT_EQ(info->max_record_size, 100u);
  ASSERT_EQ(info->partition_info.size(), 3u);
  EXPECT_EQ(info->partition_info[2].end_offset, 0u);
  ASSERT_TRUE(broker.delete_topic("a").ok());
  EXPECT_EQ(broker.list_topics().value(), std::vector<std::string>{"b"});
  EXPECT_EQ(describe_topic(instance, "a").error().code, Errc::not_found);
}

// Regression (review): hidden directory names carried the topic name, so
// names of 231-249 characters could not be created, and of 227-230 could not
// be deleted.
TEST_F(TopicTest, NamesOfTheFullLengthCanBeCreatedDeletedAndCreatedAgain) {
  const std::string name(249, 'n');
  create(topic(name));
  EXPECT_TRUE(describe_topic(instance, name).ok());
  ASSERT_TRUE(broker.delete_topic(name).ok());
  EXPECT_EQ(describe_topic(instance, name).error().code, Errc::not_found);
  create(topic(name));
}

TEST(TopicNames, InstanceNamesLeaveRoomForTheDirectoryPrefix) {
  EXPECT_TRUE(validate_name("instance", std::string(241, 'i')).ok());
  EXPECT_NE(validate_name("instance", std::string(242, 'i')).error().message.find("241"), std::string::npos);
}

TEST_F(TopicTest, CreatingAnExistingTopicFails) {
  create(topic("t"));
  auto again = broker.create_topic(topic("t"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::already_exists);
}

TEST_F(TopicTest, UnknownTopicAndUnknownInstanceAreNamed) {
  auto p = Producer::open(instance, "nope");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("unknown topic 'nope'"), std::string::npos) << p.error().message;
  auto q = Producer::open("no-such-instance-xyz", "t");
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message.find("no ringbus instance"), std::string::npos) << q.error().message;
}

TEST_F(TopicTest, DeleteWhileInUseFailsSafelyForItsUsers) {
  create(topic("t"));
  Producer p = producer("t");
  Consumer c = consumer("t", from_earliest(true));
  ASSERT_TRUE(p.try_publish("", "before").ok());
  ASSERT_TRUE(broker.delete_topic("t").ok());
  EXPECT_FALSE(exists(detail::topic_directory(instance, "t")));
  // The mapping outlives the files: nobody crashes, everybody is told.
  EXPECT_EQ(p.try_publish("", "after").status, PublishStatus::topic_deleted);
  std::vector<std::string> got;
  PollResult r = c.poll([&](const Record& rec) { got.emplace_back(rec.value); });
  EXPECT_EQ(r.records, 1u);  // what was published before the delete drains
  r = c.poll([&](const Record& rec) { got.emplace_back(rec.value); });
  EXPECT_EQ(r.status, PollStatus::topic_deleted);
  EXPECT_EQ(got, std::vector<std::string>{"before"});
  EXPECT_EQ(c.wait(std::chrono::seconds(5)), WaitStatus::ready);  // a deleted topic wakes waiters
  // A topic of the same name can be created again, and is a new topic.
  create(topic("t"));
  Producer p2 = producer("t");
  EXPECT_EQ(p2.try_publish("", "new").offset, 0u);
  EXPECT_EQ(p.try_publish("", "old handle").status, PublishStatus::topic_deleted);
}

TEST_F(TopicTest, SecondBrokerOnTheSameInstanceIsRefused) {
  auto second = Broker::start({instance});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, Errc::already_exists);
  EXPECT_NE(second.error().message.find("pid " + std::to_string(::getpid())), std::string::npos)
      << second.error().message;
}

TEST(BrokerLifecycle, CloseRemovesTheInstanceDirectory) {
  const std::string inst = unique_instance();
  {
    auto b = Broker::start({inst});
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(b->create_topic(topic("t")).ok());
    EXPECT_TRUE(exists(instance_directory(inst) + "/topics/t/partition-0"));
  }
  EXPECT_FALSE(exists(instance_directory(inst)));
}

// A broker killed with SIGKILL leaves its rings; the next one adopts them:
// what was published is still there, and offsets go on.
pid_t start_and_die(const std::string& inst, BrokerOptions o, const std::string& topic_name, int records) {
  const pid_t child = ::fork();
  if (child == 0) {
    o.instance = inst;
    auto b = Broker::start(o);
    if (!b) ::_exit(1);
    if (!b->describe_topic(topic_name) && !b->create_topic(topic(topic_name)).ok()) ::_exit(2);
    auto p = Producer::open(inst, topic_name);
    for (int i = 0; i < records; ++i) {
      if (!p || !p->publish("", "r" + std::to_string(i)).ok()) ::_exit(3);
    }
    ::kill(::getpid(), SIGKILL);  // dies holding the instance
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFSIGNALED(status) ? child : -1;
}

TEST_F(BrokerFixture, ATopicLargerThanTheFreeSharedMemoryIsRefusedUpFront) {
  auto r = broker.create_topic(topic("big", 1024, 1ULL << 40));  // a pebibyte
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().message.find("MiB of shared memory, but"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("MiB free"), std::string::npos) << r.error().message;
  EXPECT_TRUE(broker.list_topics().value().empty());
}

TEST(BrokerLifecycle, RingsOfAKilledBrokerAreAdoptedByTheNext) {
  const std::string inst = unique_instance();
  ASSERT_GT(start_and_die(inst, {}, "t", 3), 0);
  ASSERT_TRUE(exists(instance_directory(inst) + "/topics/t/partition-0"));
  auto b = Broker::start({inst});  // the kernel released the dead broker's lock
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->list_topics().value(), std::vector<std::string>{"t"});
  auto c = Consumer::open(inst, "t", from_earliest());
  ASSERT_TRUE(c.ok());
  std::vector<std::string> got;
  (void)c->poll([&](const Record& r) { got.emplace_back(r.value); });
  EXPECT_EQ(got, (std::vector<std::string>{"r0", "r1", "r2"}));
  auto p = Producer::open(inst, "t");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->publish("", "r3").offset, 3u);
}

TEST(BrokerLifecycle, RingsOfABrokerWithADataDirectoryAreNotAdoptedWithoutOne) {
  const std::string inst = unique_instance();
  const std::string data = ::testing::TempDir() + "/ringbus-binding-" + inst;
  ASSERT_GT(start_and_die(inst, {.data_dir = data}, "t", 3), 0);
  std::vector<std::string> logged;
  BrokerOptions o{inst};
  o.logger = [&](const char*, const std::string& m) { logged.push_back(m); };
  auto b = Broker::start(o);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_TRUE(b->list_topics().value().empty());
  ASSERT_FALSE(logged.empty());
  EXPECT_NE(logged.front().find("another data directory"), std::string::npos) << logged.front();
  EXPECT_TRUE(b->create_topic(topic("t")).ok());
  std::error_code ec;
  std::filesystem::remove_all(data, ec);
}

// A consumer waiting on a topic with a log while no broker is alive is told
// so: the first wait at once, later ones in place of a time-out.
TEST(BrokerLifecycle, WaitingConsumersAreToldNoBrokerIsAlive) {
  const std::string inst = unique_instance();
  const std::string data = ::testing::TempDir() + "/ringbus-wait-" + inst;
  ASSERT_GT(start_and_die(inst, {.data_dir = data}, "t", 3), 0);
  auto c = Consumer::open(inst, "t", from_earliest());
  ASSERT_TRUE(c.ok()) << c.error().message;
  std::size_t got = 0;
  while (c->poll([&](const Record&) { ++got; }).records > 0) {
  }
  EXPECT_EQ(got, 3u) << "what the ring holds is read without a broker";
  auto since = [](auto t0) { return std::chrono::steady_clock::now() - t0; };
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c->wait(std::chrono::seconds(30)), WaitStatus::no_broker);
  EXPECT_LT(since(t0), std::chrono::seconds(5)) << "at once, not after the time-out";
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c->wait(std::chrono::milliseconds(50)), WaitStatus::no_broker);
  EXPECT_GE(since(t0), std::chrono::milliseconds(50)) << "the outage was reported: this wait sleeps";
  auto g = GroupConsumer::join(inst, "t", "g");
  ASSERT_TRUE(g.ok()) << g.error().message;
  t0 = std::chrono::steady_clock::now();
  WaitStatus w = WaitStatus::ready;
  while (w == WaitStatus::ready && since(t0) < std::chrono::seconds(5)) {
    (void)g->poll([](const Record&) {});
    w = g->wait(std::chrono::seconds(30));
  }
  EXPECT_EQ(w, WaitStatus::no_broker);
  EXPECT_LT(since(t0), std::chrono::seconds(5));
  {
    // A broker starts (and adopts the rings): waits time out again.
    auto b = Broker::start({.instance = inst, .data_dir = data});
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_EQ(c->wait(std::chrono::milliseconds(50)), WaitStatus::timed_out);
    g->leave();
  }
  std::error_code ec;
  std::filesystem::remove_all(data, ec);
}

// ---- files a client must refuse -------------------------------------------

class PartitionFileTest : public BrokerFixture {
 protected:
  void SetUp() override { create(topic("t")); }
  std::string path() const { return detail::topic_directory(instance, "t") + "/partition-0"; }
  void poke(std::size_t offset, const void* bytes, std::size_t n) {
    const int fd = ::open(path().c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, bytes, n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
    ::close(fd);
  }
  Error open_error() {
    auto p = Producer::open(instance, "t");
    EXPECT_FALSE(p.ok());
    return p.ok() ? Error{} : p.error();
  }
};

TEST_F(PartitionFileTest, LayoutVersionMismatchIsRefusedWithBothVersions) {
  const std::uint32_t v = detail::kLayoutVersion + 1;
  poke(offsetof(detail::PartitionIdentity, layout_version), &v, sizeof v);
  const Error e = open_error();
  EXPECT_EQ(e.code, Errc::version_mismatch);
  EXPECT_NE(e.message.find("layout version " + std::to_string(v)), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("reads version " + std::to_string(detail::kLayoutVersion)), std::string::npos);
}

TEST_F(PartitionFileTest, TruncatedFileIsRefused) {
  ASSERT_EQ(::truncate(path().c_str(), static_cast<off_t>(detail::partition_file_size(64 * 1024) / 2)), 0);
  const Error e = open_error();
  EXPECT_EQ(e.code, Errc::corrupt);
  EXPECT_NE(e.message.find("truncated"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find(path()), std::string::npos) << e.message;
}

// An unreadable ring is removed with the rest when the broker closes (or
// the next starts): a topic of that name can be created again.
TEST_F(PartitionFileTest, AnUnreadableRingIsRemovedWhenTheBrokerCloses) {
  ASSERT_EQ(::truncate(path().c_str(), 10), 0);
  broker.close();
  EXPECT_FALSE(exists(instance_directory(instance)));
  auto again = Broker::start({instance});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->create_topic(topic("t")).ok());
}

TEST_F(PartitionFileTest, FileShorterThanAHeaderIsRefused) {
  ASSERT_EQ(::truncate(path().c_str(), 10), 0);
  EXPECT_NE(open_error().message.find("truncated"), std::string::npos);
}

TEST_F(PartitionFileTest, BadMagicIsRefused) {
  const std::uint64_t junk = 0x1234;
  poke(0, &junk, sizeof junk);
  EXPECT_NE(open_error().message.find("bad magic"), std::string::npos);
}

TEST_F(PartitionFileTest, InconsistentSizesAreRefused) {
  const std::uint64_t entries = 3;
  poke(offsetof(detail::PartitionIdentity, entry_count), &entries, sizeof entries);
  EXPECT_NE(open_error().message.find("entry_count"), std::string::npos);
}

TEST(PartitionFormat, HeaderLinesAreWhereTheSpecSaysAndHotWordsDoNotShare) {
  using detail::PartitionHeader;
  EXPECT_EQ(offsetof(PartitionHeader, claim) % 16, 0u);  // cmpxchg16b alignment
  EXPECT_EQ(offsetof(PartitionHeader, claim) - offsetof(PartitionHeader, state), detail::kHotPad);
  EXPECT_EQ(offsetof(PartitionHeader, frontier) % 16, 0u);
  EXPECT_EQ(offsetof(PartitionHeader, frontier) - offsetof(PartitionHeader, lap_marker), detail::kHotPad);
  EXPECT_EQ(offsetof(PartitionHeader, wake_seq) - offsetof(PartitionHeader, frontier), detail::kHotPad);
  EXPECT_EQ(detail::ring_data_offset(64 * 1024 / 32) % 4096, 0u);
}

}  // namespace
}  // namespace ringbus::test
