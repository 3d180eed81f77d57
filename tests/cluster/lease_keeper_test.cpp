// A node's lease against a real etcd (cluster/src/lease_keeper.*): kept
// alive, its keys with it; when etcd stops answering, the node's own clock
// fences it no later than the last keep-alive's send time plus the TTL;
// cut off from etcd (a proxy the test cuts), it fences before etcd lets the
// lease expire, and hears of the loss when the link heals; a keeper that
// stops revokes its lease at once.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../bus/test_support.h"
#include "etcd_process.h"
#include "lease_keeper.h"
#include "tcp_proxy.h"

namespace ringbus::cluster {
namespace {

using namespace std::chrono_literals;

class LeaseKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    etcd_ = test::EtcdProcess::start(&why);
    ASSERT_NE(etcd_, nullptr) << why;
    options_ = {{etcd_->endpoint()}, 1000ms};
    client_ = std::move(EtcdClient::create(options_).value());
  }
  std::unique_ptr<test::EtcdProcess> etcd_;
  EtcdOptions options_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(LeaseKeeperTest, KeepsItsLeaseAndItsKeysAlive) {
  // A TTL of 5 s: keep-alives every 1.7 s leave 2.8 s of slack on a busy machine.
  auto keeper = LeaseKeeper::start(options_, {5s});
  ASSERT_TRUE(keeper) << keeper.error().message;
  ASSERT_TRUE(client_->put("/n/a", "alive", keeper.value()->id()));
  const auto until = std::chrono::steady_clock::now() + 6s;  // past the TTL
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(keeper.value()->valid());
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(client_->get("/n/a").value().has_value());
  EXPECT_FALSE(keeper.value()->lost());
}

// etcd stopped (SIGSTOP): no answer comes, and the node fences by its own
// clock alone; when etcd answers again, the keeper learns from it whether
// the lease lived (valid again) or expired meanwhile (lost).
TEST_F(LeaseKeeperTest, ANodeFencesByItsOwnClockWhenEtcdStopsAnswering) {
  auto keeper = LeaseKeeper::start(options_, {2s});
  ASSERT_TRUE(keeper) << keeper.error().message;
  LeaseKeeper& k = *keeper.value();
  etcd_->pause();
  ASSERT_TRUE(test::eventually([&] { return !k.valid(); }, 10s));
  EXPECT_FALSE(k.lost());  // nobody said so: fenced by the clock
  etcd_->resume();
  ASSERT_TRUE(test::eventually([&] { return k.valid() || k.lost(); }, 10s));
}

// Cut off from a running etcd, the node fences before etcd lets its lease
// expire (its key is still there when valid() goes false); once the link
// heals it hears that the lease is gone, for good.
TEST_F(LeaseKeeperTest, ANodeCutOffFromEtcdFencesBeforeItsLeaseExpiresThere) {
  test::TcpProxy proxy(etcd_->endpoint().substr(std::string("http://").size()));
  std::atomic<int> lost_calls{0};
  // A margin of 1 s: the check below that the key is still there has that long.
  auto keeper = LeaseKeeper::start({{"http://" + proxy.address()}, 1000ms}, {3s, 0ms, 1000ms},
                                   [&](const std::string&) { ++lost_calls; });
  ASSERT_TRUE(keeper) << keeper.error().message;
  LeaseKeeper& k = *keeper.value();
  ASSERT_TRUE(client_->put("/n/b", "alive", k.id()));
  proxy.partition(true);
  ASSERT_TRUE(test::eventually([&] { return !k.valid(); }, 10s));
  EXPECT_TRUE(client_->get("/n/b").value().has_value()) << "etcd let the lease go before the node fenced";
  ASSERT_TRUE(test::eventually([&] { return !client_->get("/n/b").value().has_value(); }, 10s));
  EXPECT_FALSE(k.valid());
  proxy.partition(false);
  ASSERT_TRUE(test::eventually([&] { return k.lost(); }, 10s));
  EXPECT_EQ(lost_calls.load(), 1);
  EXPECT_FALSE(k.valid());
}

TEST_F(LeaseKeeperTest, AKeeperThatStopsRevokesItsLeaseAtOnce) {
  auto keeper = LeaseKeeper::start(options_, {10s});
  ASSERT_TRUE(keeper) << keeper.error().message;
  ASSERT_TRUE(client_->put("/n/c", "alive", keeper.value()->id()));
  keeper.value().reset();
  EXPECT_FALSE(client_->get("/n/c").value().has_value());
}

TEST(LeaseKeeper, RefusesAKeepAliveThatDoesNotFitTheTtl) {
  auto r = LeaseKeeper::start({{"http://127.0.0.1:1"}, 1000ms}, {2s, 1900ms});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("shorter than its TTL"), std::string::npos);
}

}  // namespace
}  // namespace ringbus::cluster
