#include "api/router.h"

#include <chrono>

#include "core/metrics.h"

namespace herald::api {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

Router::Router(Authenticator auth, MetricsRegistry* metrics)
    : auth_(std::move(auth)), metrics_(metrics) {}

void Router::Add(std::string method, std::string pattern, Access access, Handler handler) {
  Route r{std::move(method), pattern, {}, access, std::move(handler)};
  for (auto seg : SplitPath(pattern)) r.segments.emplace_back(seg);
  routes_.push_back(std::move(r));
}

bool Router::Match(const Route& r, const std::vector<std::string_view>& path,
                   std::map<std::string, std::string>* params) {
  if (r.segments.size() != path.size()) return false;
  for (size_t i = 0; i < path.size(); ++i) {
    const std::string& seg = r.segments[i];
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
      (*params)[seg.substr(1, seg.size() - 2)] = std::string(path[i]);
    } else if (seg != path[i]) {
      return false;
    }
  }
  return true;
}

// Wraps `respond` to count the request by route and status and time it.
Respond Router::Instrument(const std::string& route, Respond respond) {
  if (!metrics_) return respond;
  auto start = std::chrono::steady_clock::now();
  MetricsRegistry* m = metrics_;
  return [m, route, start, respond = std::move(respond)](HttpResponse r) {
    m->GetCounter("herald_http_requests_total", "HTTP requests by route and status.",
                  {{"route", route}, {"code", std::to_string(r.status)}})
        .Inc();
    m->GetHistogram("herald_http_request_seconds", "HTTP request latency by route.",
                    LatencyBuckets(), {{"route", route}})
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    respond(std::move(r));
  };
}

void Router::Handle(HttpRequest& req, Respond respond) {
  auto path = SplitPath(req.path);
  const Route* found = nullptr;
  bool path_known = false;
  for (const Route& r : routes_) {
    std::map<std::string, std::string> params;
    if (!Match(r, path, &params)) continue;
    path_known = true;
    if (r.method != req.method && !(req.method == "HEAD" && r.method == "GET")) continue;
    found = &r;
    req.params = std::move(params);
    break;
  }
  if (!found) {
    respond = Instrument(path_known ? "(method)" : "(unknown)", std::move(respond));
    if (path_known) {
      return respond(ErrorResponse(405, "method_not_allowed",
                                   req.method + " is not allowed on " + req.path));
    }
    return respond(ErrorResponse(404, "route_not_found", "no route for " + req.method + " " +
                                                             req.path));
  }
  req.route = found->pattern;
  respond = Instrument(found->pattern, std::move(respond));
  if (found->access != Access::kPublic) {
    std::string_view authz = req.Header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (authz.size() <= kBearer.size() || authz.substr(0, kBearer.size()) != kBearer) {
      HttpResponse r = ErrorResponse(401, "unauthenticated",
                                     "missing API key: send Authorization: Bearer <key>");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return respond(std::move(r));
    }
    bool admin = false;
    auto tenant = auth_(authz.substr(kBearer.size()), &admin);
    if (!tenant.ok()) {
      HttpResponse r = ErrorResponse(401, "unauthenticated", "the API key is not valid");
      r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      return respond(std::move(r));
    }
    if (found->access == Access::kAdmin && !admin) {
      return respond(ErrorResponse(403, "permission_denied", "this route needs an admin key"));
    }
    req.tenant_id = std::move(*tenant);
    req.is_admin = admin;
  }
  found->handler(req, std::move(respond));
}

}  // namespace herald::api
