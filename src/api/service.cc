#include "api/service.h"

#include <cmath>

#include "api/json_body.h"
#include "core/time_format.h"
#include "core/version.h"

namespace herald::api {
namespace {

nlohmann::json ClockJson(const Clock& clock) {
  Micros now = clock.Now();
  return {{"now", FormatIsoTime(now)},
          {"now_unix", static_cast<double>(now) / kMicrosPerSecond},
          {"virtual", clock.IsVirtual()}};
}

// Reads a time field: an ISO-8601 string with a zone, or unix seconds.
Result<Micros> TimeField(const nlohmann::json& v, const char* field) {
  if (v.is_number()) {
    double s = v.get<double>();
    if (!std::isfinite(s) || s < 0 || s > 253402300799.0) {
      return Status::InvalidArgument(std::string(field) + ": unix seconds out of range");
    }
    return static_cast<Micros>(std::llround(s * kMicrosPerSecond));
  }
  if (v.is_string()) {
    auto t = ParseIsoTime(v.get<std::string>());
    if (!t.ok()) return Status::InvalidArgument(std::string(field) + ": " + t.status().message());
    return t;
  }
  return Status::InvalidArgument(std::string(field) +
                                 ": expected an ISO-8601 string or unix seconds");
}

void MoveClock(const ServiceContext& ctx, HttpRequest& req, Respond& respond) {
  if (!ctx.virtual_clock) {
    return respond(ErrorResponse(409, "clock_not_virtual",
                                 "the clock is the system clock; start herald with "
                                 "--virtual-clock to move it"));
  }
  auto body = ParseJsonObject(req);
  if (!body.ok()) return respond(ErrorResponse(400, "invalid_json", body.status().message()));
  const auto& j = *body;
  bool has_adv = j.contains("advance_s"), has_set = j.contains("set");
  if (has_adv == has_set) {
    return respond(ErrorResponse(400, "invalid_argument",
                                 "send exactly one of {\"advance_s\": N} or {\"set\": TIME}"));
  }
  if (has_adv) {
    const auto& a = j["advance_s"];
    if (!a.is_number() || !std::isfinite(a.get<double>()) || a.get<double>() < 0 ||
        a.get<double>() > 100.0 * 365 * 86400) {
      return respond(ErrorResponse(400, "invalid_argument",
                                   "advance_s must be a number of seconds between 0 and 100 years"));
    }
    ctx.virtual_clock->Advance(static_cast<Micros>(std::llround(a.get<double>() * kMicrosPerSecond)));
  } else {
    auto t = TimeField(j["set"], "set");
    if (!t.ok()) return respond(ErrorResponse(400, "invalid_argument", t.status().message()));
    if (!ctx.virtual_clock->Set(*t)) {
      return respond(ErrorResponse(409, "clock_backwards",
                                   "the virtual clock never moves backwards; it is already " +
                                       FormatIsoTime(ctx.virtual_clock->Now())));
    }
  }
  respond(JsonResponse(ClockJson(*ctx.virtual_clock)));
}

nlohmann::json TenantJson(const Tenant& t) {
  return {{"id", t.id}, {"name", t.name}, {"admin", t.admin},
          {"created_at", FormatIsoTime(t.created_at)}};
}

void CreateTenant(const ServiceContext& ctx, HttpRequest& req, Respond& respond) {
  auto body = ParseJsonObject(req);
  if (!body.ok()) return respond(ErrorResponse(400, "invalid_json", body.status().message()));
  const auto& j = *body;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "id" && it.key() != "name" && it.key() != "admin") {
      return respond(ErrorResponse(400, "unknown_field", "unknown field \"" + it.key() +
                                                             "\"; expected id, name, admin"));
    }
  }
  if (!j.contains("id") || !j["id"].is_string()) {
    return respond(ErrorResponse(400, "invalid_argument", "id: required string"));
  }
  if (j.contains("name") && !j["name"].is_string()) {
    return respond(ErrorResponse(400, "invalid_argument", "name: must be a string"));
  }
  if (j.contains("admin") && !j["admin"].is_boolean()) {
    return respond(ErrorResponse(400, "invalid_argument", "admin: must be true or false"));
  }
  auto created = ctx.tenants->Create(j["id"].get<std::string>(), j.value("name", std::string()),
                                     j.value("admin", false));
  if (!created.ok()) return respond(ErrorResponse(created.status()));
  nlohmann::json out = TenantJson(created->tenant);
  out["api_key"] = created->api_key;
  respond(JsonResponse(out, 201));
}

}  // namespace

void RegisterCoreRoutes(Router& router, const ServiceContext& ctx) {
  router.Add("GET", "/healthz", Access::kPublic, [](HttpRequest&, Respond respond) {
    respond(JsonResponse({{"status", "ok"}}));
  });
  router.Add("GET", "/metrics", Access::kPublic, [ctx](HttpRequest&, Respond respond) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = ctx.metrics->Render();
    respond(std::move(r));
  });
  router.Add("GET", "/v1/version", Access::kPublic, [](HttpRequest&, Respond respond) {
    respond(JsonResponse({{"name", "herald"}, {"version", HERALD_VERSION}, {"api", "v1"}}));
  });
  router.Add("GET", "/v1/tenants", Access::kAdmin, [ctx](HttpRequest&, Respond respond) {
    nlohmann::json list = nlohmann::json::array();
    for (const Tenant& t : ctx.tenants->List()) list.push_back(TenantJson(t));
    respond(JsonResponse({{"tenants", list}}));
  });
  router.Add("POST", "/v1/tenants", Access::kAdmin,
             [ctx](HttpRequest& req, Respond respond) { CreateTenant(ctx, req, respond); });
  router.Add("GET", "/v1/admin/clock", Access::kAdmin, [ctx](HttpRequest&, Respond respond) {
    respond(JsonResponse(ClockJson(*ctx.clock)));
  });
  router.Add("POST", "/v1/admin/clock", Access::kAdmin,
             [ctx](HttpRequest& req, Respond respond) { MoveClock(ctx, req, respond); });
}

}  // namespace herald::api
