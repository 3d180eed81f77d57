// Fault tests of an exclusive producer's lease (bus/README.md, "An
// exclusive owner"): the owner is a child process that is killed, or
// stopped, holding a claim.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "process_support.h"
#include "test_support.h"

namespace ringbus::test {
namespace {

// A topic with a short abandoned-claim timeout, a gating consumer from its
// start, and the pipe the child owner says it is ready on.
struct ExclusiveOwnerFaultTest : BrokerFixture {
  void SetUp() override {
    TopicConfig cfg = topic("t");
    cfg.abandoned_claim_timeout = std::chrono::milliseconds(20);
    create(cfg);
    ASSERT_EQ(::pipe(ready), 0);
  }
  void TearDown() override {
    ::close(ready[0]);
    ::close(ready[1]);
  }
  void wait_ready() {
    char byte = 0;
    ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  }
  int ready[2] = {-1, -1};
};

// The child owner: publishes "a" and "b", claims a third record and tells
// the parent (one byte on `ready`), then `then()` (never returns, or
// finishes the claim).
template <class Then>
pid_t spawn_owner(const std::string& instance, int ready, Then then) {
  return spawn([&]() -> int {
    auto owner = Producer::open(instance, "t", exclusive_producer());
    if (!owner || !owner->try_publish("", "a").ok() || !owner->try_publish("", "b").ok()) return 1;
    Claim held = owner->try_claim(1);
    if (!held.ok()) return 2;
    if (::write(ready, "r", 1) != 1) return 3;
    return then(*owner, held);
  });
}

TEST_F(ExclusiveOwnerFaultTest, ALeaseIsTakenOverAfterItsOwnerDiedAndWhatItLeftPendingIsRevoked) {
  Consumer c = consumer("t", from_earliest(true));
  const pid_t child = spawn_owner(instance, ready[1], [](Producer&, Claim&) -> int {
    for (;;) ::pause();  // killed here, its claim pending
  });
  wait_ready();
  // Alive: a second owner is refused, and names it.
  auto refused = Producer::open(instance, "t", exclusive_producer());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("is owned by the exclusive producer of client"), std::string::npos)
      << refused.error().message;
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  // Dead: its lease is taken over, and its pending claim (offset 2) is
  // revoked after the timeout; the new owner goes on at offset 3.
  Producer owner = producer("t", exclusive_producer());
  const PublishResult r = owner.try_publish("", "c");
  ASSERT_TRUE(r.ok()) << to_string(r.status);
  EXPECT_EQ(r.offset, 3u);
  const std::vector<std::pair<std::uint64_t, std::string>> want = {{0, "a"}, {1, "b"}, {3, "c"}};
  EXPECT_EQ(read_n(c, 3), want);
  EXPECT_EQ(c.skipped(), 1u);
}

TEST_F(ExclusiveOwnerFaultTest, AStoppedOwnerKeepsItsLeaseAndItsClaimAndCommitsWhenResumed) {
  Consumer c = consumer("t", from_earliest(true));
  const pid_t child = spawn_owner(instance, ready[1], [](Producer& owner, Claim& held) -> int {
    ::raise(SIGSTOP);  // stopped between claim and commit, past the timeout
    std::memcpy(held.value().data(), "c", 1);
    if (!held.commit().ok()) return 4;
    return owner.try_publish("", "d").offset == 3 ? 0 : 5;
  });
  wait_ready();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, WUNTRACED), child);
  ASSERT_TRUE(WIFSTOPPED(status));
  const std::vector<std::pair<std::uint64_t, std::string>> first = {{0, "a"}, {1, "b"}};
  EXPECT_EQ(read_n(c, 2), first);
  // Ten timeouts later the claim is still the owner's: nobody revoked it,
  // and nobody else may own the partition.
  for (int i = 0; i < 10; ++i) {
    (void)c.wait(std::chrono::milliseconds(20));
    EXPECT_TRUE(drain_values(c).empty());
  }
  EXPECT_EQ(c.skipped(), 0u);
  EXPECT_FALSE(Producer::open(instance, "t", exclusive_producer()).ok());
  ASSERT_EQ(::kill(child, SIGCONT), 0);
  const std::vector<std::pair<std::uint64_t, std::string>> rest = {{2, "c"}, {3, "d"}};
  EXPECT_EQ(read_n(c, 2), rest);
  EXPECT_EQ(wait_all({child}, std::chrono::seconds(30)), "");
}

}  // namespace
}  // namespace ringbus::test
