// The server side of the control channel: operations by table (op name ->
// handler). The topic and group operations decode a request's fields, call
// the broker (ringbus::Broker: where topic and group operations live for
// every front-end) and encode its answer; ringbusd adds its own (ping,
// stats). Spec of each operation: tools/README.md, "Operations".
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "control_protocol.h"
#include "ringbus/broker.h"

namespace ringbus::control {

class ControlService {
 public:
  using Handler = std::function<Json(const Json& request)>;
  // Told of every change a request made (a topic created, a group reset...),
  // in a sentence: ringbusd logs it.
  using ChangeLog = std::function<void(const std::string& what)>;

  // The topic and group operations of `broker`.
  ControlService(Broker& broker, ChangeLog changes);
  // Adds an operation, or replaces one of the same name.
  void add(std::string op, Handler handler);
  // The handler of an operation (empty if there is none): for one that
  // replaces it and hands some requests on to it.
  Handler handler(std::string_view op) const;
  // Answers one parsed request (parse_request): its operation's response, or
  // an error response naming what is wrong (an unknown operation, a missing
  // or malformed field).
  Json handle(const Json& request) const;
  std::vector<std::string> operations() const;

 private:
  std::map<std::string, Handler, std::less<>> ops_;
};

// A request's string field, for a handler: a missing or mistyped one ends
// the request (thrown; handle() answers invalid_argument naming the key).
std::string require_string(const Json& req, const char* key);

// {"ok": true} plus `fields`.
Json ok_response(Json fields = Json::object());

}  // namespace ringbus::control
