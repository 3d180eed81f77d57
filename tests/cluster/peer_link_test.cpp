// Links between nodes (cluster/src/peer_link.*) over loopback: the
// handshake names both sides, and each way it can fail is refused with the
// fault named on both ends: a wrong secret (the mirror checks the leader's
// proof first), a proof made without the secret, another cluster,
// another version, garbage on the replication port, a peer that says
// nothing. Frames larger than a read arrive whole, and so do frames sent
// from a file.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>
#include <thread>

#include "peer_auth.h"
#include "peer_link.h"
#include "record_batch.h"

namespace ringbus::cluster {
namespace {

using namespace std::chrono_literals;

const PeerIdentity kLeader{"prod", "node-a", "s3cret"};
const PeerIdentity kMirror{"prod", "node-b", "s3cret"};

class PeerLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = listen_on("127.0.0.1:0");
    ASSERT_TRUE(l) << l.error().message;
    listener_ = l.value();
    address_ = "127.0.0.1:" + std::to_string(listener_.port);
  }
  void TearDown() override { ::close(listener_.fd); }

  // Waits for a connection and accepts it.
  std::unique_ptr<PeerLink> accept_one() {
    pollfd p{listener_.fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return nullptr;
    auto link = accept_link(listener_.fd);
    return link ? std::move(link.value()) : nullptr;
  }
  // The leader's side on a thread: the handshake's result, and the link.
  std::future<std::pair<Result<std::string>, std::unique_ptr<PeerLink>>> lead(PeerIdentity me,
                                                                              std::chrono::milliseconds t = 5000ms) {
    return std::async(std::launch::async, [this, me, t] {
      auto link = accept_one();
      if (!link) return std::make_pair(Result<std::string>(Error{Errc::io_error, "no connection"}), std::move(link));
      auto r = leader_handshake(*link, me, t);
      return std::make_pair(std::move(r), std::move(link));
    });
  }
  // Both ends of a link whose handshake went through: {mirror, leader}.
  std::pair<std::unique_ptr<PeerLink>, std::unique_ptr<PeerLink>> linked() {
    auto leader = lead(kLeader);
    auto link = dial(address_, 2000ms).value();
    EXPECT_TRUE(mirror_handshake(*link, kMirror, 5000ms));
    auto [name, leader_link] = leader.get();
    EXPECT_TRUE(name);
    return {std::move(link), std::move(leader_link)};
  }
  Listener listener_;
  std::string address_;
};

TEST_F(PeerLinkTest, TheHandshakeNamesBothSidesAndFramesFlow) {
  auto leader = lead(kLeader);
  auto link = dial(address_, 2000ms);
  ASSERT_TRUE(link) << link.error().message;
  auto name = mirror_handshake(*link.value(), kMirror, 5000ms);
  ASSERT_TRUE(name) << name.error().message;
  EXPECT_EQ(name.value(), "node-a");
  auto [mirror_name, leader_link] = leader.get();
  ASSERT_TRUE(mirror_name) << mirror_name.error().message;
  EXPECT_EQ(mirror_name.value(), "node-b");
  EXPECT_NE(leader_link->peer().find("node 'node-b' (127.0.0.1:"), std::string::npos) << leader_link->peer();

  link.value()->send(wire::Follow{1, "trucks", 42, 0});
  ASSERT_TRUE(link.value()->flush(2000ms));
  auto f = leader_link->receive(2000ms);
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_TRUE(std::holds_alternative<wire::Follow>(f.value()));
  EXPECT_EQ(std::get<wire::Follow>(f.value()).topic, "trucks");
}

TEST_F(PeerLinkTest, AProofMadeWithoutTheSecretIsRefusedByTheLeader) {
  auto leader = lead(kLeader);
  auto link = dial(address_, 2000ms).value();
  // A peer that does not check the leader's proof and cannot make its own.
  link->send(wire::Hello{wire::kVersion, "prod", "node-b", random_nonce()});
  ASSERT_TRUE(link->flush(2000ms));
  auto welcome = link->receive(2000ms);
  ASSERT_TRUE(welcome) << welcome.error().message;
  ASSERT_TRUE(std::holds_alternative<wire::Welcome>(welcome.value()));
  link->send(wire::ProofMsg{std::get<wire::Welcome>(welcome.value()).proof});  // the leader's own, replayed
  ASSERT_TRUE(link->flush(2000ms));
  auto [r, leader_link] = leader.get();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("node 'node-b''s proof does not match cluster 'prod''s secret"), std::string::npos)
      << r.error().message;
  auto answer = link->receive(2000ms);
  ASSERT_TRUE(answer) << answer.error().message;
  ASSERT_TRUE(std::holds_alternative<wire::ErrorMsg>(answer.value()));
  EXPECT_EQ(std::get<wire::ErrorMsg>(answer.value()).code, wire::ErrorCode::auth);
}

TEST_F(PeerLinkTest, ALeaderWithTheWrongSecretIsRefusedBeforeTheMirrorProvesAnything) {
  PeerIdentity wrong = kLeader;
  wrong.secret = "guess";
  auto leader = lead(wrong);
  auto link = dial(address_, 2000ms).value();
  auto r = mirror_handshake(*link, kMirror, 5000ms);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("the leader's proof does not match"), std::string::npos) << r.error().message;
  auto [lr, leader_link] = leader.get();
  ASSERT_FALSE(lr);
  EXPECT_NE(lr.error().message.find("the mirror refused it (auth)"), std::string::npos) << lr.error().message;
}

TEST_F(PeerLinkTest, ANodeOfAnotherClusterIsRefused) {
  auto leader = lead(kLeader);
  auto link = dial(address_, 2000ms).value();
  PeerIdentity other = kMirror;
  other.cluster = "staging";
  auto r = mirror_handshake(*link, other, 5000ms);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("the leader refused it (auth)"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("belongs to cluster 'staging', this node to 'prod'"), std::string::npos);
  auto [lr, leader_link] = leader.get();
  ASSERT_FALSE(lr);
}

TEST_F(PeerLinkTest, AnotherVersionIsRefusedNamingBoth) {
  auto leader = lead(kLeader);
  auto link = dial(address_, 2000ms).value();
  link->send(wire::Hello{7, "prod", "node-b", {}});
  ASSERT_TRUE(link->flush(2000ms));
  auto answer = link->receive(2000ms);
  ASSERT_TRUE(answer) << answer.error().message;
  const auto& e = std::get<wire::ErrorMsg>(answer.value());
  EXPECT_EQ(e.code, wire::ErrorCode::version);
  EXPECT_EQ(e.message, "the mirror speaks version 7, this leader version " + std::to_string(wire::kVersion));
  EXPECT_FALSE(leader.get().first);
}

TEST_F(PeerLinkTest, GarbageOnTheReplicationPortIsRefused) {
  auto leader = lead(kLeader);
  auto link = dial(address_, 2000ms).value();
  const std::string http = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(link->fd(), http.data(), http.size(), MSG_NOSIGNAL), static_cast<ssize_t>(http.size()));
  auto [r, leader_link] = leader.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::corrupt);
  EXPECT_NE(r.error().message.find("sent a frame we cannot take"), std::string::npos) << r.error().message;
  auto answer = link->receive(2000ms);
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_EQ(std::get<wire::ErrorMsg>(answer.value()).code, wire::ErrorCode::protocol);
}

TEST_F(PeerLinkTest, APeerThatSaysNothingMeetsTheDeadline) {
  auto leader = lead(kLeader, 200ms);
  auto link = dial(address_, 2000ms).value();
  auto [r, leader_link] = leader.get();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no answer within"), std::string::npos) << r.error().message;
}

TEST_F(PeerLinkTest, AFrameLargerThanAReadArrivesWhole) {
  auto [link, leader_link] = linked();
  ASSERT_TRUE(link && leader_link);
  std::vector<std::byte> batches;
  log::v2::BatchBuilder b;
  std::uint64_t offset = 0;
  const std::string value(1000, 'x');
  for (int i = 0; i < 3; ++i) {
    b.reset(offset, 1);
    for (int r = 0; r < 1000; ++r) b.append(offset++, 1'700'000'000'000, "k", value);
    const auto bytes = b.finish();
    batches.insert(batches.end(), bytes.begin(), bytes.end());
  }
  // The sender's side runs on a thread: the socket holds less than the frame.
  auto sent = std::async(std::launch::async, [&] {
    leader_link->send_batches(1, 10, 0, batches);
    return leader_link->flush(10000ms);
  });
  auto m = link->receive(10000ms);
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_TRUE(sent.get());
  const auto& got = std::get<wire::Batches>(m.value());
  ASSERT_EQ(got.batches.size(), batches.size());
  EXPECT_TRUE(std::equal(got.batches.begin(), got.batches.end(), batches.begin()));
}

// The leader sends batches from its segment files (sendfile): a frame mixes
// ranges of a file with bytes of its own, ranges that follow each other go
// as one, a dropped frame sends nothing, and a file that ends before its
// range does fails the link, naming where.
TEST_F(PeerLinkTest, BatchesSentFromAFileArriveAsTheyLieThere) {
  auto [link, leader_link] = linked();
  ASSERT_TRUE(link && leader_link);
  std::vector<std::byte> batches;
  std::vector<std::size_t> ends;
  log::v2::BatchBuilder b;
  for (std::uint64_t offset = 0; offset < 30;) {
    b.reset(offset, 1);
    for (int r = 0; r < 10; ++r) b.append(offset++, 1'700'000'000'000, "k", std::string(5000, 'a' + r));
    const auto bytes = b.finish();
    batches.insert(batches.end(), bytes.begin(), bytes.end());
    ends.push_back(batches.size());
  }
  // A file that holds something else first, then the first two batches.
  const std::size_t skip = 100;
  const int fd = ::memfd_create("peer-link-test", 0);
  ASSERT_GE(fd, 0);
  const std::vector<std::byte> before(skip, std::byte{0x55});
  ASSERT_EQ(::write(fd, before.data(), skip), static_cast<ssize_t>(skip));
  ASSERT_EQ(::write(fd, batches.data(), ends[1]), static_cast<ssize_t>(ends[1]));
  const auto file = std::make_shared<const SharedFile>(fd);

  leader_link->begin_batches();
  leader_link->add_file_batch(file, skip, ends[0]);
  leader_link->add_file_batch(file, skip + ends[0], ends[1] - ends[0]);
  leader_link->add_batch(std::span(batches).subspan(ends[1]));
  EXPECT_EQ(leader_link->batches_added(), batches.size());
  leader_link->end_batches(1, 30, 0);
  const std::size_t frame = leader_link->queued();
  EXPECT_EQ(frame, wire::kBatchesHeadSize + batches.size());
  leader_link->begin_batches();
  leader_link->add_file_batch(file, skip, ends[0]);
  leader_link->drop_batches();
  EXPECT_EQ(leader_link->queued(), frame);
  leader_link->send(wire::Fetch{1, 30});
  auto sent = std::async(std::launch::async, [&] { return leader_link->flush(10000ms); });

  auto m = link->receive(10000ms);
  ASSERT_TRUE(m) << m.error().message;
  const auto& got = std::get<wire::Batches>(m.value());
  EXPECT_EQ(got.high_watermark, 30U);
  ASSERT_EQ(got.batches.size(), batches.size());
  EXPECT_TRUE(std::equal(got.batches.begin(), got.batches.end(), batches.begin()));
  auto after = link->receive(10000ms);
  ASSERT_TRUE(after) << after.error().message;
  ASSERT_TRUE(std::holds_alternative<wire::Fetch>(after.value()));
  ASSERT_TRUE(sent.get());
  EXPECT_EQ(leader_link->queued(), 0U);

  // A range past the file's end (the log cut under it).
  leader_link->begin_batches();
  leader_link->add_file_batch(file, skip + ends[0], ends[2] - ends[0]);
  leader_link->end_batches(1, 30, 0);
  auto cut = leader_link->flush(10000ms);
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().message.find("the log file to send from ended at byte " + std::to_string(skip + ends[1])),
            std::string::npos)
      << cut.error().message;
}

TEST(PeerLink, DialingNothingNamesTheAddress) {
  auto r = dial("127.0.0.1:1", 1000ms);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cannot connect to 127.0.0.1:1"), std::string::npos) << r.error().message;
  EXPECT_FALSE(dial("no-port", 1000ms));
}

}  // namespace
}  // namespace ringbus::cluster
