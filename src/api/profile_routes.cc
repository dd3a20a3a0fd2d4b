#include "api/profile_routes.h"

#include <cctz/time_zone.h>

#include <chrono>
#include <mutex>

#include "api/json_body.h"
#include "core/ids.h"
#include "stream/feature_store.h"
#include "stream/timezones.h"

namespace herald::api {

namespace {

using json = nlohmann::json;
using profile::Segment;

constexpr size_t kMaxSample = 1000;

HttpResponse ExpressionError(const Status& s, size_t position) {
  HttpResponse r = ErrorResponse(400, "invalid_expression", s.message());
  json body = json::parse(r.body);
  body["error"]["position"] = position;
  r.body = body.dump();
  return r;
}

void UpsertUsers(const ProfileRoutesContext& ctx, HttpRequest& req, Respond respond) {
  auto updates = profile::ParseUsers(req.body, req.tenant_id, ctx.max_batch);
  if (!updates.ok()) {
    const bool syntax = updates.status().message().rfind("invalid JSON", 0) == 0;
    return respond(ErrorResponse(400, syntax ? "invalid_json" : "invalid_argument", updates.status().message()));
  }
  const size_t n = updates->size();
  // Nothing is appended unless every user is valid; the answer waits until the
  // updates are durable in the log.
  ctx.pipeline->UpdateUsers(std::move(*updates), [n, respond](Status s) {
    if (!s.ok()) return respond(ErrorResponse(503, "unavailable", "users not stored: " + s.message()));
    respond(JsonResponse({{"upserted", n}}));
  });
}

void GetUser(const ProfileRoutesContext& ctx, HttpRequest& req, Respond respond) {
  const std::string tenant = req.tenant_id, user = req.params["id"];
  if (Status s = ValidateId("id", user); !s.ok()) return respond(ErrorResponse(s));
  auto h = ctx.store;
  const Micros now = ctx.clock->Now();
  ctx.pipeline->RunOnUser(
      user,
      [=](stream::Partition& p) -> Result<std::string> {
        const std::string tz = p.features().ZoneOf(tenant, user).name();
        std::string out;
        if (!p.Get(h).UserJson(tenant, user, tz, now, &out)) {
          return Status::NotFound("no user " + user);
        }
        return out;
      },
      std::function<void(Result<std::string>)>([respond](Result<std::string> r) {
        if (!r.ok()) return respond(ErrorResponse(r.status()));
        HttpResponse resp;
        resp.body = std::move(*r);
        respond(std::move(resp));
      }));
}

// Matches over every partition, each on its shard: the total and a sample.
struct Preview {
  size_t count = 0;
  std::vector<std::string> sample;
};

void RunSegment(const ProfileRoutesContext& ctx, const std::string& tenant, std::shared_ptr<const Segment> seg,
                size_t sample, std::function<void(Result<Preview>)> done) {
  auto h = ctx.store;
  const Micros now = ctx.clock->Now();
  ctx.pipeline->RunOnEveryPartition(
      [=](stream::Partition& p) -> Preview {
        Preview out;
        out.count = p.Get(h).Match(*seg, tenant, now, [&](std::string_view id) {
          if (out.sample.size() < sample) out.sample.emplace_back(id);
          return true;
        });
        return out;
      },
      std::function<void(Result<std::vector<Preview>>)>([sample, done](Result<std::vector<Preview>> parts) {
        if (!parts.ok()) return done(parts.status());
        Preview all;
        for (auto& p : *parts) {
          all.count += p.count;
          for (auto& id : p.sample) {
            if (all.sample.size() < sample) all.sample.push_back(std::move(id));
          }
        }
        done(std::move(all));
      }));
}

void PreviewSegment(const ProfileRoutesContext& ctx, HttpRequest& req, Respond respond) {
  auto body = ParseJsonObject(req);
  if (!body.ok()) return respond(ErrorResponse(400, "invalid_json", body.status().message()));
  const json& j = *body;
  for (const auto& [k, v] : j.items()) {
    if (k != "expr" && k != "segment" && k != "sample") {
      return respond(ErrorResponse(400, "unknown_field", k + ": unknown field (expr, segment, sample)"));
    }
  }
  size_t sample = 10;
  if (j.contains("sample")) {
    if (!j["sample"].is_number_integer() || j["sample"].get<long long>() < 0 ||
        j["sample"].get<long long>() > static_cast<long long>(kMaxSample)) {
      return respond(ErrorResponse(400, "invalid_argument", "sample: must be an integer between 0 and 1000"));
    }
    sample = j["sample"].get<size_t>();
  }
  std::shared_ptr<const Segment> seg;
  if (j.contains("segment")) {
    if (!j["segment"].is_string()) return respond(ErrorResponse(400, "invalid_argument", "segment: must be a string"));
    auto saved = ctx.segments->Find(req.tenant_id, j["segment"].get<std::string>());
    if (!saved) return respond(ErrorResponse(404, "not_found", "segment: no saved segment of that name"));
    seg = std::make_shared<const Segment>(std::move(saved->compiled));
  } else {
    if (!j.contains("expr") || !j["expr"].is_string()) {
      return respond(ErrorResponse(400, "invalid_argument", "expr: required string (or segment: a saved name)"));
    }
    size_t pos = 0;
    auto compiled = Segment::Compile(j["expr"].get<std::string>(), &pos);
    if (!compiled.ok()) return respond(ExpressionError(compiled.status(), pos));
    seg = std::make_shared<const Segment>(std::move(*compiled));
  }
  const auto started = std::chrono::steady_clock::now();
  std::string printed = seg->ToString();
  RunSegment(ctx, req.tenant_id, seg, sample, [respond, started, printed](Result<Preview> r) {
    if (!r.ok()) return respond(ErrorResponse(r.status()));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    respond(JsonResponse({{"count", r->count}, {"sample", r->sample}, {"expr", printed}, {"took_ms", ms}}));
  });
}

json SegmentJson(const profile::SavedSegment& s) { return {{"name", s.name}, {"expr", s.expr}}; }

void SaveSegment(const ProfileRoutesContext& ctx, HttpRequest& req, Respond respond) {
  auto body = ParseJsonObject(req);
  if (!body.ok()) return respond(ErrorResponse(400, "invalid_json", body.status().message()));
  const json& j = *body;
  for (const auto& [k, v] : j.items()) {
    if (k != "name" && k != "expr") return respond(ErrorResponse(400, "unknown_field", k + ": unknown field (name, expr)"));
  }
  if (!j.contains("name") || !j["name"].is_string()) return respond(ErrorResponse(400, "invalid_argument", "name: required string"));
  if (!j.contains("expr") || !j["expr"].is_string()) return respond(ErrorResponse(400, "invalid_argument", "expr: required string"));
  const std::string name = j["name"].get<std::string>(), expr = j["expr"].get<std::string>();
  if (Status s = ValidateId("name", name); !s.ok()) return respond(ErrorResponse(s));
  size_t pos = 0;
  Status s = ctx.segments->Save(req.tenant_id, name, expr, &pos);
  if (s.code() == Code::kInvalidArgument) return respond(ExpressionError(s, pos));
  if (!s.ok()) return respond(ErrorResponse(s));
  respond(JsonResponse({{"name", name}, {"expr", expr}}, 201));
}

}  // namespace

void RegisterProfileRoutes(Router& router, const ProfileRoutesContext& ctx) {
  router.Add("POST", "/v1/users", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { UpsertUsers(ctx, req, std::move(respond)); });
  router.Add("GET", "/v1/users/{id}", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { GetUser(ctx, req, std::move(respond)); });
  router.Add("GET", "/v1/classes", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    auto h = ctx.store;
    const std::string tenant = req.tenant_id;
    const Micros now = ctx.clock->Now();
    auto strategies = ctx.strategies;
    auto holidays = ctx.holidays;
    using Counts = std::array<size_t, profile::kClassCount>;
    ctx.pipeline->RunOnEveryPartition(
        [=](stream::Partition& p) -> Counts { return p.Get(h).ClassCounts(tenant, now); },
        std::function<void(Result<std::vector<Counts>>)>([respond, strategies, holidays](Result<std::vector<Counts>> parts) {
          if (!parts.ok()) return respond(ErrorResponse(parts.status()));
          json classes = json::array();
          for (size_t c = 0; c < profile::kClassCount; ++c) {
            size_t n = 0;
            for (const auto& p : *parts) n += p[c];
            const profile::Strategy& s = (*strategies)[c];
            json windows = json::array();
            for (const auto& w : s.windows) windows.push_back(profile::WindowText(w));
            classes.push_back({{"class", profile::ClassName(static_cast<profile::UserClass>(c))},
                               {"users", n},
                               {"strategy", {{"focus", s.focus}, {"trigger", s.trigger}, {"windows", windows}}}});
          }
          respond(JsonResponse({{"classes", classes}, {"holidays", holidays ? *holidays : std::vector<std::string>{}}}));
        }));
  });
  router.Add("POST", "/v1/segments/preview", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { PreviewSegment(ctx, req, std::move(respond)); });
  router.Add("POST", "/v1/segments", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { SaveSegment(ctx, req, std::move(respond)); });
  router.Add("GET", "/v1/segments", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    json list = json::array();
    for (const auto& s : ctx.segments->List(req.tenant_id)) list.push_back(SegmentJson(s));
    respond(JsonResponse({{"segments", list}}));
  });
  router.Add("GET", "/v1/segments/{name}", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    auto s = ctx.segments->Find(req.tenant_id, req.params["name"]);
    if (!s) return respond(ErrorResponse(404, "not_found", "no segment named " + req.params["name"]));
    respond(JsonResponse(SegmentJson(*s)));
  });
  router.Add("DELETE", "/v1/segments/{name}", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    Status s = ctx.segments->Remove(req.tenant_id, req.params["name"]);
    if (!s.ok()) return respond(ErrorResponse(s));
    respond(JsonResponse({{"deleted", req.params["name"]}}));
  });
}

}  // namespace herald::api
