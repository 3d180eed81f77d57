// A topic's configuration as JSON: the form the control channel carries
// (tools/README.md, "Control channel") and a cluster keeps in etcd
// (cluster/README.md, "Keys in etcd"). Absent fields keep TopicConfig's
// defaults; unknown fields and values of the wrong type or range are
// refused, naming the field. Durations are integer milliseconds (suffix
// _ms), sizes integer bytes.
#pragma once

#include <nlohmann/json.hpp>

#include "ringbus/result.h"
#include "ringbus/topic.h"

namespace ringbus::cluster {

nlohmann::json topic_config_to_json(const TopicConfig& c);
Result<TopicConfig> topic_config_from_json(const nlohmann::json& j);

// Changes to a topic's current log settings (an alter_topic request). The
// ring's fields (partitions, ring_bytes, max_record_size,
// abandoned_claim_timeout_ms) and the name are refused, saying why.
Result<LogConfig> log_changes_from_json(const LogConfig& current, const nlohmann::json& changes);
// A LogConfig in the same fields as topic_config_to_json.
nlohmann::json log_config_to_json(const LogConfig& l);

}  // namespace ringbus::cluster
