// A route of a node's HTTP API called in process, as the HTTP server would call
// it: how the simulator and the demo reach herald like an app's backend.
#pragma once

#include <future>
#include <string>
#include <utility>

#include "api/http.h"
#include "api/router.h"
#include "node/node.h"

namespace herald::sim {

// The in-process API: a route of the node's router, as the HTTP server calls it.
inline std::pair<int, std::string> Call(node::Node& n, const std::string& key, const char* method, const std::string& path,
                                 std::string body = {}) {
  api::HttpRequest req;
  req.method = method;
  req.target = path;
  req.path = path;
  req.body = std::move(body);
  req.headers = {{"authorization", "Bearer " + key}, {"content-type", "application/json"}};
  req.remote = "127.0.0.1:0";
  std::promise<api::HttpResponse> answer;
  n.router().Handle(req, [&](api::HttpResponse r) { answer.set_value(std::move(r)); });
  api::HttpResponse r = answer.get_future().get();
  return {r.status, std::move(r.body)};
}

}  // namespace herald::sim
