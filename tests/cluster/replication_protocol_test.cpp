// The replication protocol's frames (cluster/README.md, "The replication
// protocol"): each type round-trips; a frame arrives in pieces; and one test
// per refusal, each naming what is wrong. The peers' proofs: a proof checks
// only with the same secret, role, nonces, cluster and node.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "byte_order.h"
#include "peer_auth.h"
#include "record_batch.h"
#include "replication_protocol.h"

namespace ringbus::cluster::wire {
namespace {

std::vector<std::byte> batch(std::uint64_t base, int records, std::int32_t epoch = 1) {
  log::v2::BatchBuilder b;
  b.reset(base, epoch);
  for (int i = 0; i < records; ++i)
    b.append(base + static_cast<std::uint64_t>(i), 1'700'000'000'000 + i, "k", "v" + std::to_string(i));
  const auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

std::vector<std::byte> frame(const Message& m) {
  std::vector<std::byte> out;
  encode(m, out);
  return out;
}

Decoded decode_ok(const std::vector<std::byte>& bytes) {
  Decoded d = decode(bytes);
  EXPECT_EQ(d.state, Decoded::State::ok) << d.error;
  EXPECT_EQ(d.size, bytes.size());
  return d;
}

std::string refusal(const std::vector<std::byte>& bytes) {
  const Decoded d = decode(bytes);
  EXPECT_EQ(d.state, Decoded::State::bad);
  return d.error;
}

TEST(ReplicationProtocol, EveryTypeRoundTrips) {
  Nonce n{};
  n[0] = std::byte{1};
  n[15] = std::byte{2};
  Proof p{};
  p[31] = std::byte{9};
  const std::vector<std::byte> group_a(40, std::byte{1}), group_b(3, std::byte{2});  // opaque to the protocol
  auto batches = batch(10, 3);
  const auto more = batch(13, 2);
  batches.insert(batches.end(), more.begin(), more.end());
  const std::vector<Message> all{
      Hello{kVersion, "prod", "node-a", n},
      Welcome{kVersion, "node-b", n, p},
      ProofMsg{p},
      Follow{7, "trucks", 0xabcdef0123456789, 3},
      Following{7, 5, 2, 15, 12},
      EpochQuery{7, 4},
      EpochEnd{7, -1, 0},
      Fetch{7, 15},
      Batches{7, 12, 2, batches},
      Ack{7, 15, 13},
      ErrorMsg{7, ErrorCode::not_leader, "node-c leads partition 3 of 'trucks' now"},
      Groups{7, {std::span(group_a), std::span(group_b)}},
      Groups{7, {}},
  };
  for (const auto& m : all) {
    SCOPED_TRACE(to_string(type_of(m)));
    const auto bytes = frame(m);
    const Decoded d = decode_ok(bytes);
    ASSERT_EQ(d.message.index(), m.index());
    EXPECT_EQ(frame(d.message), bytes);
  }
  const auto h = std::get<Hello>(decode_ok(frame(all[0])).message);
  EXPECT_EQ(h.cluster, "prod");
  EXPECT_EQ(h.node, "node-a");
  EXPECT_EQ(h.nonce, n);
  const auto b = std::get<Batches>(decode_ok(frame(all[8])).message);
  EXPECT_EQ(b.high_watermark, 12u);
  EXPECT_EQ(b.batches.size(), batches.size());
  const auto e = std::get<ErrorMsg>(decode_ok(frame(all[10])).message);
  EXPECT_EQ(e.code, ErrorCode::not_leader);
  EXPECT_EQ(e.message, "node-c leads partition 3 of 'trucks' now");
  const auto groups_frame = frame(all[11]);  // the decoded files are views into it
  const auto g = std::get<Groups>(decode_ok(groups_frame).message);
  ASSERT_EQ(g.files.size(), 2u);
  EXPECT_TRUE(std::equal(g.files[0].begin(), g.files[0].end(), group_a.begin(), group_a.end()));
  EXPECT_TRUE(std::equal(g.files[1].begin(), g.files[1].end(), group_b.begin(), group_b.end()));
}

TEST(ReplicationProtocol, RefusesAGroupFileOverItsLimitAndACountThatLies) {
  const std::vector<std::byte> big(kMaxGroupFileSize + 1);
  EXPECT_NE(refusal(frame(Groups{1, {std::span(big)}})).find("over the limit of 16384"), std::string::npos);
  auto bytes = frame(Groups{1, {}});
  detail::store_be<std::uint32_t>(bytes.data() + kFrameHeaderSize + 4, 3);  // three files, none there
  EXPECT_NE(refusal(bytes).find("truncated in groups.file_size"), std::string::npos);
  detail::store_be<std::uint32_t>(bytes.data() + kFrameHeaderSize + 4, 0xffffffff);
  EXPECT_NE(refusal(bytes).find("cannot fit a frame"), std::string::npos);
}

TEST(ReplicationProtocol, AFrameInPiecesNeedsMoreUntilWhole) {
  const auto bytes = frame(Follow{1, "t", 9, 0});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const Decoded d = decode(std::span(bytes).first(n));
    ASSERT_EQ(d.state, Decoded::State::need_more) << n;
    EXPECT_GT(d.size, n);
  }
  decode_ok(bytes);
}

TEST(ReplicationProtocol, FramesFollowEachOther) {
  std::vector<std::byte> bytes;
  encode(Fetch{1, 5}, bytes);
  encode(Ack{1, 5, 5}, bytes);
  const Decoded first = decode(bytes);
  ASSERT_EQ(first.state, Decoded::State::ok);
  EXPECT_TRUE(std::holds_alternative<Fetch>(first.message));
  const Decoded second = decode(std::span(bytes).subspan(first.size));
  ASSERT_EQ(second.state, Decoded::State::ok);
  EXPECT_TRUE(std::holds_alternative<Ack>(second.message));
  EXPECT_EQ(first.size + second.size, bytes.size());
}

TEST(ReplicationProtocol, BatchesHeadMatchesTheEncoder) {
  const auto b = batch(40, 4);
  const auto whole = frame(Batches{3, 41, 7, b});
  const auto head = batches_head(3, 41, 7, static_cast<std::uint32_t>(b.size()));
  std::vector<std::byte> joined(head.begin(), head.end());
  joined.insert(joined.end(), b.begin(), b.end());
  EXPECT_EQ(joined, whole);
}

TEST(ReplicationProtocol, RefusesALengthOverTheLimitAtOnce) {
  std::vector<std::byte> bytes(kFrameHeaderSize);
  detail::store_be<std::uint32_t>(bytes.data(), kMaxFrameLength + 1);
  bytes[4] = std::byte{static_cast<unsigned char>(Type::batches)};
  EXPECT_NE(refusal(bytes).find("frame length"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesAnUnknownType) {
  auto bytes = frame(Fetch{1, 0});
  bytes[4] = std::byte{99};
  EXPECT_NE(refusal(bytes).find("frame type 99 is unknown"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesHttpOnTheReplicationPort) {
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(get.data()),
                               reinterpret_cast<const std::byte*>(get.data() + get.size()));
  EXPECT_FALSE(refusal(bytes).empty());
}

TEST(ReplicationProtocol, RefusesAHelloWithoutTheMagic) {
  auto bytes = frame(Hello{kVersion, "c", "n", {}});
  bytes[kFrameHeaderSize] = std::byte{'X'};
  EXPECT_NE(refusal(bytes).find("magic"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesAFieldCutShort) {
  auto bytes = frame(Ack{1, 2, 1});
  bytes.pop_back();
  detail::store_be<std::uint32_t>(bytes.data(), static_cast<std::uint32_t>(bytes.size() - 4));
  EXPECT_NE(refusal(bytes).find("truncated in ack.durable"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesBytesLeftOver) {
  auto bytes = frame(Fetch{1, 2});
  bytes.push_back(std::byte{0});
  detail::store_be<std::uint32_t>(bytes.data(), static_cast<std::uint32_t>(bytes.size() - 4));
  EXPECT_NE(refusal(bytes).find("1 bytes left over"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesANameOverItsLimit) {
  std::vector<std::byte> bytes;
  encode(Follow{1, "t", 0, 0}, bytes);
  // Rewrite the topic's size field (after stream) to 300.
  detail::store_be<std::uint16_t>(bytes.data() + kFrameHeaderSize + 4, 300);
  EXPECT_NE(refusal(bytes).find("over the limit of 255"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesStreamZeroInAFollow) {
  EXPECT_NE(refusal(frame(Follow{0, "t", 0, 0})).find("stream 0"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesAnAckDurablePastWritten) {
  EXPECT_NE(refusal(frame(Ack{1, 5, 6})).find("durable is past"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesAnUnknownErrorCode) {
  auto bytes = frame(ErrorMsg{1, ErrorCode::auth, "x"});
  detail::store_be<std::uint16_t>(bytes.data() + kFrameHeaderSize + 4, 77);
  EXPECT_NE(refusal(bytes).find("error.code 77"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesABatchCutShort) {
  auto b = batch(0, 3);
  b.pop_back();  // (resize(size() - 1): GCC 12 at -O1 under ASan warns of a memset of 2^64 - 2 bytes)
  EXPECT_NE(refusal(frame(Batches{1, 0, 0, b})).find("does not fit the frame"), std::string::npos);
  b.resize(20);
  EXPECT_NE(refusal(frame(Batches{1, 0, 0, b})).find("cut short in its header"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesAnOffsetGapBetweenBatches) {
  auto b = batch(0, 3);
  const auto gap = batch(4, 1);  // 3 is missing
  b.insert(b.end(), gap.begin(), gap.end());
  EXPECT_NE(refusal(frame(Batches{1, 0, 0, b})).find("starts at offset 4, not 3"), std::string::npos);
}

TEST(ReplicationProtocol, RefusesABatchOfAnotherMagic) {
  auto b = batch(0, 1);
  b[log::v2::kMagicAt] = std::byte{1};
  EXPECT_NE(refusal(frame(Batches{1, 0, 0, b})).find("magic 1, not 2"), std::string::npos);
}

TEST(PeerAuth, AProofChecksOnlyWithEverythingTheSame) {
  const Nonce a = random_nonce();
  const Nonce b = random_nonce();
  EXPECT_NE(a, b);
  const Proof p = make_proof("s3cret", PeerRole::leader, a, b, "prod", "node-a");
  EXPECT_TRUE(proof_matches(p, make_proof("s3cret", PeerRole::leader, a, b, "prod", "node-a")));
  EXPECT_FALSE(proof_matches(p, make_proof("s3cret!", PeerRole::leader, a, b, "prod", "node-a")));
  EXPECT_FALSE(proof_matches(p, make_proof("s3cret", PeerRole::mirror, a, b, "prod", "node-a")));
  EXPECT_FALSE(proof_matches(p, make_proof("s3cret", PeerRole::leader, b, a, "prod", "node-a")));
  EXPECT_FALSE(proof_matches(p, make_proof("s3cret", PeerRole::leader, a, b, "prodx", "node-a")));
  // Names are length-prefixed: moving a byte between them changes the proof.
  EXPECT_FALSE(proof_matches(p, make_proof("s3cret", PeerRole::leader, a, b, "prodn", "ode-a")));
}

}  // namespace
}  // namespace ringbus::cluster::wire
