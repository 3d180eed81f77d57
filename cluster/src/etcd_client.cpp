#include "etcd_client.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

namespace ringbus::cluster {

using nlohmann::json;

namespace {

std::string base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// False for text that is not base64 (length, alphabet).
bool unbase64(std::string_view s, std::string& out) {
  if (s.size() % 4 != 0) return false;
  out.assign(s.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts the padding's zero bytes.
  std::size_t len = static_cast<std::size_t>(n);
  if (!s.empty() && s.back() == '=') --len;
  if (s.size() > 1 && s[s.size() - 2] == '=') --len;
  out.resize(len);
  return true;
}

// The gateway writes 64-bit integers as JSON strings (proto3's mapping) and
// leaves out fields that are zero.
std::int64_t int_field(const json& j, const char* name) {
  const auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) return std::stoll(it->get<std::string>());
  throw std::invalid_argument(std::string("field ") + name + " is not an integer");
}

EtcdKv kv_from(const json& j) {
  EtcdKv kv;
  if (!unbase64(j.value("key", ""), kv.key) || !unbase64(j.value("value", ""), kv.value))
    throw std::invalid_argument("a key or value is not base64");
  kv.create_revision = int_field(j, "create_revision");
  kv.mod_revision = int_field(j, "mod_revision");
  kv.version = int_field(j, "version");
  kv.lease = int_field(j, "lease");
  return kv;
}

std::vector<EtcdKv> kvs_from(const json& range) {
  std::vector<EtcdKv> out;
  if (const auto it = range.find("kvs"); it != range.end())
    for (const auto& kv : *it) out.push_back(kv_from(kv));
  return out;
}

json compare_mod(std::string_view key, std::int64_t expected_revision) {
  // A key that does not exist has create_revision 0 (and no mod_revision).
  if (expected_revision == 0)
    return {{"key", base64(key)}, {"target", "CREATE"}, {"create_revision", "0"}, {"result", "EQUAL"}};
  return {{"key", base64(key)},
          {"target", "MOD"},
          {"mod_revision", std::to_string(expected_revision)},
          {"result", "EQUAL"}};
}

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

struct EtcdClient::Curl {
  CURL* h = nullptr;
  ~Curl() {
    if (h) curl_easy_cleanup(h);
  }
};

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key (etcd's "\0" range end)
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::create(EtcdOptions options) {
  if (options.endpoints.empty()) return Error{Errc::invalid_argument, "etcd: no endpoint given"};
  for (auto& e : options.endpoints) {
    if (e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0)
      return Error{Errc::invalid_argument, "etcd endpoint '" + e + "' is not an http:// or https:// URL"};
    while (!e.empty() && e.back() == '/') e.pop_back();
  }
  if (options.timeout.count() <= 0) return Error{Errc::invalid_argument, "etcd: the timeout must be positive"};
  // curl_global_init is idempotent and, since 7.84, thread-safe.
  curl_global_init(CURL_GLOBAL_DEFAULT);
  auto curl = std::make_unique<Curl>();
  curl->h = curl_easy_init();
  if (!curl->h) return Error{Errc::io_error, "etcd: libcurl could not make a handle"};
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(options), std::move(curl)));
}

EtcdClient::EtcdClient(EtcdOptions options, std::unique_ptr<Curl> curl)
    : options_(std::move(options)), curl_(std::move(curl)) {}

EtcdClient::~EtcdClient() = default;

Result<std::string> EtcdClient::call(const char* path, const std::string& body) {
  std::lock_guard lock(mu_);
  CURL* h = curl_->h;
  std::string failures;
  const std::size_t n = options_.endpoints.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t which = (preferred_ + i) % n;
    const std::string url = options_.endpoints[which] + "/v3/" + path;
    std::string answer;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM in a library
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      failures += (failures.empty() ? "" : "; ") + url + ": " + curl_easy_strerror(rc);
      // Only a request that never reached etcd goes to the next endpoint:
      // one that timed out may have been applied, and a swap sent again
      // would fail against its own write.
      if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) continue;
      return Error{Errc::io_error, "etcd: no answer from " + failures + " (the request may or may not have been applied)"};
    }
    preferred_ = which;
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
      std::string why = answer;
      try {
        why = json::parse(answer).value("message", answer);
      } catch (const json::exception&) {
      }
      return Error{Errc::invalid_argument, "etcd at " + url + " refused the request (HTTP " +
                                               std::to_string(status) + "): " + why};
    }
    return answer;
  }
  return Error{Errc::io_error, "etcd: no endpoint answered: " + failures};
}

namespace {

// Parses an answer with `fn`; an answer that does not fit the API is corrupt.
template <class T, class F>
Result<T> parse(const Result<std::string>& answer, const char* op, F&& fn) {
  if (!answer) return answer.error();
  try {
    return fn(json::parse(answer.value()));
  } catch (const std::exception& e) {
    return Error{Errc::corrupt, std::string("etcd's answer to ") + op + " is not what the v3 API says: " + e.what()};
  }
}

}  // namespace

Result<std::vector<EtcdKv>> decode_range_answer(std::string_view answer) {
  return parse<std::vector<EtcdKv>>(std::string(answer), "range", kvs_from);
}

Result<std::optional<EtcdKv>> EtcdClient::get(std::string_view key) {
  const json req = {{"key", base64(key)}};
  auto answer = call("kv/range", req.dump());
  if (!answer) return answer.error();
  auto kvs = decode_range_answer(answer.value());
  if (!kvs) return kvs.error();
  if (kvs->empty()) return std::optional<EtcdKv>{};
  return std::optional<EtcdKv>{std::move(kvs->front())};
}

Result<std::vector<EtcdKv>> EtcdClient::get_prefix(std::string_view prefix) {
  const json req = {{"key", base64(prefix)}, {"range_end", base64(prefix_end(prefix))}};
  auto answer = call("kv/range", req.dump());
  if (!answer) return answer.error();
  return decode_range_answer(answer.value());
}

Result<std::int64_t> EtcdClient::put(std::string_view key, std::string_view value, std::int64_t lease) {
  json req = {{"key", base64(key)}, {"value", base64(value)}};
  if (lease != 0) req["lease"] = std::to_string(lease);
  return parse<std::int64_t>(call("kv/put", req.dump()), "put",
                             [](const json& j) { return int_field(j.at("header"), "revision"); });
}

Result<bool> EtcdClient::erase(std::string_view key) {
  const json req = {{"key", base64(key)}};
  return parse<bool>(call("kv/deleterange", req.dump()), "deleterange",
                     [](const json& j) { return int_field(j, "deleted") > 0; });
}

Result<std::int64_t> EtcdClient::erase_prefix(std::string_view prefix) {
  const json req = {{"key", base64(prefix)}, {"range_end", base64(prefix_end(prefix))}};
  return parse<std::int64_t>(call("kv/deleterange", req.dump()), "deleterange",
                             [](const json& j) { return int_field(j, "deleted"); });
}

Result<bool> EtcdClient::put_if(std::string_view key, std::string_view value, std::int64_t expected_revision,
                                std::int64_t lease, std::optional<EtcdKv>* current, std::int64_t* revision) {
  json put = {{"key", base64(key)}, {"value", base64(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  const json req = {{"compare", json::array({compare_mod(key, expected_revision)})},
                    {"success", json::array({{{"request_put", put}}})},
                    {"failure", json::array({{{"request_range", {{"key", base64(key)}}}}})}};
  return parse<bool>(call("kv/txn", req.dump()), "txn", [&](const json& j) {
    const bool ok = j.value("succeeded", false);
    // A transaction's header revision is the store's after it: the put's.
    if (ok && revision) *revision = int_field(j.at("header"), "revision");
    if (!ok && current) {
      auto kvs = kvs_from(j.at("responses").at(0).at("response_range"));
      *current = kvs.empty() ? std::optional<EtcdKv>{} : std::optional<EtcdKv>{std::move(kvs.front())};
    }
    return ok;
  });
}

Result<bool> EtcdClient::erase_if(std::string_view key, std::int64_t expected_revision) {
  const json req = {{"compare", json::array({compare_mod(key, expected_revision)})},
                    {"success", json::array({{{"request_delete_range", {{"key", base64(key)}}}}})}};
  return parse<bool>(call("kv/txn", req.dump()), "txn", [](const json& j) { return j.value("succeeded", false); });
}

Result<std::int64_t> EtcdClient::grant_lease(std::chrono::seconds ttl) {
  if (ttl.count() < 1) return Error{Errc::invalid_argument, "etcd: a lease's TTL must be at least 1 s"};
  const json req = {{"TTL", std::to_string(ttl.count())}};
  return parse<std::int64_t>(call("lease/grant", req.dump()), "lease grant", [](const json& j) {
    if (j.contains("error") && !j.at("error").get<std::string>().empty())
      throw std::invalid_argument(j.at("error").get<std::string>());
    const auto id = int_field(j, "ID");
    if (id == 0) throw std::invalid_argument("no lease ID");
    return id;
  });
}

Result<std::int64_t> EtcdClient::keep_alive(std::int64_t lease) {
  const json req = {{"ID", std::to_string(lease)}};
  // A stream of answers on gRPC; one request gives one answer, in "result".
  return parse<std::int64_t>(call("lease/keepalive", req.dump()), "lease keepalive",
                             [](const json& j) { return int_field(j.at("result"), "TTL"); });
}

Status EtcdClient::revoke_lease(std::int64_t lease) {
  const json req = {{"ID", std::to_string(lease)}};
  auto r = call("lease/revoke", req.dump());
  if (!r) return r.error();
  return {};
}

}  // namespace ringbus::cluster
