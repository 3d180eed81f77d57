// A broker with a data directory of its own: its log lines are kept in
// `messages`, and the directory is removed after the test.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../bus/test_support.h"
#include "ringbus/broker.h"

namespace ringbus::test {

struct LogFixture : ::testing::Test {
  explicit LogFixture(const std::string& tag)
      : instance(unique_instance(tag)), data(std::filesystem::temp_directory_path() / ("ringbus-data-" + instance)) {}
  ~LogFixture() override {
    std::error_code ec;
    std::filesystem::remove_all(data, ec);
  }
  // Starts a broker on `data`; the test ends at once if it cannot.
  Broker start(IoBackend backend = IoBackend::io_uring) {
    BrokerOptions o{instance, data.string()};
    o.io_backend = backend;
    o.logger = [this](const char* level, const std::string& m) {
      std::lock_guard lock(messages_mu);  // the broker's threads (flushers, keeper, scrubber) log at once
      messages.push_back(std::string(level) + ": " + m);
    };
    if (configure) configure(o);
    auto b = Broker::start(o);
    if (!b) {
      ADD_FAILURE() << b.error().message;
      std::abort();
    }
    return std::move(b.value());
  }

  std::string instance;
  std::filesystem::path data;
  std::function<void(BrokerOptions&)> configure;  // start() applies it last, when set
  std::mutex messages_mu;
  std::vector<std::string> messages;  // read it once the broker is closed (or under messages_mu)
};

}  // namespace ringbus::test
