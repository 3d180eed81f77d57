// The etcd client (cluster/src/etcd_client.*) against a real etcd: bytes
// round-trip, prefixes, compare-and-swap both ways, leases that renew,
// expire and are revoked, and the failures a node meets: an endpoint that
// is down (the next one is tried), an etcd that does not answer (the
// deadline holds), a refusal (named).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "etcd_client.h"
#include "etcd_process.h"

namespace ringbus::cluster {
namespace {

using namespace std::chrono_literals;

class EtcdClientTest : public test::EtcdSuite {
 protected:
  void SetUp() override {
    EtcdSuite::SetUp();
    if (HasFatalFailure()) return;
    auto c = EtcdClient::create({{etcd_->endpoint()}, 2000ms});
    ASSERT_TRUE(c) << c.error().message;
    client_ = std::move(c.value());
    prefix_ = prefix();
  }
  std::unique_ptr<EtcdClient> client_;
  std::string prefix_;
};

TEST_F(EtcdClientTest, PutAndGetRoundTripAnyBytes) {
  const std::string key = prefix_ + std::string("k\0\xff", 3);
  const std::string value("v\0\x01\xfe\xff", 5);
  auto rev = client_->put(key, value);
  ASSERT_TRUE(rev) << rev.error().message;
  auto got = client_->get(key);
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->key, key);
  EXPECT_EQ((*got)->value, value);
  EXPECT_EQ((*got)->mod_revision, rev.value());
  EXPECT_EQ((*got)->version, 1);
  // Empty values too.
  ASSERT_TRUE(client_->put(key, ""));
  EXPECT_EQ(client_->get(key).value()->value, "");
}

TEST_F(EtcdClientTest, AMissingKeyIsNothing) {
  auto got = client_->get(prefix_ + "absent");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_FALSE(got->has_value());
  auto erased = client_->erase(prefix_ + "absent");
  ASSERT_TRUE(erased);
  EXPECT_FALSE(erased.value());
}

TEST_F(EtcdClientTest, APrefixListsItsKeysInOrderAndNothingElse) {
  for (const char* k : {"b", "a", "c"}) ASSERT_TRUE(client_->put(prefix_ + "p/" + k, k));
  ASSERT_TRUE(client_->put(prefix_ + "q", "outside"));
  auto kvs = client_->get_prefix(prefix_ + "p/");
  ASSERT_TRUE(kvs) << kvs.error().message;
  ASSERT_EQ(kvs->size(), 3u);
  EXPECT_EQ((*kvs)[0].value, "a");
  EXPECT_EQ((*kvs)[2].value, "c");
  auto n = client_->erase_prefix(prefix_ + "p/");
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value(), 3);
  EXPECT_TRUE(client_->get(prefix_ + "q").value().has_value());
}

TEST_F(EtcdClientTest, PutIfRevisionZeroCreatesOnlyAnAbsentKey) {
  const std::string key = prefix_ + "leader";
  auto first = client_->put_if(key, "node-a", 0);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(first.value());
  std::optional<EtcdKv> current;
  auto second = client_->put_if(key, "node-b", 0, 0, &current);
  ASSERT_TRUE(second);
  EXPECT_FALSE(second.value());
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->value, "node-a");
}

TEST_F(EtcdClientTest, PutIfSwapsOnlyAtTheExpectedRevision) {
  const std::string key = prefix_ + "isr";
  const auto rev = client_->put(key, "a,b,c").value();
  auto stale = client_->put_if(key, "a", rev - 1);
  ASSERT_TRUE(stale);
  EXPECT_FALSE(stale.value());
  std::int64_t new_rev = 0;
  auto ok = client_->put_if(key, "a,b", rev, 0, nullptr, &new_rev);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok.value());
  EXPECT_EQ(client_->get(key).value()->value, "a,b");
  EXPECT_EQ(client_->get(key).value()->mod_revision, new_rev);
  // The same revision again is stale now.
  std::optional<EtcdKv> current;
  EXPECT_FALSE(client_->put_if(key, "a", rev, 0, &current).value());
  EXPECT_EQ(current->value, "a,b");
}

TEST_F(EtcdClientTest, EraseIfDeletesOnlyAtTheExpectedRevision) {
  const std::string key = prefix_ + "k";
  const auto rev = client_->put(key, "v").value();
  EXPECT_FALSE(client_->erase_if(key, rev + 100).value());
  EXPECT_TRUE(client_->erase_if(key, rev).value());
  EXPECT_FALSE(client_->get(key).value().has_value());
}

TEST_F(EtcdClientTest, ALeasesKeysGoWhenItIsRevoked) {
  auto lease = client_->grant_lease(10s);
  ASSERT_TRUE(lease) << lease.error().message;
  ASSERT_TRUE(client_->put(prefix_ + "alive", "x", lease.value()));
  EXPECT_EQ(client_->get(prefix_ + "alive").value()->lease, lease.value());
  auto ttl = client_->keep_alive(lease.value());
  ASSERT_TRUE(ttl) << ttl.error().message;
  EXPECT_EQ(ttl.value(), 10);
  ASSERT_TRUE(client_->revoke_lease(lease.value()));
  EXPECT_FALSE(client_->get(prefix_ + "alive").value().has_value());
  EXPECT_EQ(client_->keep_alive(lease.value()).value(), 0);
}

TEST_F(EtcdClientTest, ALeaseExpiresWithoutKeepAliveAndLivesWithIt) {
  // etcd's shortest TTL is about 2 s (one and a half election timeouts).
  auto kept = client_->grant_lease(2s);
  auto left = client_->grant_lease(2s);
  ASSERT_TRUE(kept && left);
  ASSERT_TRUE(client_->put(prefix_ + "kept", "x", kept.value()));
  ASSERT_TRUE(client_->put(prefix_ + "left", "x", left.value()));
  const auto until = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_GT(client_->keep_alive(kept.value()).value(), 0);
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_TRUE(client_->get(prefix_ + "kept").value().has_value());
  EXPECT_FALSE(client_->get(prefix_ + "left").value().has_value());
  EXPECT_EQ(client_->keep_alive(left.value()).value(), 0);
}

TEST_F(EtcdClientTest, APutWithAnUnknownLeaseIsRefusedByName) {
  auto r = client_->put(prefix_ + "k", "v", 12345);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().message.find("lease not found"), std::string::npos) << r.error().message;
}

TEST_F(EtcdClientTest, ADownEndpointIsNamedAndTheNextOneTried) {
  auto down = EtcdClient::create({{"http://127.0.0.1:1"}, 1000ms}).value();
  auto r = down->get("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::io_error);
  EXPECT_NE(r.error().message.find("http://127.0.0.1:1/v3/kv/range"), std::string::npos) << r.error().message;

  auto both = EtcdClient::create({{"http://127.0.0.1:1", etcd_->endpoint()}, 1000ms}).value();
  ASSERT_TRUE(both->put(prefix_ + "k", "v"));
  EXPECT_EQ(both->get(prefix_ + "k").value()->value, "v");
}

TEST_F(EtcdClientTest, AnEtcdThatDoesNotAnswerMeetsTheDeadline) {
  auto quick = EtcdClient::create({{etcd_->endpoint()}, 300ms}).value();
  etcd_->pause();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = quick->get("k");
  const auto took = std::chrono::steady_clock::now() - t0;
  etcd_->resume();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::io_error);
  EXPECT_LT(took, 3s);  // a bound far above the deadline: this is not a timing test
  // And it answers again.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!quick->get("k") && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(quick->get("k"));
}

TEST(EtcdClient, RefusesEndpointsThatAreNotHttpUrls) {
  auto r = EtcdClient::create({{"127.0.0.1:2379"}, std::chrono::milliseconds(100)});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'127.0.0.1:2379' is not an http://"), std::string::npos);
  EXPECT_FALSE(EtcdClient::create({{}, std::chrono::milliseconds(100)}));
}

TEST(EtcdClient, PrefixEndIsTheNextKeyAfterThePrefix) {
  EXPECT_EQ(prefix_end("/a/"), "/a0");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_end(std::string("\xff", 1)), std::string(1, '\0'));
}

}  // namespace
}  // namespace ringbus::cluster
