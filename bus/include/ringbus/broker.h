// An embedded broker: owns a shared-memory instance in this process. It
// creates /dev/shm/ringbus-<instance>/, creates and deletes topics there, and
// removes the whole directory when closed. Producers and consumers in any
// process on the host open topics of the instance by name.
//
// One broker per instance: a second one (in any process) is refused while the
// first lives. A directory left by a broker that died is cleaned up by the
// next broker that starts on the instance.
//
// Threading: Broker methods may be called from any thread; topic operations
// are serialised internally (they are not on the data path).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/result.h"
#include "ringbus/topic.h"

namespace ringbus {

struct BrokerOptions {
  std::string instance = default_instance();
};

class Broker {
 public:
  static Result<Broker> start(BrokerOptions options = {});
  Broker(Broker&&) noexcept;
  Broker& operator=(Broker&&) noexcept;
  ~Broker();  // close()

  const std::string& instance() const noexcept;
  Result<TopicInfo> create_topic(const TopicConfig& config);
  // Marks the topic deleted (producers get topic_deleted, consumers drain and
  // then see topic_deleted), then unlinks its files. Processes that have it
  // mapped keep a valid mapping until they close it: nobody crashes.
  Status delete_topic(std::string_view name);
  Result<std::vector<std::string>> list_topics() const;
  Result<TopicInfo> describe_topic(std::string_view name) const;
  // Deletes every topic and removes the instance directory.
  void close();

 private:
  struct Impl;
  explicit Broker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringbus
