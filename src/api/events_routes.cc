#include "api/events_routes.h"

#include <mutex>
#include <set>

#include "api/gzip.h"
#include "api/json_body.h"
#include "api/tenants.h"
#include "core/ids.h"
#include "core/time_format.h"
#include "stream/feature_store.h"
#include "stream/parse.h"
#include "stream/timezones.h"

namespace herald::api {
namespace {

// Batches whose idempotency key is being processed right now: a concurrent retry
// of the same batch is refused instead of being ingested twice.
class InFlightKeys {
 public:
  bool Claim(const std::string& k) {
    std::lock_guard<std::mutex> l(mu_);
    return keys_.insert(k).second;
  }
  void Release(const std::string& k) {
    std::lock_guard<std::mutex> l(mu_);
    keys_.erase(k);
  }

 private:
  std::mutex mu_;
  std::set<std::string> keys_;
};

std::string AnswerJson(size_t accepted, const std::vector<stream::Rejected>& rejected) {
  nlohmann::json r = nlohmann::json::array();
  for (const auto& x : rejected) r.push_back({{"index", x.index}, {"error", x.error}});
  return nlohmann::json({{"accepted", accepted}, {"rejected", r}}).dump();
}

void IngestEvents(const EventRoutesContext& ctx, InFlightKeys& inflight, HttpRequest& req,
                  Respond respond) {
  std::string body = std::move(req.body);
  std::string_view encoding = req.Header("content-encoding");
  if (encoding == "gzip" || encoding == "deflate") {
    auto inflated = Gunzip(body, ctx.max_inflated_bytes);
    if (!inflated.ok()) {
      int status = inflated.status().code() == Code::kResourceExhausted ? 413 : 400;
      return respond(ErrorResponse(status, status == 413 ? "body_too_large" : "invalid_encoding",
                                   inflated.status().message()));
    }
    body = std::move(*inflated);
  } else if (!encoding.empty() && encoding != "identity") {
    return respond(ErrorResponse(415, "unsupported_encoding",
                                 "Content-Encoding must be gzip, deflate or identity"));
  }
  std::string_view ctype = req.Header("content-type");
  auto format = ctype.find("ndjson") != std::string_view::npos ? stream::BatchFormat::kNdjson
                                                               : stream::BatchFormat::kJsonArray;
  std::string idem = std::string(req.Header("idempotency-key"));
  std::string claim;
  if (!idem.empty()) {
    if (Status s = ValidateId("Idempotency-Key", idem); !s.ok()) return respond(ErrorResponse(s));
    claim = store::TenantKey(req.tenant_id, idem);
    // One attempt per key at a time: a retry racing the first attempt could
    // otherwise see neither's marks and append twice.
    if (!inflight.Claim(claim)) {
      return respond(ErrorResponse(409, "idempotency_key_in_use",
                                   "a batch with this Idempotency-Key is being ingested"));
    }
  }
  stream::ParsedBatch parsed =
      stream::ParseEvents(body, format, req.tenant_id, ctx.max_batch_events);
  if (parsed.fatal) {
    if (!claim.empty()) inflight.Release(claim);
    return respond(ErrorResponse(400, "invalid_json", *parsed.fatal));
  }
  // The answer depends only on the body, so a retry of the same body gets the
  // same answer without it being stored anywhere.
  std::string answer = AnswerJson(parsed.events.size(), parsed.rejected);
  if (claim.empty()) {
    ctx.pipeline->Ingest(std::move(parsed.events), [answer, respond](Status s) {
      if (!s.ok()) return respond(ErrorResponse(503, "unavailable", "events not stored: " + s.message()));
      respond(HttpResponse{200, "application/json", answer, {}});
    });
    return;
  }
  ctx.pipeline->IngestOnce(
      req.tenant_id, idem, Sha256Hex(body).substr(0, 32), std::move(parsed.events),
      [&inflight, claim, answer, respond](Result<stream::IngestOutcome> r) {
        inflight.Release(claim);
        if (!r.ok() && r.status().code() == Code::kFailedPrecondition) {
          return respond(ErrorResponse(422, "idempotency_key_reused", r.status().message()));
        }
        if (!r.ok()) {
          return respond(ErrorResponse(503, "unavailable",
                                       "events not stored (retry with the same "
                                       "Idempotency-Key): " + r.status().message()));
        }
        HttpResponse ok{200, "application/json", answer, {}};
        if (r->replayed) ok.headers.emplace_back("Idempotent-Replayed", "true");
        respond(std::move(ok));
      });
}

nlohmann::json CountsJson(const stream::OutcomeCounts& c) {
  return {{"sent", c.sent}, {"delivered", c.delivered}, {"opened", c.opened},
          {"converted", c.converted}};
}

void Windows(const EventRoutesContext& ctx, HttpRequest& req, Respond respond) {
  std::string size = req.query.count("size") ? req.query["size"] : "1m";
  Micros width = size == "1m" ? kMicrosPerMinute : size == "1h" ? kMicrosPerHour : 0;
  if (!width) return respond(ErrorResponse(400, "invalid_argument", "size: must be 1m or 1h"));
  Micros since = 0;
  if (req.query.count("since")) {
    auto t = ParseIsoTime(req.query["since"]);
    if (!t.ok()) return respond(ErrorResponse(400, "invalid_argument", "since: " + t.status().message()));
    since = *t;
  }
  // One class ("all" users, the default) or every class ("*").
  const std::string cls = req.query.count("class") ? req.query["class"] : "all";
  ctx.pipeline->GetWindows(req.tenant_id, width, since, [respond, width, cls](std::vector<stream::WindowRow> rows) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& r : rows) {
      if (cls != "*" && r.user_class != cls) continue;
      nlohmann::json w = CountsJson(r.counts);
      w["class"] = r.user_class;
      w["start"] = FormatIsoTime(r.start);
      w["size_s"] = width / kMicrosPerSecond;
      list.push_back(std::move(w));
    }
    respond(JsonResponse({{"windows", list}}));
  });
}

}  // namespace

void RegisterEventRoutes(Router& router, const EventRoutesContext& ctx) {
  static InFlightKeys inflight;  // one per process, like the router
  router.Add("POST", "/v1/events", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    IngestEvents(ctx, inflight, req, std::move(respond));
  });
  router.Add("GET", "/v1/stats/windows", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { Windows(ctx, req, std::move(respond)); });
  router.Add("GET", "/v1/stats/hours", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    ctx.pipeline->GetByLocalHour(req.tenant_id, [respond](std::array<stream::OutcomeCounts, 24> h) {
      nlohmann::json hours = nlohmann::json::array();
      for (const auto& c : h) hours.push_back(CountsJson(c));
      respond(JsonResponse({{"class", "all"}, {"by_local_hour", hours}}));
    });
  });
  router.Add("GET", "/v1/users/{id}/features", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) {
               std::string tenant = req.tenant_id, user = req.params["id"];
               auto features = ctx.pipeline->features();
               const Clock* clock = ctx.clock;
               ctx.pipeline->RunOnUser(
                   user,
                   [=](stream::Partition& p) -> Result<std::string> {
                     stream::FeatureStore& store = p.Get(features);
                     const stream::UserFeatures* f = store.Find(tenant, user);
                     if (!f) return Status::NotFound("no features for user " + user);
                     std::string out;
                     stream::ToJson(*f, user, store.ZoneOf(tenant, user), clock->Now(), &out);
                     return out;
                   },
                   std::function<void(Result<std::string>)>([respond](Result<std::string> r) {
                     if (!r.ok()) return respond(ErrorResponse(r.status()));
                     respond(HttpResponse{200, "application/json", *r, {}});
                   }));
             });
}

}  // namespace herald::api
