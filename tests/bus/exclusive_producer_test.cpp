// An exclusive producer (ProducerOptions::exclusive; bus/README.md, "An
// exclusive owner"): one test per case, in one process. The owner's death
// and stop are in exclusive_owner_fault_test.cpp.
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "stress_support.h"
#include "test_support.h"

namespace ringbus::test {
namespace {

using ExclusiveProducerTest = BrokerFixture;

TEST_F(ExclusiveProducerTest, PublishesDenseOffsetsThroughEveryCallAndOthersAreRefusedUntilItCloses) {
  create(topic("t", 2));
  Consumer c = consumer("t", from_earliest(true));
  Producer shared = producer("t");
  {
    Producer owner = producer("t", exclusive_producer());
    for (std::uint32_t p = 0; p < 2; ++p) {
      EXPECT_EQ(shared.try_publish("", "x", {}, p).status, PublishStatus::partition_owned);
      EXPECT_EQ(shared.try_claim(4, {}, {}, p).status(), PublishStatus::partition_owned);
    }
    EXPECT_EQ(owner.try_publish("", "r0", {}, 0).offset, 0u);
    EXPECT_EQ(owner.publish("", "r1", {}, 0).offset, 1u);
    const Message batch[] = {{"", "r2"}, {"", "r3"}};
    EXPECT_EQ(owner.try_publish_batch(batch, 0).offset, 2u);
    Claim claim = owner.try_claim(2, {}, {}, 0);
    ASSERT_TRUE(claim.ok());
    std::memcpy(claim.value().data(), "r4", 2);
    EXPECT_EQ(claim.commit().offset, 4u);
    Claim aborted = owner.try_claim(2, {}, {}, 0);
    ASSERT_TRUE(aborted.ok());
    aborted.abort();  // offset 5: stepped over
    EXPECT_EQ(owner.try_publish("", "r6", {}, 0).offset, 6u);
  }
  // Closed: the leases went back.
  EXPECT_EQ(shared.try_publish("", "r7", {}, 0).offset, 7u);
  const auto seen = drain_values(c);
  const std::vector<std::pair<std::uint64_t, std::string>> want = {
      {0, "r0"}, {1, "r1"}, {2, "r2"}, {3, "r3"}, {4, "r4"}, {6, "r6"}, {7, "r7"}};
  EXPECT_EQ(seen, want);
  EXPECT_EQ(c.skipped(), 1u);
}

TEST_F(ExclusiveProducerTest, DescribeNamesTheOwnerWhileItHoldsTheLease) {
  create(topic("t", 2));
  {
    Producer owner = producer("t", exclusive_producer());
    auto info = broker.describe_topic("t");
    ASSERT_TRUE(info.ok()) << info.error().message;
    for (const PartitionInfo& p : info->partition_info) EXPECT_GT(p.exclusive_owner, 0) << p.partition;
  }
  auto info = broker.describe_topic("t");
  ASSERT_TRUE(info.ok()) << info.error().message;
  for (const PartitionInfo& p : info->partition_info) EXPECT_EQ(p.exclusive_owner, 0) << p.partition;
}

TEST_F(ExclusiveProducerTest, ASecondWouldBeOwnerIsRefusedAndNamesTheOwner) {
  create(topic("t"));
  Producer owner = producer("t", exclusive_producer());
  auto second = Producer::open(instance, "t", exclusive_producer());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("is owned by another exclusive producer of this process"), std::string::npos)
      << second.error().message;
  ASSERT_TRUE(owner.try_publish("", "still mine").ok());
}

TEST_F(ExclusiveProducerTest, AnOwnerSharedProducersClaimedBeforeWaitsForThemAndTheyCommit) {
  create(topic("t"));
  Producer shared = producer("t");
  Claim before = shared.try_claim(6);  // claimed before the lease, committed after
  ASSERT_TRUE(before.ok());
  Producer owner = producer("t", exclusive_producer());
  ASSERT_EQ(owner.try_publish("", "after").offset, 1u);
  std::memcpy(before.value().data(), "before", 6);
  EXPECT_TRUE(before.commit().ok());
  Consumer c = consumer("t", from_earliest(true));
  const std::vector<std::pair<std::uint64_t, std::string>> want = {{0, "before"}, {1, "after"}};
  EXPECT_EQ(drain_values(c), want);
}

TEST_F(ExclusiveProducerTest, ALiveOwnersPendingClaimIsNeverRevokedPastTheTimeout) {
  TopicConfig cfg = topic("t");
  cfg.abandoned_claim_timeout = std::chrono::milliseconds(20);
  create(cfg);
  Producer owner = producer("t", exclusive_producer());
  Consumer c = consumer("t", from_earliest(true));
  Claim held = owner.try_claim(4);
  ASSERT_TRUE(held.ok());
  // Ten timeouts of looking: a shared producer's claim would be revoked.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (std::chrono::steady_clock::now() < until) {
    (void)c.wait(std::chrono::milliseconds(5));
    EXPECT_TRUE(drain_values(c).empty());
  }
  EXPECT_EQ(c.skipped(), 0u);
  std::memcpy(held.value().data(), "late", 4);
  ASSERT_TRUE(held.commit().ok());
  const std::vector<std::pair<std::uint64_t, std::string>> want = {{0, "late"}};
  EXPECT_EQ(drain_values(c), want);
}

TEST_F(ExclusiveProducerTest, ARevocationRunBeforeTheLeaseStopsWhereTheOwnersClaimsStart) {
  TopicConfig cfg = topic("t");
  cfg.abandoned_claim_timeout = std::chrono::milliseconds(20);
  create(cfg);
  Producer dead = producer("t");
  Claim stuck = dead.try_claim(4);  // a shared claim its producer never commits
  ASSERT_TRUE(stuck.ok());
  Producer owner = producer("t", exclusive_producer());
  Claim held = owner.try_claim(4);  // the owner's, pending while the run is revoked
  ASSERT_TRUE(held.ok());
  Consumer c = consumer("t", from_earliest(true));
  ASSERT_TRUE(eventually([&] {
    (void)c.wait(std::chrono::milliseconds(5));
    EXPECT_TRUE(drain_values(c).empty());
    return c.skipped() == 1;
  }));
  EXPECT_EQ(stuck.commit().status, PublishStatus::claim_revoked);
  std::memcpy(held.value().data(), "mine", 4);
  ASSERT_TRUE(held.commit().ok());
  const std::vector<std::pair<std::uint64_t, std::string>> want = {{1, "mine"}};
  EXPECT_EQ(drain_values(c), want);
  EXPECT_EQ(c.skipped(), 1u);
}

// The owner laps a small ring many times, one record per call, with frames
// of many sizes (wraps, padding, the locked path at each lap), while a
// blocking gating reader checks every record (dense offsets, order, bytes)
// and a non-gating reader checks what it is not lapped out of. Under
// ThreadSanitizer too (label unit), with the gating reader only.
TEST_F(ExclusiveProducerTest, OneRecordPerCallLapsTheRingWithBlockingAndNonGatingReaders) {
  create(topic("t", 1, 64 * 1024, 2048));
  constexpr std::uint64_t kRecords = scaled(100'000);
#if defined(__SANITIZE_THREAD__)
  // A non-gating reader's copy races with the producer by design (copy, then
  // check the copy was not overwritten): ThreadSanitizer runs the gating one.
  constexpr bool kNonGating = false;
#else
  constexpr bool kNonGating = true;
#endif
  Consumer gating = [&] {
    ConsumerOptions o = from_earliest(true);
    o.idle = IdleStrategy::block;
    return consumer("t", o);
  }();
  Consumer loose = consumer("t", from_earliest(false));
  std::atomic<bool> done{false};
  std::string gating_error;
  std::string loose_error;
  std::atomic<bool> checker_done{false};  // the producer stops waiting for a reader that stopped
  std::thread checker([&] {
    struct Done {
      std::atomic<bool>& flag;
      ~Done() { flag = true; }
    } done_on_exit{checker_done};
    Checker check(1, 1);
    while (check.records() < kRecords && check.ok()) {
      if (gating.wait(std::chrono::seconds(10)) != WaitStatus::ready) {
        gating_error = "the gating reader waited 10 s for a record";
        return;
      }
      const PollResult r = gating.poll([&](const Record& rec) { check.on_record(rec); }, 256);
      if (r.status != PollStatus::ok) gating_error = to_string(r.status);
    }
    if (!check.ok()) gating_error = check.error();
  });
  std::thread skimmer([&] {
    std::uint64_t next_seq = 0;
    while (kNonGating && !done.load() && loose_error.empty()) {
      const PollResult r = loose.poll([&](const Record& rec) {
        // Lapped, it resumes further on: check the bytes, and order only.
        Stamp s;
        std::memcpy(&s, rec.value.data(), sizeof s);
        if (s.seq < next_seq) loose_error = "the non-gating reader went backwards at offset " + std::to_string(rec.offset);
        next_seq = s.seq + 1;
        Checker one(1, 1);
        one.allow_offset_gaps();
        one.on_record(rec);  // its bytes (the sequence check is ours, above)
        if (!one.ok() && one.error().find("torn") != std::string::npos) loose_error = one.error();
      }, 256);
      if (r.status != PollStatus::ok && r.status != PollStatus::lapped) loose_error = to_string(r.status);
    }
  });
  Producer owner = producer("t", exclusive_producer());
  for (std::uint64_t seq = 0; seq < kRecords; ++seq) {
    const std::string v = stamped(0, seq, 16 + (seq * 37) % 1500);
    PublishResult r = owner.try_publish("", v);
    while (r.status == PublishStatus::back_pressured && !checker_done.load()) {
      std::this_thread::yield();
      r = owner.try_publish("", v);
    }
    if (checker_done.load() && !r.ok()) break;  // its error is reported below
    ASSERT_TRUE(r.ok()) << to_string(r.status);
    ASSERT_EQ(r.offset, seq);
  }
  checker.join();
  done = true;
  skimmer.join();
  EXPECT_EQ(gating_error, "");
  EXPECT_EQ(loose_error, "");
}

}  // namespace
}  // namespace ringbus::test
