#include "topic_leadership.h"

#include <nlohmann/json.hpp>

#include <set>

#include "replication_protocol.h"

namespace ringbus::cluster {

using nlohmann::json;

std::string encode_leadership(const Leadership& s) {
  return json{{"leader", s.leader}, {"epoch", s.epoch}, {"isr", s.isr}}.dump();
}

Result<Leadership> decode_leadership(std::string_view text, const std::string& key) {
  auto bad = [&](const std::string& why) { return Error{Errc::corrupt, "leadership at " + key + ": " + why}; };
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("not JSON");
  if (!j.is_object()) return bad("not a JSON object");
  Leadership s;
  const auto leader = j.find("leader");
  if (leader == j.end() || !leader->is_string()) return bad("'leader' is missing or not a string");
  s.leader = leader->get<std::string>();
  const auto epoch = j.find("epoch");
  if (epoch == j.end() || !epoch->is_number_integer()) return bad("'epoch' is missing or not an integer");
  const auto e = epoch->get<std::int64_t>();
  if (e < 0 || e > INT32_MAX) return bad("'epoch' " + std::to_string(e) + " is outside 0..2^31-1");
  s.epoch = static_cast<std::int32_t>(e);
  const auto isr = j.find("isr");
  if (isr == j.end() || !isr->is_array()) return bad("'isr' is missing or not an array");
  std::set<std::string> seen;
  for (const auto& n : *isr) {
    if (!n.is_string()) return bad("'isr' holds something other than a node name");
    std::string name = n.get<std::string>();
    if (name.empty() || name.size() > wire::kMaxNameSize) return bad("'isr' names a node of " + std::to_string(name.size()) + " bytes");
    if (!seen.insert(name).second) return bad("'isr' names '" + name + "' twice");
    s.isr.push_back(std::move(name));
  }
  if (s.leader.size() > wire::kMaxNameSize) return bad("'leader' is longer than a node name may be");
  if (!s.leader.empty() && !seen.count(s.leader)) return bad("the leader '" + s.leader + "' is not in 'isr'");
  return s;
}

std::string Leaderships::key(std::string_view topic) const {
  return prefix_ + "/leaders/" + std::string(topic);
}

Result<VersionedLeadership> Leaderships::read(std::string_view topic) {
  const std::string k = key(topic);
  auto kv = etcd_.get(k);
  if (!kv) return kv.error();
  if (!kv->has_value()) return VersionedLeadership{};
  auto s = decode_leadership((*kv)->value, k);
  if (!s) return s.error();
  return VersionedLeadership{std::move(s.value()), (*kv)->mod_revision};
}

Result<bool> Leaderships::swap(std::string_view topic, VersionedLeadership& expected,
                                   const Leadership& next) {
  const std::string k = key(topic);
  std::optional<EtcdKv> now;
  std::int64_t revision = 0;
  auto ok = etcd_.put_if(k, encode_leadership(next), expected.revision, 0, &now, &revision);
  if (!ok) return ok.error();
  if (ok.value()) {
    expected = VersionedLeadership{next, revision};
    return true;
  }
  if (!now) {
    expected = VersionedLeadership{};
  } else {
    auto s = decode_leadership(now->value, k);
    if (!s) return s.error();
    expected = VersionedLeadership{std::move(s.value()), now->mod_revision};
  }
  return false;
}

}  // namespace ringbus::cluster
