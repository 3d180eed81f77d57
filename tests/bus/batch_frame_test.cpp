// Kafka record batches from elsewhere in the ring (Producer::
// try_publish_record_batch): one claim whose records consumers read like any
// others, gating or not, compressed or not, between single records; queue
// group members split a batch's offsets; one test per refusal; a batch
// damaged in the ring is reported, not delivered.
#include <fcntl.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "crc32c.h"
#include "partition_format.h"
#include "record_batch.h"
#include "ringbus/group.h"
#include "test_support.h"
#include "topic_files.h"

namespace ringbus::test {
namespace {

using namespace std::chrono_literals;

// A batch as a Kafka producer builds it: offsets from 0, no epoch (-1),
// record i with key "k<first + i>", value "v<first + i>" and one header.
std::vector<std::byte> kafka_batch(int first, int records, log::v2::Compression codec = log::v2::Compression::none) {
  log::v2::BatchBuilder b;
  b.reset(0, -1, codec);
  for (int i = 0; i < records; ++i) {
    const std::string n = std::to_string(first + i);
    const Header h[] = {{"n", n}};
    b.append(static_cast<std::uint64_t>(i), 1'700'000'000'000 + first + i, "k" + std::to_string(first + i),
             "v" + std::to_string(first + i), h);
  }
  const auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

struct Seen {
  std::uint64_t offset;
  std::string key;
  std::string value;
  std::int64_t timestamp_ms;
  std::string header;
};

std::vector<Seen> drain(Consumer& c) {
  std::vector<Seen> out;
  for (;;) {
    const PollResult r = c.poll([&](const Record& rec) {
      std::string header;
      for (const Header& h : rec.headers) header = std::string(h.name) + "=" + std::string(h.value);
      out.push_back({rec.offset, std::string(rec.key), std::string(rec.value), rec.timestamp_ms, header});
    });
    EXPECT_EQ(r.status, PollStatus::ok) << to_string(r.status);
    if (r.records == 0) return out;
  }
}

using BatchFrame = BrokerFixture;

// Offsets 0-1 single records, 2-6 a batch, 7 a record, 8-10 a zstd batch.
void publish_mixed(Producer& p) {
  ASSERT_TRUE(p.try_publish("k0", "v0").ok());
  ASSERT_TRUE(p.try_publish("k1", "v1").ok());
  PublishResult r = p.try_publish_record_batch(kafka_batch(2, 5));
  ASSERT_TRUE(r.ok()) << to_string(r.status);
  EXPECT_EQ(r.offset, 2u);
  ASSERT_TRUE(p.try_publish("k7", "v7").ok());
  r = p.try_publish_record_batch(kafka_batch(8, 3, log::v2::Compression::zstd));
  ASSERT_TRUE(r.ok()) << to_string(r.status);
  EXPECT_EQ(r.offset, 8u);
}

void expect_mixed(const std::vector<Seen>& seen) {
  ASSERT_EQ(seen.size(), 11u);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].offset, i);
    EXPECT_EQ(seen[i].key, "k" + std::to_string(i));
    EXPECT_EQ(seen[i].value, "v" + std::to_string(i));
    const bool from_batch = (i >= 2 && i <= 6) || i >= 8;
    if (from_batch) {
      EXPECT_EQ(seen[i].timestamp_ms, 1'700'000'000'000 + static_cast<std::int64_t>(i));  // the batch's
      EXPECT_EQ(seen[i].header, "n=" + std::to_string(i));
    }
  }
}

TEST_F(BatchFrame, GatingAndNonGatingConsumersReadBatchRecordsBetweenSingleOnes) {
  create(topic("t"));
  Consumer gating = consumer("t", from_earliest(true));
  Consumer copying = consumer("t", from_earliest(false));
  Producer p = producer("t");
  publish_mixed(p);
  expect_mixed(drain(gating));
  expect_mixed(drain(copying));
  ASSERT_TRUE(p.try_publish("k11", "v11").ok());  // and on past them
  EXPECT_EQ(drain(gating).at(0).offset, 11u);
}

TEST_F(BatchFrame, AConsumerStartingInsideABatchGetsTheRestOfIt) {
  create(topic("t"));
  Producer p = producer("t");
  publish_mixed(p);
  ConsumerOptions o;
  o.start = StartPosition::at(4);
  Consumer c = consumer("t", o);
  const auto seen = drain(c);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front().offset, 4u);
  EXPECT_EQ(seen.size(), 7u);
}

TEST_F(BatchFrame, QueueMembersShareABatchsRecordsEachOnce) {
  create(topic("t"));
  Producer p = producer("t");
  for (int b = 0; b < 20; ++b) ASSERT_TRUE(p.try_publish_record_batch(kafka_batch(b * 10, 10)).ok());
  GroupOptions o;
  o.settings.mode = GroupMode::queue;
  o.settings.start = StartPosition::Kind::earliest;
  // Queue chunks are 64 offsets: they cut through the batches of 10.
  auto a = GroupConsumer::join(instance, "t", "q", o);
  auto b = GroupConsumer::join(instance, "t", "q", o);
  ASSERT_TRUE(a && b);
  std::multiset<std::string> all;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (all.size() < 200 && std::chrono::steady_clock::now() < deadline) {
    for (GroupConsumer* m : {&a.value(), &b.value()}) {
      (void)m->poll([&](const Record& r) {
        EXPECT_EQ(r.value, "v" + std::to_string(r.offset));
        all.emplace(r.value);
      });
    }
  }
  EXPECT_EQ(all.size(), 200u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 200u) << "a record went to both members";
}

// Each refusal: the status, and check_record_batch's reason.
TEST_F(BatchFrame, ABadBatchIsRefusedAndNothingIsClaimed) {
  create(topic("t", 1, 64 * 1024, 4096));
  Producer p = producer("t");
  const auto refused = [&](const std::vector<std::byte>& batch, const std::string& why) {
    EXPECT_EQ(p.try_publish_record_batch(batch).status, PublishStatus::invalid_argument) << why;
    const Status s = check_record_batch(batch);
    ASSERT_FALSE(s.ok()) << why;
    EXPECT_NE(s.error().message.find(why), std::string::npos) << s.error().message;
  };
  std::vector<std::byte> crc = kafka_batch(0, 3);
  crc.back() ^= std::byte{1};
  refused(crc, "CRC");
  std::vector<std::byte> longer = kafka_batch(0, 3);
  longer.push_back(std::byte{0});
  refused(longer, "by its batchLength");
  {
    log::v2::BatchBuilder none;  // one offset covered, no record
    none.reset(0);
    none.cover_until(1);
    const auto bytes = none.finish();
    refused(std::vector<std::byte>(bytes.begin(), bytes.end()), "0 records; a batch holds 1 to 65535");
  }
  {
    log::v2::BatchBuilder gaps;  // offset deltas 0 and 2
    gaps.reset(0);
    gaps.append(0, 1, "k", "v");
    gaps.append(2, 1, "k", "v");
    const auto bytes = gaps.finish();
    refused(std::vector<std::byte>(bytes.begin(), bytes.end()), "offset deltas are not 0 to 1");
  }
  {
    std::vector<std::byte> txn = kafka_batch(0, 2);
    txn[log::v2::kAttributesAt + 1] |= std::byte{log::v2::kTransactional};  // attributes are big-endian
    const std::uint32_t crc = log::crc32c(txn.data() + log::v2::kAttributesAt, txn.size() - log::v2::kAttributesAt);
    for (int i = 0; i < 4; ++i) txn[log::v2::kCrcAt + i] = static_cast<std::byte>(crc >> (24 - 8 * i));
    refused(txn, "transactional or control");
  }
  EXPECT_TRUE(check_record_batch(kafka_batch(0, 2)).ok());
  std::vector<std::byte> big = kafka_batch(0, 1);
  {
    log::v2::BatchBuilder b;
    b.reset(0);
    b.append(0, 1, "k", std::string(5000, 'x'));
    const auto bytes = b.finish();
    big.assign(bytes.begin(), bytes.end());
  }
  EXPECT_EQ(p.try_publish_record_batch(big).status, PublishStatus::record_too_large);
  EXPECT_EQ(p.try_publish_record_batch(kafka_batch(0, 1), 7).status, PublishStatus::invalid_partition);
  // Nothing was claimed: the next good one gets offset 0.
  const PublishResult ok = p.try_publish_record_batch(kafka_batch(0, 2));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.offset, 0u);
}

// The bytes of a committed batch frame damaged in the ring: a gating
// consumer reports the claim as corrupt and goes on after it.
TEST_F(BatchFrame, ABatchDamagedInTheRingIsReportedNotDelivered) {
  create(topic("t", 1, 64 * 1024, 4096));
  Consumer c = consumer("t", from_earliest(/*gating=*/true));
  Producer p = producer("t");
  ASSERT_TRUE(p.try_publish("k0", "v0").ok());  // a frame of 64 bytes: the batch frame starts at 64
  ASSERT_TRUE(p.try_publish_record_batch(kafka_batch(1, 3)).ok());
  {
    const std::string path = detail::topic_directory(instance, "t") + "/partition-0";
    const int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const auto at = static_cast<off_t>(detail::ring_data_offset(64 * 1024 / detail::kFrameAlign) + 64 +
                                       sizeof(detail::RecordHeader) + log::v2::kHeaderSize + 3);
    const char junk = 0x55;
    ASSERT_EQ(::pwrite(fd, &junk, 1, at), 1);
    ::close(fd);
  }
  std::vector<std::string> got;
  PollResult r = c.poll([&](const Record& rec) { got.emplace_back(rec.value); });
  EXPECT_EQ(r.status, PollStatus::corrupt);
  EXPECT_EQ(r.missed_from, 1u);
  EXPECT_EQ(got, std::vector<std::string>{"v0"});
}

}  // namespace
}  // namespace ringbus::test
