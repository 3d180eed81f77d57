#include "lease_keeper.h"

#include <algorithm>

namespace ringbus::cluster {

namespace {

using std::chrono::milliseconds;

milliseconds keepalive_every(const LeaseOptions& o) {
  return o.keepalive_every.count() > 0 ? o.keepalive_every
                                       : std::chrono::duration_cast<milliseconds>(o.ttl) / 3;
}

milliseconds margin(const LeaseOptions& o) {
  return o.margin.count() > 0 ? o.margin
                              : std::max(milliseconds(50), std::chrono::duration_cast<milliseconds>(o.ttl) / 10);
}

}  // namespace

Result<std::unique_ptr<LeaseKeeper>> LeaseKeeper::start(const EtcdOptions& etcd, LeaseOptions options,
                                                        std::function<void(const std::string&)> on_lost) {
  if (options.ttl.count() < 1) return Error{Errc::invalid_argument, "a lease's TTL must be at least 1 s"};
  if (keepalive_every(options) + margin(options) >= options.ttl)
    return Error{Errc::invalid_argument, "a lease's keep-alive interval plus margin must be shorter than its TTL"};
  // A keep-alive that hangs must not outlive the next one's turn.
  EtcdOptions own = etcd;
  own.timeout = std::min(etcd.timeout, keepalive_every(options));
  auto client = EtcdClient::create(own);
  if (!client) return client.error();
  const Clock::time_point sent = Clock::now();
  auto id = client.value()->grant_lease(options.ttl);
  if (!id) return id.error();
  return std::unique_ptr<LeaseKeeper>(
      new LeaseKeeper(std::move(client.value()), options, std::move(on_lost), id.value(), sent));
}

LeaseKeeper::LeaseKeeper(std::unique_ptr<EtcdClient> client, LeaseOptions options,
                         std::function<void(const std::string&)> on_lost, std::int64_t id, Clock::time_point sent)
    : client_(std::move(client)), options_(options), on_lost_(std::move(on_lost)), id_(id) {
  renewed(sent, options_.ttl.count());
  thread_ = std::thread([this] { run(); });
}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (!lost_.load()) (void)client_->revoke_lease(id_);
}

void LeaseKeeper::renewed(Clock::time_point sent, std::int64_t ttl_s) {
  // One writer at a time (the constructor, then the keeper's thread), and
  // each renewal is sent after the one before: until_ only grows.
  const Clock::time_point until = sent + std::chrono::seconds(ttl_s) - margin(options_);
  until_.store(until.time_since_epoch().count());
  sent_.store(sent.time_since_epoch().count());
}

void LeaseKeeper::run() {
  const milliseconds every = keepalive_every(options_);
  milliseconds pause = every;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (wake_.wait_for(lock, pause, [&] { return stopping_; })) return;
    }
    const Clock::time_point sent = Clock::now();
    auto ttl = client_->keep_alive(id_);
    if (!ttl) {
      // etcd did not answer: try again soon; valid() runs out by itself.
      pause = std::min(every, milliseconds(100));
      continue;
    }
    if (ttl.value() <= 0) {
      lost_.store(true);
      until_.store(0);
      if (on_lost_) on_lost_("lease " + std::to_string(id_) + " expired at etcd (or was revoked)");
      return;
    }
    renewed(sent, ttl.value());
    pause = every;
  }
}

}  // namespace ringbus::cluster
