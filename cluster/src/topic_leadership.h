// A topic's leadership in etcd (cluster/README.md, "Leadership and the
// in-sync set"): which node leads the topic's partitions, in which leader
// epoch, and which replicas are in sync, as one JSON value at
// <prefix>/leaders/<topic>,
// changed only by compare-and-swap on its revision. The decoder trusts
// nothing (fuzz target tests/fuzz/leadership_fuzz.cpp): the value is
// whatever etcd holds, and anyone with access to etcd can write it.
#pragma once

#include <cstdint>
#include <climits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "etcd_client.h"
#include "ringbus/result.h"

namespace ringbus::cluster {

struct Leadership {
  std::string leader;            // "" : none (before the first election)
  std::int32_t epoch = 0;        // the leader epoch its batches carry; +1 at each election
  std::vector<std::string> isr;  // in-sync replicas, the leader first, no repeats
  bool operator==(const Leadership&) const = default;
};

std::string encode_leadership(const Leadership& s);
// Errc::corrupt naming `key` and what is wrong: not JSON, a field missing
// or of the wrong type, a node name that is empty or too long, an epoch
// below 0, a repeated replica, a leader missing from the set.
Result<Leadership> decode_leadership(std::string_view json, const std::string& key);

// The topic's leadership as etcd holds it, with the revision a swap compares.
struct VersionedLeadership {
  Leadership state;
  std::int64_t revision = 0;  // 0: no key yet
};

class Leaderships {
 public:
  // Keys under `prefix` ("/ringbus/<cluster>").
  Leaderships(EtcdClient& etcd, std::string prefix) : etcd_(etcd), prefix_(std::move(prefix)) {}

  std::string key(std::string_view topic) const;
  // Nothing (revision 0) while the key does not exist.
  Result<VersionedLeadership> read(std::string_view topic);
  // Writes `next` if the key is still at `expected.revision`; true if it was.
  // On false, `expected` is refreshed to what etcd holds now.
  Result<bool> swap(std::string_view topic, VersionedLeadership& expected,
                    const Leadership& next);

  // An election by `candidate`, tried once on the state `current` (read
  // before): allowed when there is no leader or `leader_alive(name)` says
  // the leader's lease is gone, and the candidate is in the in-sync set
  // (or `unclean`, in `replicas`). The new state: the candidate leads, the
  // epoch is one up, the in-sync set keeps the live members (the candidate
  // first; at the first election, every replica). True if the swap took; false if not allowed or someone else
  // changed the state first (`current` is then refreshed).
  template <class Alive>
  Result<bool> elect(std::string_view topic, VersionedLeadership& current,
                     const std::string& candidate, const std::vector<std::string>& replicas, bool unclean,
                     Alive&& leader_alive);

 private:
  EtcdClient& etcd_;
  std::string prefix_;
};

template <class Alive>
Result<bool> Leaderships::elect(std::string_view topic, VersionedLeadership& current,
                                    const std::string& candidate, const std::vector<std::string>& replicas,
                                    bool unclean, Alive&& leader_alive) {
  const Leadership& s = current.state;
  if (!s.leader.empty() && leader_alive(s.leader)) return false;
  if (s.epoch == INT32_MAX)
    return Error{Errc::invalid_argument, key(topic) + ": the leader epoch is at its largest (2^31-1)"};
  auto has = [](const std::vector<std::string>& v, const std::string& n) {
    for (const auto& x : v)
      if (x == n) return true;
    return false;
  };
  const bool in_sync = current.revision == 0 ? has(replicas, candidate) : has(s.isr, candidate);
  if (!in_sync && !(unclean && has(replicas, candidate))) return false;
  Leadership next;
  next.leader = candidate;
  next.epoch = s.epoch + (current.revision == 0 ? 0 : 1);
  next.isr.push_back(candidate);
  if (current.revision == 0) {
    // A new topic: every replica's log is empty, so all are in sync (as in Kafka).
    for (const auto& n : replicas)
      if (n != candidate) next.isr.push_back(n);
  } else {
    for (const auto& n : s.isr)
      if (n != candidate && n != s.leader && leader_alive(n)) next.isr.push_back(n);
  }
  return swap(topic, current, next);
}

}  // namespace ringbus::cluster
