#include "api/engine_routes.h"

#include "api/json_body.h"
#include "core/ids.h"
#include "core/time_format.h"

namespace herald::api {

namespace {

using json = nlohmann::json;

json Time(Micros t) { return t ? json(FormatIsoTime(t)) : json(nullptr); }

void Push(const EngineRoutesContext& ctx, HttpRequest& req, Respond respond) {
  auto body = ParseJsonObject(req);
  if (!body.ok()) return respond(ErrorResponse(400, "invalid_json", body.status().message()));
  const json& j = *body;
  for (const auto& [k, v] : j.items()) {
    if (k != "user_id" && k != "account_id" && k != "message" && k != "campaign_id") {
      return respond(ErrorResponse(400, "unknown_field", k + ": unknown field (user_id, account_id, message, campaign_id)"));
    }
  }
  engine::PushRequest r;
  r.tenant = req.tenant_id;
  for (auto [key, to] : {std::pair{"user_id", &r.user_id}, std::pair{"account_id", &r.account_id}}) {
    if (!j.contains(key) || !j[key].is_string()) {
      return respond(ErrorResponse(400, "invalid_argument", std::string(key) + ": required string"));
    }
    *to = j[key].get<std::string>();
    if (Status s = ValidateId(key, *to); !s.ok()) return respond(ErrorResponse(s));
  }
  if (j.contains("campaign_id")) {
    if (!j["campaign_id"].is_string()) return respond(ErrorResponse(400, "invalid_argument", "campaign_id: must be a string"));
    r.campaign_id = j["campaign_id"].get<std::string>();
    if (Status s = ValidateId("campaign_id", r.campaign_id); !s.ok()) return respond(ErrorResponse(s));
  }
  if (!j.contains("message")) return respond(ErrorResponse(400, "invalid_argument", "message: required object"));
  auto m = engine::ParseMessage(j["message"]);
  if (!m.ok()) return respond(ErrorResponse(m.status()));
  r.message = std::move(*m);
  ctx.engine->Push(std::move(r), [respond](Result<engine::PushResult> res) {
    if (!res.ok()) {
      const bool account = res.status().message().rfind("account_id", 0) == 0;
      if (res.status().code() == Code::kNotFound) {
        return respond(ErrorResponse(404, account ? "unknown_account" : "unknown_user", res.status().message()));
      }
      return respond(ErrorResponse(res.status()));
    }
    const policy::Decision& d = res->decision;
    json out = {{"message_id", res->message_id},
                {"decision", d.verdict == policy::Verdict::kAllow   ? "allow"
                             : d.verdict == policy::Verdict::kDefer ? "defer"
                                                                    : "suppress"},
                {"rule", policy::RuleName(d.rule)},
                {"until", Time(d.until)},
                {"explanation", res->explanation}};
    respond(JsonResponse(out));
  });
}

void GetMessage(const EngineRoutesContext& ctx, HttpRequest& req, Respond respond) {
  const std::string id = req.params["id"];
  if (Status s = ValidateId("id", id); !s.ok()) return respond(ErrorResponse(s));
  ctx.engine->FindMessage(req.tenant_id, id, [respond, id](Result<engine::MessageRecord> r) {
    if (!r.ok()) return respond(ErrorResponse(r.status()));
    json receipts = json::array();
    for (const auto& rc : r->receipts) {
      json one = {{"type", rc.type}, {"at", FormatIsoTime(rc.at)}};
      if (!rc.article_id.empty()) one["article_id"] = rc.article_id;
      receipts.push_back(std::move(one));
    }
    json out = {{"id", id},
                {"user_id", r->user_id},
                {"account_id", r->account_id},
                {"campaign_id", r->campaign_id.empty() ? json(nullptr) : json(r->campaign_id)},
                {"decision", "allow"},
                {"sent_at", Time(r->sent_at)},
                {"expires_at", Time(r->expires_at)},
                {"outcome", r->outcome.empty() ? json(nullptr) : json(r->outcome)},
                {"outcome_at", Time(r->outcome_at)},
                {"receipts", receipts},
                {"pctr", r->pctr < 0 ? json(nullptr) : json(r->pctr)},
                {"model_version", r->model_version}};
    if (r->budget_day) {
      // An ad: its price per click and its charge, once delivered.
      out["price"] = static_cast<double>(r->price_micros) / 1e6;
      out["charge"] = static_cast<double>(r->charge_micros) / 1e6;
      out["charged"] = r->outcome == "delivered";
    }
    if (!r->articles.empty()) {
      json articles = json::array();
      for (const auto& a : r->articles) articles.push_back(a.id);
      out["articles"] = articles;  // a digest's, as listed
    }
    respond(JsonResponse(out));
  });
}

HttpResponse CampaignError(const Status& s, size_t position) {
  if (s.code() == Code::kNotFound && s.message().rfind("account_id", 0) == 0) {
    return ErrorResponse(404, "unknown_account", s.message());
  }
  if (s.code() == Code::kInvalidArgument && s.message().rfind("target.segment", 0) == 0) {
    HttpResponse r = ErrorResponse(400, "invalid_expression", s.message());
    json body = json::parse(r.body);
    body["error"]["position"] = position;
    r.body = body.dump();
    return r;
  }
  return ErrorResponse(s);
}

void CreateCampaign(const EngineRoutesContext& ctx, HttpRequest& req, Respond respond) {
  auto c = engine::ParseCampaign(req.body);
  if (!c.ok()) {
    const bool syntax = c.status().message() == "invalid JSON";
    return respond(ErrorResponse(400, syntax ? "invalid_json" : "invalid_argument", c.status().message()));
  }
  std::string key(req.Header("idempotency-key"));
  if (key.size() > 128) return respond(ErrorResponse(400, "invalid_argument", "Idempotency-Key: at most 128 bytes"));
  ctx.engine->CreateCampaign(req.tenant_id, std::move(*c), key,
                             [respond](Result<engine::Campaign> r, bool created, size_t position) {
                               if (!r.ok()) return respond(CampaignError(r.status(), position));
                               respond(JsonResponse({{"id", r->id}, {"status", r->status}}, created ? 201 : 200));
                             });
}

}  // namespace

void RegisterEngineRoutes(Router& router, const EngineRoutesContext& ctx) {
  router.Add("POST", "/v1/push", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { Push(ctx, req, std::move(respond)); });
  router.Add("POST", "/v1/campaigns", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { CreateCampaign(ctx, req, std::move(respond)); });
  router.Add("GET", "/v1/campaigns/{id}", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    ctx.engine->CampaignStatus(req.tenant_id, req.params["id"], [respond](Result<std::string> r) {
      if (!r.ok()) return respond(ErrorResponse(r.status()));
      HttpResponse out;
      out.body = std::move(*r);
      respond(std::move(out));
    });
  });
  router.Add("GET", "/v1/campaigns", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    json list = json::array();
    for (const auto& c : ctx.campaigns->List(req.tenant_id)) {
      list.push_back({{"id", c.id}, {"account_id", c.account_id}, {"status", c.status},
                      {"created_at", FormatIsoTime(c.created_at)}, {"targeted", c.targeted}, {"sent", c.sent}});
    }
    respond(JsonResponse({{"campaigns", list}}));
  });
  router.Add("POST", "/v1/campaigns/{id}/cancel", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    Status s = ctx.engine->Cancel(req.tenant_id, req.params["id"]);
    if (!s.ok()) return respond(ErrorResponse(s));
    respond(JsonResponse({{"id", req.params["id"]}, {"status", "cancelling"}}));
  });
  router.Add("GET", "/v1/messages/{id}", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { GetMessage(ctx, req, std::move(respond)); });
}

}  // namespace herald::api
