// Both ends of the control channel (control_protocol.h): the broker's
// server, which answers requests on a thread of its own, and the client.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "control_protocol.h"

namespace ringbus::control {

// Answers requests: handler(request) -> response, one request at a time (admin
// requests are rare and short; the data path never comes here). Requests come
// already checked by parse_request; a handler that throws gets an error
// response sent for it. A client that sends a line longer than kMaxLineBytes
// or garbage gets an error response; garbage does not close the connection.
class ControlServer {
 public:
  using Handler = std::function<Json(const Json& request)>;
  // Listens on `path` (a stale socket file there is replaced: the caller owns
  // the instance) and starts the serving thread.
  static Result<std::unique_ptr<ControlServer>> start(std::string path, Handler handler);
  ~ControlServer();  // stop()
  // Stops serving, closes every connection and removes the socket file.
  void stop();
  const std::string& path() const noexcept;

 private:
  struct Impl;
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One connection to a broker. Not thread-safe: one request at a time.
class ControlClient {
 public:
  static Result<ControlClient> connect(std::string_view instance,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ControlClient(ControlClient&&) noexcept;
  ControlClient& operator=(ControlClient&&) noexcept;
  ~ControlClient();

  // Sends {"v": kProtocolVersion, "op": op, ...fields} and returns the
  // response when "ok" is true; its Error (the broker's words) when not.
  Result<Json> call(std::string_view op, Json fields = Json::object());
  // Sends a raw line (tests: garbage, other versions) and returns the
  // response as it came.
  Result<Json> call_raw(std::string_view line);

 private:
  ControlClient(int fd, std::string instance, std::chrono::milliseconds timeout);
  int fd_ = -1;
  std::string instance_;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
};

}  // namespace ringbus::control
