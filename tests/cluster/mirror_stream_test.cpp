// A leader's log streamed to a mirror over a loopback link
// (ReplicationServer -> MirrorFollower -> MirrorLog): the mirror's log ends
// batch by batch the same as the leader's, caught up and then live; a
// mirror whose log diverged truncates where the epochs say (the KIP-101 and
// KIP-279 cases of cluster/README.md) and no further; a leader's batch that
// fails its CRC is refused and nothing written is touched; a mirror whose
// disk is full says why and catches up when space returns, and so does one
// cut off from its leader, or whose leader restarts; an unknown topic is
// refused by name.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "../bus/test_support.h"
#include "log_reader.h"
#include "mirror_follower.h"
#include "mirror_log.h"
#include "record_batch.h"
#include "replication_server.h"
#include "segment_files.h"
#include "tcp_proxy.h"

namespace ringbus::cluster {
namespace {

using namespace std::chrono_literals;

const PeerIdentity kLeaderId{"prod", "node-a", "s3cret"};
const PeerIdentity kMirrorId{"prod", "node-b", "s3cret"};

// `records` records from `base`, in leader epoch `epoch`; values name the
// epoch, so batches of other epochs at the same offsets differ (and carry
// `pad` bytes more).
std::vector<std::byte> batch(std::uint64_t base, std::uint32_t records, std::int32_t epoch, std::size_t pad = 0) {
  log::v2::BatchBuilder b;
  b.reset(base, epoch);
  for (std::uint32_t i = 0; i < records; ++i)
    b.append(base + i, 1'700'000'000'000 + static_cast<std::int64_t>(base + i), "k",
             "e" + std::to_string(epoch) + "-" + std::to_string(base + i) + std::string(pad, 'x'));
  const auto bytes = b.finish();
  return {bytes.begin(), bytes.end()};
}

LogConfig small_segments() {
  LogConfig c;
  c.segment_bytes = 1 << 20;
  c.durability = Durability::page_cache;
  return c;
}

// The leader's partition: a log the test writes, served as topic 't'
// (id 7), partition 0.
class TestLeader : public LedPartition, public LedPartitions {
 public:
  explicit TestLeader(std::string dir) : dir_(std::move(dir)), log_(dir_, small_segments(), quiet(), "leader") {
    EXPECT_TRUE(log_.ensure_open(0));
  }
  void write(std::uint64_t base, std::uint32_t records, std::int32_t epoch, std::size_t pad = 0) {
    std::lock_guard lock(mu_);
    ASSERT_EQ(log_.end(), base);
    ASSERT_TRUE(log_.append(batch(base, records, epoch, pad)));
    while (log_.written() < base + records) log_.pump();
  }
  void set_high_watermark(std::uint64_t hw) { hw_.store(hw); }
  // As if retention had deleted everything below `offset`: an empty log
  // that starts there.
  void start_at(std::uint64_t offset) {
    std::lock_guard lock(mu_);
    ASSERT_TRUE(log_.start_over(offset));
  }
  // The leadership's epoch (etcd's): at least the epoch of its log's last batch.
  void set_leader_epoch(std::int32_t e) { epoch_.store(e); }
  std::pair<std::uint64_t, std::uint64_t> acked() const {
    std::lock_guard lock(mu_);
    return acked_;
  }
  std::string mirror_name() const {
    std::lock_guard lock(mu_);
    return mirror_;
  }

  // LedPartition
  const std::string& log_dir() const override { return dir_; }
  std::int32_t leader_epoch() const override { return epoch_.load(); }
  std::uint64_t written() const override { return log_.written(); }
  std::uint64_t log_start() const override {
    std::lock_guard lock(mu_);
    return log_.start();
  }
  std::uint64_t high_watermark() const override { return hw_.load(); }
  Result<std::optional<io::LeaderEpoch>> end_of_epoch(std::int32_t epoch) const override {
    std::lock_guard lock(mu_);
    return std::optional(log_.end_of_epoch(epoch));
  }
  void acknowledged(const std::string& mirror, std::uint64_t w, std::uint64_t d) override {
    std::lock_guard lock(mu_);
    mirror_ = mirror;
    acked_ = {w, d};
  }
  // LedPartitions
  Found find(std::string_view topic, std::uint64_t topic_id, std::uint32_t partition) override {
    if (topic != "t" || topic_id != 7 || partition != 0)
      return {nullptr, wire::ErrorCode::unknown_topic, "this node leads no partition " + std::to_string(partition) +
                                                           " of a topic '" + std::string(topic) + "'"};
    return {std::shared_ptr<LedPartition>(this, [](LedPartition*) {}), {}, {}};
  }

  static io::LogFn quiet() {
    return [](const char*, const std::string&) {};
  }

 private:
  std::string dir_;
  mutable std::mutex mu_;
  MirrorLog log_;
  std::atomic<std::uint64_t> hw_{0};
  std::atomic<std::int32_t> epoch_{1};
  std::pair<std::uint64_t, std::uint64_t> acked_{0, 0};
  std::string mirror_;
};

// Every batch of the log in `dir`, as its bytes lie on disk.
std::vector<std::vector<std::byte>> batches_of(const std::string& dir) {
  auto io = log::make_pwrite_io();
  log::LogReader r(*io, dir);
  std::vector<std::vector<std::byte>> out;
  log::ReadStatus st = r.seek(0);
  if (st == log::ReadStatus::out_of_range) st = r.seek(r.earliest());  // a log that starts later
  if (st != log::ReadStatus::batch) return out;
  log::DecodedBatch b;
  while (r.next(UINT64_MAX, b) == log::ReadStatus::batch) out.emplace_back(b.v2.bytes.begin(), b.v2.bytes.end());
  return out;
}

class MirrorStreamTest : public ::testing::Test {
 protected:
  MirrorStreamTest()
      : root_(std::filesystem::temp_directory_path() / ("ringbus-mirror-" + test::unique_instance("m"))),
        leader_((root_ / "leader").string()),
        mirror_((root_ / "mirror").string(), small_segments(), logger(), "partition 0 of topic 't' (mirror)") {}
  ~MirrorStreamTest() override {
    follower_.reset();
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  io::LogFn logger() {
    return [this](const char* level, const std::string& m) {
      std::lock_guard lock(lines_mu_);
      lines_.push_back(std::string(level) + ": " + m);
    };
  }
  std::string lines() {
    std::lock_guard lock(lines_mu_);
    std::string all;
    for (const auto& l : lines_) all += l + "\n";
    return all;
  }
  void serve(std::uint16_t port = 0) {
    auto s = ReplicationServer::start({kLeaderId, "127.0.0.1:" + std::to_string(port), logger()}, leader_);
    ASSERT_TRUE(s) << s.error().message;
    server_ = std::move(s.value());
  }
  // Through `via` (host:port) if given, else straight to the server.
  void follow(std::string topic = "t", std::string via = "", std::chrono::milliseconds idle = 5000ms) {
    FollowerOptions o{kMirrorId, via.empty() ? "127.0.0.1:" + std::to_string(server_->port()) : via, logger()};
    o.idle_timeout = idle;
    follower_ = std::make_unique<MirrorFollower>(o, std::vector<FollowTarget>{{std::move(topic), 7, 0, &mirror_}});
  }
  bool mirror_reaches(std::uint64_t offset) {
    return test::eventually([&] { return mirror_.written() >= offset; }, 20s);
  }

  std::filesystem::path root_;
  TestLeader leader_;
  MirrorLog mirror_;
  std::unique_ptr<ReplicationServer> server_;
  std::unique_ptr<MirrorFollower> follower_;
  std::mutex lines_mu_;
  std::vector<std::string> lines_;
};

TEST_F(MirrorStreamTest, AMirrorCopiesTheLogBatchByBatchThenFollowsItLive) {
  for (std::uint64_t b = 0; b < 50; ++b) leader_.write(b * 10, 10, 0);
  leader_.set_high_watermark(300);
  serve();
  follow();
  ASSERT_TRUE(mirror_reaches(500)) << lines();
  // Live: written while the mirror follows, in a new epoch.
  for (std::uint64_t b = 50; b < 100; ++b) leader_.write(b * 10, 10, 1);
  ASSERT_TRUE(mirror_reaches(1000)) << lines();
  leader_.set_high_watermark(1000);
  ASSERT_TRUE(test::eventually([&] { return follower_->state(0).high_watermark == 1000; }, 10s));
  ASSERT_TRUE(test::eventually([&] { return leader_.acked().second == 1000; }, 10s)) << lines();
  follower_.reset();
  EXPECT_EQ(leader_.mirror_name(), "node-b");
  const auto led = batches_of((root_ / "leader").string());
  ASSERT_EQ(led.size(), 100u);
  EXPECT_EQ(batches_of((root_ / "mirror").string()), led);
  EXPECT_EQ(mirror_.epochs(), (std::vector<io::LeaderEpoch>{{0, 0}, {1, 500}}));
}

// KIP-279: C holds 0@0, 2@5 (to 10); leader B holds 0@0, 1@4 (to 12). C asks
// about 2, B answers 1 ending at 12; C has no epoch 1 and asks about 0; B
// answers 0 ending at 4; C cuts at 4, in whole batches: its batch 0..4 holds
// offset 4, so it goes (to 0), and C fetches B's log from there.
TEST_F(MirrorStreamTest, AMirrorThatSkippedTheLeadersEpochAsksAgainAndCutsWhereTheyAgree) {
  leader_.write(0, 4, 0);
  leader_.write(4, 8, 1);
  leader_.set_leader_epoch(3);  // elected after epoch 2's leader died
  ASSERT_TRUE(mirror_.ensure_open(0));
  ASSERT_TRUE(mirror_.append(batch(0, 5, 0)));
  ASSERT_TRUE(mirror_.append(batch(5, 5, 2)));
  while (mirror_.written() < 10) mirror_.pump();
  serve();
  follow();
  ASSERT_TRUE(test::eventually([&] { return follower_->state(0).phase == MirrorFollower::Phase::following; }, 10s));
  ASSERT_TRUE(mirror_reaches(12)) << lines();
  follower_.reset();
  EXPECT_EQ(batches_of((root_ / "mirror").string()), batches_of((root_ / "leader").string()));
  EXPECT_EQ(mirror_.epochs(), (std::vector<io::LeaderEpoch>{{0, 0}, {1, 4}}));
  EXPECT_NE(lines().find("left the leader's at offset 4 (epoch 0); truncated from 10 to 0"), std::string::npos)
      << lines();
}

// A mirror that fell behind past the leader's retention: everything it
// holds is below the leader's log start. It deletes its copy, starts again
// at the leader's start, and copies from there.
TEST_F(MirrorStreamTest, AMirrorBelowTheLeadersLogStartStartsOverThere) {
  ASSERT_TRUE(mirror_.ensure_open(0));
  for (std::uint64_t b = 0; b < 10; ++b) ASSERT_TRUE(mirror_.append(batch(b * 10, 10, 0)));
  while (mirror_.written() < 100) mirror_.pump();
  leader_.start_at(500);
  for (std::uint64_t b = 50; b < 60; ++b) leader_.write(b * 10, 10, 1);
  serve();
  follow();
  ASSERT_TRUE(mirror_reaches(600)) << lines();
  follower_.reset();
  EXPECT_EQ(mirror_.start(), 500u);
  const auto led = batches_of((root_ / "leader").string());
  ASSERT_EQ(led.size(), 10u);
  EXPECT_EQ(batches_of((root_ / "mirror").string()), led);
  EXPECT_EQ(mirror_.epochs(), (std::vector<io::LeaderEpoch>{{1, 500}}));
  EXPECT_NE(lines().find("the copy ended at offset 100, below the leader's log start 500"), std::string::npos) << lines();
}

// KIP-101, case 2: the mirror holds offsets 0..1 of epoch 0; the new leader
// wrote offset 1 in epoch 1. The mirror cuts to 1, not to a high watermark.
TEST_F(MirrorStreamTest, AMirrorCutsItsOldEpochWhereTheLeadersNextBegan) {
  leader_.write(0, 1, 0);
  leader_.write(1, 1, 1);
  ASSERT_TRUE(mirror_.ensure_open(0));
  ASSERT_TRUE(mirror_.append(batch(0, 1, 0)));
  ASSERT_TRUE(mirror_.append(batch(1, 1, 0)));
  while (mirror_.written() < 2) mirror_.pump();
  serve();
  follow();
  // Following is said after the cut: the offset then comes from the leader.
  ASSERT_TRUE(test::eventually([&] { return follower_->state(0).phase == MirrorFollower::Phase::following; }, 10s));
  ASSERT_TRUE(mirror_reaches(2)) << lines();
  follower_.reset();
  EXPECT_EQ(batches_of((root_ / "mirror").string()), batches_of((root_ / "leader").string()));
  EXPECT_NE(lines().find("truncated from 2 to 1"), std::string::npos) << lines();
}

// KIP-101, case 1: a mirror that holds what the leader holds cuts nothing,
// whatever high watermark it knew.
TEST_F(MirrorStreamTest, AMirrorThatAgreesWithItsLeaderCutsNothing) {
  leader_.write(0, 2, 0);
  ASSERT_TRUE(mirror_.ensure_open(0));
  ASSERT_TRUE(mirror_.append(batch(0, 2, 0)));
  while (mirror_.written() < 2) mirror_.pump();
  leader_.set_high_watermark(1);
  serve();
  follow();
  ASSERT_TRUE(test::eventually([&] { return follower_->state(0).phase == MirrorFollower::Phase::following; }, 10s));
  leader_.write(2, 1, 0);
  ASSERT_TRUE(mirror_reaches(3)) << lines();
  follower_.reset();
  EXPECT_EQ(batches_of((root_ / "mirror").string()), batches_of((root_ / "leader").string()));
  EXPECT_EQ(lines().find("truncated"), std::string::npos) << lines();
}

// The mirror's log on a small tmpfs that a filler fills: its writes fail,
// it says why (to the leader too) and drops the link; once the filler goes,
// the next link copies the rest and the logs agree.
TEST_F(MirrorStreamTest, AMirrorWhoseDiskIsFullSaysWhyAndCatchesUpWhenSpaceReturns) {
  test::Tmpfs disk{root_ / "small", "8m"};
  ASSERT_TRUE(disk.mounted()) << disk.error;
  const auto filler = disk.path / "filler";
  {
    std::ofstream f(filler, std::ios::binary);
    const std::string mib(1 << 20, 'f');
    for (int i = 0; i < 6; ++i) f << mib;  // 2 MiB left: less than the log's segments need
  }
  for (std::uint64_t b = 0; b < 80; ++b) leader_.write(b * 50, 50, 0, 1000);  // about 4 MiB
  serve();
  MirrorLog small((disk.path / "log").string(), small_segments(), logger(), "partition 0 of topic 't' (small disk)");
  FollowerOptions o{kMirrorId, "127.0.0.1:" + std::to_string(server_->port()), logger()};
  auto follower = std::make_unique<MirrorFollower>(o, std::vector<FollowTarget>{{"t", 7, 0, &small}});
  ASSERT_TRUE(test::eventually([&] { return lines().find("No space left on device") != std::string::npos; }, 20s))
      << lines();
  ASSERT_TRUE(test::eventually([&] { return lines().find("the mirror stopped it (storage)") != std::string::npos; }, 20s))
      << lines();
  EXPECT_LT(small.written(), 4000u);
  std::filesystem::remove(filler);
  ASSERT_TRUE(test::eventually([&] { return small.written() == 4000; }, 30s)) << lines();
  follower.reset();
  EXPECT_EQ(batches_of((disk.path / "log").string()), batches_of((root_ / "leader").string()));
}

// The link between leader and mirror is cut (a proxy the test partitions)
// while the leader writes on: the mirror hears nothing (not even
// heartbeats), closes the link after its idle timeout and dials again;
// when the path heals it catches up.
TEST_F(MirrorStreamTest, AMirrorCutOffFromItsLeaderNoticesItAndCatchesUpWhenTheLinkHeals) {
  for (std::uint64_t b = 0; b < 10; ++b) leader_.write(b * 10, 10, 0);
  serve();
  test::TcpProxy proxy("127.0.0.1:" + std::to_string(server_->port()));
  follow("t", proxy.address(), 1000ms);
  ASSERT_TRUE(mirror_reaches(100)) << lines();
  proxy.partition(true);
  for (std::uint64_t b = 10; b < 60; ++b) leader_.write(b * 10, 10, 0);
  ASSERT_TRUE(test::eventually([&] { return lines().find("heard nothing for 1000 ms") != std::string::npos; }, 10s))
      << lines();
  EXPECT_EQ(mirror_.written(), 100u);  // nothing crossed the cut link
  proxy.partition(false);
  ASSERT_TRUE(mirror_reaches(600)) << lines();
  follower_.reset();
  EXPECT_EQ(batches_of((root_ / "mirror").string()), batches_of((root_ / "leader").string()));
}

// The leader's server goes away and comes back on its port: the mirror
// dials again and goes on where its log ends.
TEST_F(MirrorStreamTest, AMirrorFollowsALeaderThatRestarts) {
  for (std::uint64_t b = 0; b < 10; ++b) leader_.write(b * 10, 10, 0);
  serve();
  const std::uint16_t port = server_->port();
  follow();
  ASSERT_TRUE(mirror_reaches(100)) << lines();
  server_.reset();
  for (std::uint64_t b = 10; b < 30; ++b) leader_.write(b * 10, 10, 1);
  serve(port);
  ASSERT_TRUE(mirror_reaches(300)) << lines();
  follower_.reset();
  EXPECT_EQ(batches_of((root_ / "mirror").string()), batches_of((root_ / "leader").string()));
  EXPECT_NE(lines().find("the leader closed the link"), std::string::npos) << lines();
}

// KIP-320: a deposed leader (its epoch below the mirror's latest) is not
// followed, and the mirror's log is not cut to it.
TEST_F(MirrorStreamTest, AStaleLeaderIsRefusedAndNothingIsCut) {
  leader_.write(0, 8, 0);
  leader_.write(8, 7, 3);
  leader_.set_leader_epoch(3);
  ASSERT_TRUE(mirror_.ensure_open(0));
  ASSERT_TRUE(mirror_.append(batch(0, 10, 0)));
  ASSERT_TRUE(mirror_.append(batch(10, 10, 4)));
  while (mirror_.written() < 20) mirror_.pump();
  serve();
  follow();
  ASSERT_TRUE(test::eventually([&] { return follower_->state(0).phase == MirrorFollower::Phase::failed; }, 10s));
  EXPECT_NE(follower_->state(0).error.find("the leader's epoch 3 is below this mirror's latest, 4"), std::string::npos)
      << follower_->state(0).error;
  follower_.reset();
  EXPECT_EQ(mirror_.written(), 20u);
  EXPECT_EQ(lines().find("truncated"), std::string::npos) << lines();
}

TEST_F(MirrorStreamTest, AnUnknownTopicIsRefusedByName) {
  serve();
  follow("nope");
  ASSERT_TRUE(test::eventually([&] { return follower_->state(0).phase == MirrorFollower::Phase::failed; }, 10s));
  EXPECT_NE(follower_->state(0).error.find("leads no partition 0 of a topic 'nope'"), std::string::npos)
      << follower_->state(0).error;
}

// A real leader whose log holds a batch damaged on its disk: the leader
// reads only headers and sends the bytes from the file, so the mirror's
// check is the one that refuses it, naming it; what came before stays.
TEST_F(MirrorStreamTest, ABatchDamagedOnTheLeadersDiskIsRefusedByTheMirror) {
  for (std::uint64_t b = 0; b < 3; ++b) leader_.write(b * 10, 10, 0);
  {
    auto io = log::make_pwrite_io();
    log::LogReader r(*io, (root_ / "leader").string());
    ASSERT_EQ(r.seek(10), log::ReadStatus::batch);
    log::DecodedBatch b;
    ASSERT_EQ(r.next(UINT64_MAX, b), log::ReadStatus::batch);
    const auto at = static_cast<std::streamoff>(r.batch_position() + b.header.batch_length - 3);
    std::fstream f(log::segment_path((root_ / "leader").string(), r.batch_segment(), log::kLogExt),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at);
    const char c = static_cast<char>(f.get() ^ 0x40);  // inside the records: the CRC no longer matches
    f.seekp(at);
    f.put(c);
  }
  serve();
  follow();
  ASSERT_TRUE(test::eventually([&] { return follower_->state(0).phase == MirrorFollower::Phase::failed; }, 10s))
      << lines();
  EXPECT_NE(follower_->state(0).error.find("the leader's batch at offset 10 was refused"), std::string::npos)
      << follower_->state(0).error;
  follower_.reset();
  EXPECT_EQ(mirror_.written(), 10u);
}

// A leader of our own whose second batch fails its CRC.
TEST_F(MirrorStreamTest, ALeadersBatchWithABadCrcIsRefusedAndNothingWrittenIsTouched) {
  auto listener = listen_on("127.0.0.1:0").value();
  auto fake = std::async(std::launch::async, [&]() -> std::string {
    pollfd p{listener.fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return "no connection";
    auto link = std::move(accept_link(listener.fd).value());
    if (!leader_handshake(*link, kLeaderId, 5000ms)) return "no handshake";
    auto f = link->receive(5000ms);
    if (!f || !std::holds_alternative<wire::Follow>(f.value())) return "no follow";
    link->send(wire::Following{1, 0, 0, 20, 0});
    if (!link->flush(5000ms)) return "flush";
    auto fetch = link->receive(5000ms);
    if (!fetch || !std::holds_alternative<wire::Fetch>(fetch.value())) return "no fetch";
    auto good = batch(0, 10, 0);
    auto bad = batch(10, 10, 0);
    bad[bad.size() - 3] ^= std::byte{0x40};  // inside the records: the CRC no longer matches
    link->send_batches(1, 0, 0, good);
    link->send_batches(1, 0, 0, bad);
    if (!link->flush(5000ms)) return "flush";
    for (;;) {  // acks, then the mirror's refusal
      auto m = link->receive(5000ms);
      if (!m) return m.error().message;
      if (const auto* e = std::get_if<wire::ErrorMsg>(&m.value()))
        return std::string(wire::to_string(e->code)) + ": " + e->message;
    }
  });
  FollowerOptions o{kMirrorId, "127.0.0.1:" + std::to_string(listener.port), logger()};
  follower_ = std::make_unique<MirrorFollower>(o, std::vector<FollowTarget>{{"t", 7, 0, &mirror_}});
  const std::string refusal = fake.get();
  ::close(listener.fd);
  EXPECT_NE(refusal.find("bad_batch: the leader's batch at offset 10 was refused"), std::string::npos) << refusal;
  ASSERT_TRUE(test::eventually([&] { return follower_->state(0).phase == MirrorFollower::Phase::failed; }, 10s));
  follower_.reset();
  EXPECT_EQ(mirror_.written(), 10u);
  EXPECT_EQ(batches_of((root_ / "mirror").string()).size(), 1u);
}

}  // namespace
}  // namespace ringbus::cluster
