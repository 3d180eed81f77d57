// What a leader decides about its replicas, without etcd: the topic's
// leadership's JSON (each refusal named), and ReplicaTracker's high watermark and
// in-sync decisions (lowest durable over the set, never back; lag by time;
// a shrink lets the high watermark move; a mirror rejoins at it).
#include <gtest/gtest.h>

#include "topic_leadership.h"
#include "replica_tracker.h"

namespace ringbus::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = ReplicaTracker::Clock;

TEST(LeadershipJson, RoundTrips) {
  const Leadership s{"node-a", 7, {"node-a", "node-c"}};
  auto back = decode_leadership(encode_leadership(s), "k");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back.value(), s);
}

TEST(LeadershipJson, RefusesWhatIsNotAState) {
  struct Case {
    const char* json;
    const char* says;
  };
  const Case cases[] = {
      {"{", "not JSON"},
      {"[]", "not a JSON object"},
      {R"({"epoch":1,"isr":[]})", "'leader' is missing"},
      {R"({"leader":"a","isr":["a"]})", "'epoch' is missing"},
      {R"({"leader":"a","epoch":-1,"isr":["a"]})", "outside 0..2^31-1"},
      {R"({"leader":"a","epoch":4294967296,"isr":["a"]})", "outside 0..2^31-1"},
      {R"({"leader":"a","epoch":1})", "'isr' is missing"},
      {R"({"leader":"a","epoch":1,"isr":[1]})", "other than a node name"},
      {R"({"leader":"a","epoch":1,"isr":["a","a"]})", "names 'a' twice"},
      {R"({"leader":"a","epoch":1,"isr":["a",""]})", "a node of 0 bytes"},
      {R"({"leader":"b","epoch":1,"isr":["a"]})", "the leader 'b' is not in 'isr'"},
  };
  for (const auto& c : cases) {
    auto r = decode_leadership(c.json, "/ringbus/x/partitions/t/0");
    ASSERT_FALSE(r) << c.json;
    EXPECT_EQ(r.error().code, Errc::corrupt);
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("/ringbus/x/partitions/t/0"), std::string::npos);
  }
}

struct TrackerTest : ::testing::Test {
  Clock::time_point t0 = Clock::now();
  ReplicaTracker tracker{"a", {"a", "b", "c"}, 1000ms, t0};
};

TEST_F(TrackerTest, TheHighWatermarkIsTheLowestDurableOffsetOverTheSet) {
  tracker.leader_progress(100, 90, 0, t0);
  EXPECT_EQ(tracker.high_watermark(), 0u);  // b and c have said nothing
  tracker.acknowledged("b", 100, 80, t0);
  tracker.acknowledged("c", 70, 60, t0);
  EXPECT_EQ(tracker.high_watermark(), 60u);
  tracker.acknowledged("c", 100, 95, t0);
  EXPECT_EQ(tracker.high_watermark(), 80u);
  tracker.acknowledged("b", 100, 100, t0);
  EXPECT_EQ(tracker.high_watermark(), 90u);  // the leader's own durable offset
}

TEST_F(TrackerTest, TheHighWatermarkNeverMovesBack) {
  tracker.leader_progress(100, 100, 0, t0);
  tracker.acknowledged("b", 100, 100, t0);
  tracker.acknowledged("c", 100, 100, t0);
  EXPECT_EQ(tracker.high_watermark(), 100u);
  tracker.acknowledged("b", 50, 50, t0);   // an old ack, late
  tracker.set_isr({"a", "b", "c", "d"});   // d has said nothing
  EXPECT_EQ(tracker.high_watermark(), 100u);
}

TEST_F(TrackerTest, AMirrorLagsOnlyAfterMaxLagWithoutBeingCaughtUp) {
  tracker.leader_progress(10, 10, 0, t0);
  tracker.acknowledged("b", 10, 10, t0);
  tracker.acknowledged("c", 5, 5, t0);
  EXPECT_TRUE(tracker.lagging(t0 + 900ms).empty());
  // b stays caught up while nothing new is written; c does not.
  tracker.leader_progress(10, 10, 0, t0 + 900ms);
  EXPECT_EQ(tracker.lagging(t0 + 1100ms), std::vector<std::string>{"c"});
  tracker.acknowledged("c", 10, 10, t0 + 1200ms);
  EXPECT_TRUE(tracker.lagging(t0 + 1300ms).empty());
}

// Under a steady stream a mirror's acknowledgements always trail the
// leader's end a little; it stays in sync. One that stops does not.
TEST_F(TrackerTest, AMirrorTrailingASteadyStreamStaysCaughtUp) {
  std::uint64_t end = 0;
  for (int ms = 0; ms <= 3000; ms += 10) {
    const auto now = t0 + std::chrono::milliseconds(ms);
    const std::uint64_t before = end;
    end += 100;
    tracker.leader_progress(end, end, 0, now);
    tracker.acknowledged("b", before, before, now);  // what the leader had 10 ms ago
    if (ms < 500) tracker.acknowledged("c", before, before, now);  // c stops at 0.5 s
  }
  EXPECT_EQ(tracker.lagging(t0 + 3000ms), std::vector<std::string>{"c"});
}

TEST_F(TrackerTest, AShrinkLetsTheHighWatermarkMoveAndTheMirrorRejoinsAtIt) {
  tracker.leader_progress(100, 100, 0, t0);
  tracker.acknowledged("b", 100, 100, t0);
  tracker.acknowledged("c", 20, 20, t0);
  EXPECT_EQ(tracker.high_watermark(), 20u);
  tracker.set_isr({"a", "b"});  // after the swap in etcd
  EXPECT_EQ(tracker.high_watermark(), 100u);
  EXPECT_TRUE(tracker.caught_up().empty());
  tracker.acknowledged("c", 100, 99, t0);
  EXPECT_TRUE(tracker.caught_up().empty());
  tracker.acknowledged("c", 100, 100, t0);
  EXPECT_EQ(tracker.caught_up(), std::vector<std::string>{"c"});
}

// The flusher's running byte count at each end the leader reported gives
// each mirror's lag in bytes: exact at those ends, estimated below them.
TEST_F(TrackerTest, AMirrorsLagInBytesIsReadOffTheLeadersByteCount) {
  tracker.leader_progress(10, 10, 5000, t0);  // the count began before: bytes since then only matter
  tracker.leader_progress(20, 20, 6000, t0);  // records of 100 bytes
  tracker.leader_progress(30, 30, 8000, t0);  // ... then of 200
  tracker.acknowledged("b", 30, 30, t0);
  tracker.acknowledged("c", 20, 20, t0);
  const auto lag_of = [&](const std::string& node) {
    for (const auto& p : tracker.progress())
      if (p.node == node) return p.lag_bytes;
    return ~std::uint64_t{0};
  };
  EXPECT_EQ(lag_of("b"), 0u);
  EXPECT_EQ(lag_of("c"), 2000u);
  tracker.acknowledged("c", 25, 25, t0);  // between ends: counted from the end at or below it
  EXPECT_EQ(lag_of("c"), 2000u);
  // d was behind before the first end reported: 3000 bytes over 20
  // records since, 150 a record, for the 10 records below.
  tracker.acknowledged("d", 0, 0, t0);
  EXPECT_EQ(lag_of("d"), 3000u + 1500u);
  // A count begun again (a new ring) starts the spots over.
  tracker.leader_progress(40, 40, 100, t0);
  EXPECT_EQ(lag_of("b"), 0u);  // nothing known below the one spot
  EXPECT_EQ(lag_of("c"), 0u);
}

TEST_F(TrackerTest, TheByteSpotsStayFewWhileAMirrorIsFarBehind) {
  tracker.acknowledged("b", 0, 0, t0);
  tracker.acknowledged("c", 0, 0, t0);
  for (std::uint64_t end = 1; end <= 100000; ++end) tracker.leader_progress(end, end, end * 10, t0);
  for (const auto& p : tracker.progress()) {
    EXPECT_EQ(p.lag_bytes, 1000000u) << p.node;
  }
  tracker.acknowledged("b", 100000, 100000, t0);
  tracker.acknowledged("c", 50001, 50001, t0);
  for (const auto& p : tracker.progress()) {
    if (p.node == "b") {
      EXPECT_EQ(p.lag_bytes, 0u);
    }
    // Thinned spots: to within the gap between two of them (32 offsets
    // after five thinnings), never less than the truth.
    if (p.node == "c") {
      EXPECT_GE(p.lag_bytes, 499990u);
      EXPECT_LE(p.lag_bytes, 499990u + 10 * 64);
    }
  }
}

}  // namespace
}  // namespace ringbus::cluster
