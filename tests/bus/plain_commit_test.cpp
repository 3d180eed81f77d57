// Shared producers' plain commits (bus/README.md, "Shared producers' plain
// commits"): a publisher slot's floor keeps readers from revoking a live
// publisher's claim; a dead publisher's claim is revoked and its slot taken
// again; with every slot taken, claims commit by CAS as before.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "partition_format.h"
#include "partition_ring.h"
#include "process_support.h"
#include "test_support.h"
#include "topic_files.h"

namespace ringbus::test {
namespace {

using detail::ClaimSpan;
using detail::PartitionRing;
using detail::ProducerCache;

struct PlainCommitTest : BrokerFixture {
  void SetUp() override {
    TopicConfig cfg = topic("t");
    cfg.abandoned_claim_timeout = std::chrono::milliseconds(20);
    create(cfg);
    auto m = detail::TopicMap::open(instance, "t");
    ASSERT_TRUE(m) << m.error().message;
    map = std::move(m.value());
  }
  PartitionRing& ring() { return map->ring(0); }
  detail::PartitionHeader& header() { return ring().header(); }
  std::shared_ptr<detail::TopicMap> map;
};

// What Producer::try_publish does between its claim and its commit: one
// record frame holding `value`.
void write_record(PartitionRing& ring, const ClaimSpan& s, const std::string& value) {
  auto* h = reinterpret_cast<detail::RecordHeader*>(ring.data_at(s.frame_position));
  h->frame_length = static_cast<std::uint32_t>(sizeof(detail::RecordHeader) + value.size());
  h->type = detail::FrameType::record;
  h->claim_records = 1;
  h->key_length = 0;
  h->headers_length = 0;
  h->offset = s.offset;
  h->timestamp_ns = 0;
  std::memcpy(h + 1, value.data(), value.size());
}

std::uint64_t frame_bytes(const std::string& value) {
  return detail::align_frame(sizeof(detail::RecordHeader) + value.size());
}

TEST_F(PlainCommitTest, ALivePublishersPendingClaimIsNeverRevokedAndItsPlainCommitIsDelivered) {
  Consumer c = consumer("t", from_earliest(true));
  ProducerCache cache;
  ASSERT_TRUE(ring().publisher_slot(cache));
  const ClaimSpan held = ring().claim(cache, frame_bytes("a"), 1, 0, false, /*plain=*/true);
  ASSERT_EQ(held.status, PublishStatus::ok);
  EXPECT_TRUE(held.plain);
  EXPECT_EQ(header().publishers[cache.publisher_slot].floor.load(), held.offset);
  Producer other = producer("t");
  ASSERT_TRUE(other.try_publish("", "b").ok());
  // Ten timeouts later the claim is still pending, not revoked.
  for (int i = 0; i < 10; ++i) {
    (void)c.wait(std::chrono::milliseconds(20));
    EXPECT_TRUE(drain_values(c).empty());
  }
  EXPECT_EQ(c.skipped(), 0u);
  write_record(ring(), held, "a");
  ASSERT_EQ(ring().commit_plain(cache, held), PublishStatus::ok);
  EXPECT_EQ(header().publishers[cache.publisher_slot].floor.load(), detail::kNoFloor);
  const std::vector<std::pair<std::uint64_t, std::string>> want = {{0, "a"}, {1, "b"}};
  EXPECT_EQ(read_n(c, 2), want);
  ring().release_publisher_slot(cache);
}

TEST_F(PlainCommitTest, APublisherKilledWithAPlainClaimPendingIsRevokedAndItsSlotTakenAgain) {
  Consumer c = consumer("t", from_earliest(true));
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = spawn([&]() -> int {
    ProducerCache cache;
    if (!ring().publisher_slot(cache) || cache.publisher_slot != 0) return 1;
    const ClaimSpan held = ring().claim(cache, frame_bytes("a"), 1, 0, false, true);
    if (held.status != PublishStatus::ok || !held.plain) return 2;
    if (::write(ready[1], "r", 1) != 1) return 3;
    for (;;) ::pause();  // killed here, its claim pending
  });
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  Producer live = producer("t");
  ASSERT_TRUE(live.try_publish("", "b").ok());  // offset 1, from slot 1 (slot 0 is the child's)
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  const std::vector<std::pair<std::uint64_t, std::string>> want = {{1, "b"}};
  EXPECT_EQ(read_n(c, 1), want);
  EXPECT_EQ(c.skipped(), 1u);
  // The dead publisher's slot is the first one free again.
  ProducerCache cache;
  ASSERT_TRUE(ring().publisher_slot(cache));
  EXPECT_EQ(cache.publisher_slot, 0);
  ring().release_publisher_slot(cache);
}

TEST_F(PlainCommitTest, WithEverySlotTakenClaimsCommitByCasAndAFreedSlotIsTakenAgain) {
  std::vector<ProducerCache> caches(detail::kPublisherSlots);
  for (ProducerCache& c : caches) ASSERT_TRUE(ring().publisher_slot(c));
  Producer p = producer("t");
  const PublishResult r = p.try_publish("", "x");  // no slot left: a locked commit
  ASSERT_TRUE(r.ok()) << to_string(r.status);
  ProducerCache late;
  EXPECT_FALSE(ring().publisher_slot(late));
  EXPECT_EQ(late.publisher_slot, detail::kNoSlotFree);
  const ClaimSpan s = ring().claim(late, frame_bytes("y"), 1, 0, false, false);
  EXPECT_FALSE(s.plain);
  write_record(ring(), s, "y");
  EXPECT_EQ(ring().commit(s), PublishStatus::ok);
  ring().release_publisher_slot(caches[5]);
  ProducerCache next;
  ASSERT_TRUE(ring().publisher_slot(next));
  EXPECT_EQ(next.publisher_slot, 5);
  for (ProducerCache& c : caches) ring().release_publisher_slot(c);
  ring().release_publisher_slot(next);
  Consumer c = consumer("t", from_earliest());
  const std::vector<std::pair<std::uint64_t, std::string>> want = {{0, "x"}, {1, "y"}};
  EXPECT_EQ(drain_values(c), want);
}

TEST_F(PlainCommitTest, AProducerGivesItsSlotBackWhenClosedAndAForkedChildTakesItsOwn) {
  {
    Producer p = producer("t");
    ASSERT_TRUE(p.try_publish("", "a").ok());
    const std::int32_t parent = header().publishers[0].owner.load();
    EXPECT_NE(parent, 0);
    const pid_t child = spawn([&]() -> int {
      // The child's copy of the producer must not use (or free) the
      // parent's slot: it takes one of its own.
      if (!p.try_publish("", "b").ok()) return 1;
      if (header().publishers[0].owner.load() != parent) return 2;
      const std::int32_t mine = header().publishers[1].owner.load();
      return mine != 0 && mine != parent ? 0 : 3;
    });
    EXPECT_EQ(wait_all({child}, std::chrono::seconds(30)), "");
    EXPECT_EQ(header().publishers[0].owner.load(), parent);
    ASSERT_TRUE(p.try_publish("", "c").ok());
  }
  EXPECT_EQ(header().publishers[0].owner.load(), 0);
  Consumer c = consumer("t", from_earliest());
  const std::vector<std::pair<std::uint64_t, std::string>> want = {{0, "a"}, {1, "b"}, {2, "c"}};
  EXPECT_EQ(drain_values(c), want);
}

}  // namespace
}  // namespace ringbus::test
