// Router: maps method + path to a handler, authenticates, and turns every miss
// into the JSON error of the REST contract.
//
// Patterns are literal segments and "{name}" parameters: "/v1/users/{id}/features".
// Routes are registered at start-up, before the server starts; Handle() is then
// safe from any thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "api/http.h"

namespace herald {
class MetricsRegistry;
class Counter;
class Histogram;
}  // namespace herald

namespace herald::api {

enum class Access {
  kPublic,  // no key needed (health, metrics, version)
  kTenant,  // any tenant's key; the handler sees req.tenant_id
  kAdmin,   // an admin tenant's key
};

// Resolves a bearer key to its tenant. Sets *is_admin. Returns Unauthenticated
// for an unknown key.
using Authenticator = std::function<Result<std::string>(std::string_view key, bool* is_admin)>;

class Router {
 public:
  Router(Authenticator auth, MetricsRegistry* metrics);

  void Add(std::string method, std::string pattern, Access access, Handler handler);

  // Routes one request; always responds exactly once.
  void Handle(HttpRequest& req, Respond respond);

  // Every route: (method, pattern), in registration order.
  std::vector<std::pair<std::string, std::string>> Routes() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Route& r : routes_) out.emplace_back(r.method, r.pattern);
    return out;
  }

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{x}" marks a parameter
    Access access;
    Handler handler;
  };
  static bool Match(const Route& r, const std::vector<std::string_view>& path,
                    std::map<std::string, std::string>* params);
  Respond Instrument(const std::string& route, Respond respond);

  Authenticator auth_;
  MetricsRegistry* metrics_;
  std::vector<Route> routes_;
};

// Splits "/a/b/" into {"a","b"}.
std::vector<std::string_view> SplitPath(std::string_view path);

}  // namespace herald::api
