// A small client of etcd's v3 API, through the HTTP/JSON gateway that etcd
// 3.4 and later serve under /v3/ (libcurl, nlohmann::json): the key-value
// operations, compare-and-swap transactions and leases that the cluster's
// metadata, leadership and in-sync sets need. Keys and values are bytes
// (base64 on the wire, as the gateway wants); revisions are etcd's.
//
// Every request has a deadline (EtcdOptions::timeout). A request that could
// not connect to an endpoint is tried on the next one; one that got no
// answer in time is not (it may have been applied: the caller reads again),
// nor is one etcd refused. Errors name the endpoint and the operation:
// Errc::io_error when no endpoint answered, Errc::corrupt for an answer that
// is not what the API says, Errc::invalid_argument for a refusal.
//
// Threading: one request at a time per client (a mutex); use a client per
// thread where requests must not wait for each other (a lease's keep-alive).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/result.h"

namespace ringbus::cluster {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "http://127.0.0.1:2379", tried in turn
  std::chrono::milliseconds timeout{2000};
};

struct EtcdKv {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;  // the revision of its last change: what a CAS compares
  std::int64_t version = 0;       // changes since created
  std::int64_t lease = 0;         // 0: none
};

class EtcdClient {
 public:
  // Checks the endpoint list (http:// URLs) without connecting.
  static Result<std::unique_ptr<EtcdClient>> create(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const EtcdOptions& options() const noexcept { return options_; }

  // The key, or nothing if it does not exist.
  Result<std::optional<EtcdKv>> get(std::string_view key);
  // Every key that starts with `prefix`, in key order.
  Result<std::vector<EtcdKv>> get_prefix(std::string_view prefix);
  // Writes the key (attached to `lease` unless 0); returns the new revision.
  Result<std::int64_t> put(std::string_view key, std::string_view value, std::int64_t lease = 0);
  // Deletes the key; true if it existed.
  Result<bool> erase(std::string_view key);
  // Deletes every key under `prefix`; how many.
  Result<std::int64_t> erase_prefix(std::string_view prefix);

  // Compare-and-swap: writes the key only if its mod_revision is
  // `expected_revision` (0: only if the key does not exist). True if it was
  // written (and `revision`, when given, holds its new mod_revision); false
  // if not, and then `current` (when given) holds the key as it is now
  // (nothing if it does not exist).
  Result<bool> put_if(std::string_view key, std::string_view value, std::int64_t expected_revision,
                      std::int64_t lease = 0, std::optional<EtcdKv>* current = nullptr,
                      std::int64_t* revision = nullptr);
  // Deletes the key only if its mod_revision is `expected_revision`.
  Result<bool> erase_if(std::string_view key, std::int64_t expected_revision);

  // A lease of `ttl` (whole seconds, at least 1); its id.
  Result<std::int64_t> grant_lease(std::chrono::seconds ttl);
  // Renews the lease; the TTL it has again, or 0 if it has expired (or was
  // revoked): its keys are gone then.
  Result<std::int64_t> keep_alive(std::int64_t lease);
  // Ends the lease now; its keys are deleted.
  Status revoke_lease(std::int64_t lease);

 private:
  struct Curl;
  EtcdClient(EtcdOptions options, std::unique_ptr<Curl> curl);
  // POSTs `body` to /v3/<path> on the endpoints in turn; the parsed answer
  // as JSON text handed to the caller's parser.
  Result<std::string> call(const char* path, const std::string& body);

  EtcdOptions options_;
  std::mutex mu_;
  std::unique_ptr<Curl> curl_;
  std::size_t preferred_ = 0;  // the endpoint that answered last
};

// The key after every key with `prefix`: etcd's range_end for a prefix.
std::string prefix_end(std::string_view prefix);

// The keys of an answer to a range request (what get and get_prefix read:
// JSON, base64 keys and values, 64-bit integers as strings). An answer that
// is not what the API says is Errc::corrupt naming what (fuzz target
// tests/fuzz/etcd_answer_fuzz.cpp).
Result<std::vector<EtcdKv>> decode_range_answer(std::string_view answer);

}  // namespace ringbus::cluster
