#include "api/policy_routes.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "api/json_body.h"
#include "core/ids.h"
#include "core/time_format.h"
#include "stream/feature_store.h"

namespace herald::api {
namespace {

using nlohmann::json;

// TIME: an ISO-8601 string with a zone, or unix seconds.
Result<Micros> ParseTime(const json& v, const std::string& field) {
  if (v.is_number()) {
    double s = v.get<double>();
    if (!std::isfinite(s) || s < 946684800.0 || s >= 4102444800.0) {
      return Status::InvalidArgument(field + ": must be a time between 2000 and 2100");
    }
    return static_cast<Micros>(s * kMicrosPerSecond);
  }
  if (v.is_string()) {
    auto t = ParseIsoTime(v.get<std::string>());
    if (!t.ok()) return Status::InvalidArgument(field + ": " + t.status().message());
    if (*t < stream::kMinEventTime || *t >= stream::kMaxEventTime) {
      return Status::InvalidArgument(field + ": must be a time between 2000 and 2100");
    }
    return *t;
  }
  return Status::InvalidArgument(field + ": must be an ISO-8601 time or unix seconds");
}

Result<std::string> RequiredId(const json& j, const char* key, const std::string& where) {
  std::string field = where.empty() ? key : where + "." + key;
  if (!j.contains(key) || !j[key].is_string()) return Status::InvalidArgument(field + ": required string");
  std::string id = j[key].get<std::string>();
  HERALD_RETURN_IF_ERROR(ValidateId(field, id));
  return id;
}

// A 400 unknown_field naming the first key of `j` not in `allowed`, or nullopt.
std::optional<HttpResponse> UnknownField(const json& j, std::initializer_list<std::string_view> allowed,
                                         const std::string& prefix = "") {
  for (const auto& [k, v] : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return ErrorResponse(400, "unknown_field", prefix + k + ": unknown field");
    }
  }
  return std::nullopt;
}

// Answers with the JSON text a shard produced; a missing user is 404 unknown_user.
std::function<void(Result<std::string>)> AnswerFromShard(Respond respond) {
  return [respond](Result<std::string> r) {
    if (!r.ok()) {
      if (r.status().code() == Code::kNotFound) {
        return respond(ErrorResponse(404, "unknown_user", r.status().message()));
      }
      return respond(ErrorResponse(r.status()));
    }
    respond(HttpResponse{200, "application/json", *r, {}});
  };
}

json AccountJson(const policy::Account& a, const policy::AccountCounts& c) {
  json j = {{"id", a.id},
            {"type", std::string(policy::AccountTypeName(a.type))},
            {"name", a.name},
            {"quality", a.quality},
            {"created_at", FormatIsoTime(a.created_at)},
            {"window", {{"pushes", c.pushes}, {"not_interested", c.not_interested}, {"complaints", c.complaints}}}};
  if (a.pack) {
    j["pack"] = {{"factor", a.pack->factor}, {"from", FormatIsoTime(a.pack->from)}, {"to", FormatIsoTime(a.pack->to)}};
  }
  return j;
}

// The "pack" object of an account: {"factor":3..5,"from":TIME,"to":TIME}.
Result<policy::AccelerationPack> ParsePack(const json& p) {
  if (!p.is_object()) return Status::InvalidArgument("pack: must be an object {\"factor\",\"from\",\"to\"}");
  for (const auto& [k, v] : p.items()) {
    if (k != "factor" && k != "from" && k != "to") return Status::InvalidArgument("pack." + k + ": unknown field");
  }
  policy::AccelerationPack pack;
  if (!p.contains("factor") || !p["factor"].is_number() || !std::isfinite(p["factor"].get<double>()) ||
      p["factor"].get<double>() < policy::kMinPackFactor || p["factor"].get<double>() > policy::kMaxPackFactor) {
    return Status::InvalidArgument("pack.factor: must be a number between 3 and 5");
  }
  pack.factor = p["factor"].get<double>();
  for (const char* field : {"from", "to"}) {
    if (!p.contains(field) || !p[field].is_string()) {
      return Status::InvalidArgument(std::string("pack.") + field + ": required time (ISO-8601)");
    }
    auto t = ParseIsoTime(p[field].get<std::string>());
    if (!t.ok()) return Status::InvalidArgument(std::string("pack.") + field + ": " + t.status().message());
    (field[0] == 'f' ? pack.from : pack.to) = *t;
  }
  if (pack.to <= pack.from) return Status::InvalidArgument("pack.to: must be after pack.from");
  return pack;
}

void UpsertAccount(const PolicyRoutesContext& ctx, HttpRequest& req, Respond respond) {
  auto body = ParseJsonObject(req);
  if (!body.ok()) return respond(ErrorResponse(400, "invalid_json", body.status().message()));
  const json& j = *body;
  if (auto bad = UnknownField(j, {"id", "type", "name", "quality", "pack"})) return respond(std::move(*bad));
  auto id = RequiredId(j, "id", "");
  if (!id.ok()) return respond(ErrorResponse(id.status()));
  policy::Account a;
  a.id = *id;
  if (!j.contains("type") || !j["type"].is_string() ||
      !policy::ParseAccountType(j["type"].get<std::string>(), &a.type)) {
    return respond(ErrorResponse(400, "invalid_argument",
                                 "type: must be one of \"service\", \"subscription\", \"business\", \"ad\""));
  }
  if (j.contains("name")) {
    if (!j["name"].is_string() || j["name"].get<std::string>().size() > 256) {
      return respond(ErrorResponse(400, "invalid_argument", "name: must be a string of at most 256 bytes"));
    }
    a.name = j["name"].get<std::string>();
  }
  if (a.name.empty()) a.name = a.id;
  if (j.contains("quality")) {
    if (!j["quality"].is_number() || j["quality"].get<double>() < 0 || j["quality"].get<double>() > 1) {
      return respond(ErrorResponse(400, "invalid_argument", "quality: must be a number between 0 and 1"));
    }
    a.quality = j["quality"].get<double>();
  }
  if (j.contains("pack") && !j["pack"].is_null()) {
    auto pack = ParsePack(j["pack"]);
    if (!pack.ok()) return respond(ErrorResponse(400, "invalid_argument", pack.status().message()));
    a.pack = *pack;
  }
  if (Status s = ctx.accounts->Upsert(req.tenant_id, a); !s.ok()) {
    return respond(ErrorResponse(503, "unavailable", "account not stored: " + s.message()));
  }
  auto stored = ctx.accounts->Find(req.tenant_id, a.id);
  respond(JsonResponse(AccountJson(*stored, ctx.accounts->CountsOf(req.tenant_id, policy::AccountKey(a.id)))));
}

// Follow (or unfollow) events of a batch, all checked before any is appended.
void ChangeFollows(const PolicyRoutesContext& ctx, HttpRequest& req, Respond respond, bool follow) {
  auto body = ParseJsonObject(req);
  if (!body.ok()) return respond(ErrorResponse(400, "invalid_json", body.status().message()));
  const json& j = *body;
  if (!j.contains("follows") || !j["follows"].is_array()) {
    return respond(ErrorResponse(400, "invalid_argument", "follows: required array"));
  }
  if (j["follows"].size() > ctx.max_batch) {
    return respond(ErrorResponse(413, "too_many_follows",
                                 "follows: at most " + std::to_string(ctx.max_batch) + " per request"));
  }
  const Micros now = ctx.clock->Now();
  std::vector<stream::Event> events;
  size_t i = 0;
  for (const auto& f : j["follows"]) {
    std::string where = "follows[" + std::to_string(i++) + "]";
    if (!f.is_object()) return respond(ErrorResponse(400, "invalid_argument", where + ": must be an object"));
    auto user = RequiredId(f, "user_id", where);
    if (!user.ok()) return respond(ErrorResponse(user.status()));
    auto account = RequiredId(f, "account_id", where);
    if (!account.ok()) return respond(ErrorResponse(account.status()));
    if (!ctx.accounts->Find(req.tenant_id, *account)) {
      return respond(ErrorResponse(404, "unknown_account", where + ".account_id: no account " + *account));
    }
    stream::Event e;
    e.tenant = req.tenant_id;
    e.user_id = *user;
    e.type = follow ? stream::EventType::kFollow : stream::EventType::kUnfollow;
    e.ts = now;
    e.account_id = *account;
    if (follow && f.contains("followed_at")) {
      auto at = ParseTime(f["followed_at"], where + ".followed_at");
      if (!at.ok()) return respond(ErrorResponse(at.status()));
      if (*at > now) {
        return respond(ErrorResponse(400, "invalid_argument", where + ".followed_at: is in the future"));
      }
      e.attrs = json({{"followed_at", *at / kMicrosPerSecond}}).dump();
    }
    if (Status s = stream::Validate(e); !s.ok()) return respond(ErrorResponse(s));
    events.push_back(std::move(e));
  }
  size_t n = events.size();
  ctx.pipeline->Ingest(std::move(events), [n, follow, respond](Status s) {
    if (!s.ok()) return respond(ErrorResponse(503, "unavailable", "follows not stored: " + s.message()));
    respond(JsonResponse({{follow ? "upserted" : "removed", n}}));
  });
}

json DecisionJson(const policy::Decision& d, const std::string& account, const cctz::time_zone& tz,
                  const policy::PolicyConfig& cfg) {
  json j = {{"decision", std::string(policy::VerdictName(d.verdict))},
            {"rule", std::string(policy::RuleName(d.rule))},
            {"until", d.until ? json(FormatIsoTime(d.until)) : json(nullptr)},
            {"explanation", policy::Explain(d, account, tz, cfg)},
            {"counters", {{"count", d.count}, {"limit", d.limit}}},
            {"weight", d.weight}};
  if (d.since) j["counters"]["since"] = FormatIsoTime(d.since);
  if (d.day_after_follow) j["counters"]["day_after_follow"] = d.day_after_follow;
  if (d.rule == policy::Rule::kContention) {
    // The slot's auction: this push's value, the winner's, and the candidates.
    j.erase("weight");
    j["contention"] = {{"value", d.weight}, {"winner_value", d.rate}, {"candidates", d.count}};
  }
  return j;
}

void Decisions(const PolicyRoutesContext& ctx, HttpRequest& req, Respond respond) {
  size_t limit = 20;
  if (req.query.count("limit")) {
    const std::string& l = req.query["limit"];
    char* end = nullptr;
    unsigned long v = std::strtoul(l.c_str(), &end, 10);
    if (l.empty() || *end || v < 1 || v > 1000) {
      return respond(ErrorResponse(400, "invalid_argument", "limit: must be an integer between 1 and 1000"));
    }
    limit = v;
  }
  std::string tenant = req.tenant_id, user = req.params["id"];
  auto handle = ctx.store;
  const policy::PolicyConfig* cfg = ctx.config;
  const policy::AccountDirectory* accounts = ctx.accounts;
  Micros now = ctx.clock->Now();
  ctx.pipeline->RunOnUser(
      user,
      [=](stream::Partition& p) -> Result<std::string> {
        policy::PolicyStore& store = p.Get(handle);
        Status failure;
        const bool has_policy = store.Find(tenant, user, &failure) != nullptr;
        if (!failure.ok()) return Status::Unavailable("the user's policy state cannot be read: " + failure.message());
        if (!has_policy && !p.features().Known(tenant, user)) {
          return Status::NotFound("no user " + user);
        }
        auto list = store.Decisions(tenant, user, limit, now);
        if (!list.ok()) return list.status();
        const cctz::time_zone& tz = p.features().ZoneOf(tenant, user);
        json out = json::array();
        for (const auto& r : *list) {
          std::string account = r.account_id.empty() ? "(no account)" : r.account_id;
          json d = DecisionJson(r.decision, account, tz, *cfg);
          d["at"] = FormatIsoTime(r.at);
          d["message_id"] = r.message_id;
          d["account_id"] = r.account_id;
          out.push_back(std::move(d));
        }
        (void)accounts;
        return json({{"user_id", user}, {"decisions", out}}).dump();
      },
      AnswerFromShard(respond));
}

void Check(const PolicyRoutesContext& ctx, HttpRequest& req, Respond respond) {
  auto body = ParseJsonObject(req);
  if (!body.ok()) return respond(ErrorResponse(400, "invalid_json", body.status().message()));
  const json& j = *body;
  if (auto bad = UnknownField(j, {"user_id", "account_id", "message", "at"})) return respond(std::move(*bad));
  auto user = RequiredId(j, "user_id", "");
  if (!user.ok()) return respond(ErrorResponse(user.status()));
  auto account_id = RequiredId(j, "account_id", "");
  if (!account_id.ok()) return respond(ErrorResponse(account_id.status()));
  auto account = ctx.accounts->Find(req.tenant_id, *account_id);
  if (!account) return respond(ErrorResponse(404, "unknown_account", "account_id: no account " + *account_id));
  Micros now = ctx.clock->Now();
  if (j.contains("at")) {
    auto at = ParseTime(j["at"], "at");
    if (!at.ok()) return respond(ErrorResponse(at.status()));
    now = *at;
  }
  policy::Candidate c;
  c.account = ctx.accounts->View(req.tenant_id, *account);
  c.user_hash = policy::SmallKey(*user);
  if (j.contains("message")) {
    const json& m = j["message"];
    if (!m.is_object()) return respond(ErrorResponse(400, "invalid_argument", "message: must be an object"));
    if (auto bad = UnknownField(m,
                                {"form", "title", "body", "media", "deep_link", "vars", "ttl_s", "expires_at",
                                 "priority", "urgent", "collapse_key", "idempotency_key"},
                                "message.")) {
      return respond(std::move(*bad));
    }
    if (m.contains("priority")) {
      if (!m["priority"].is_string() ||
          (m["priority"] != "normal" && m["priority"] != "high" && m["priority"] != "transactional")) {
        return respond(ErrorResponse(400, "invalid_argument",
                                     "message.priority: must be \"normal\", \"high\" or \"transactional\""));
      }
      if (m["priority"] == "transactional") c.lane = policy::Lane::kTransactional;
    }
    if (m.contains("urgent")) {
      if (!m["urgent"].is_boolean()) return respond(ErrorResponse(400, "invalid_argument", "message.urgent: must be true or false"));
      c.urgent = m["urgent"].get<bool>();
    }
    if (m.contains("ttl_s")) {
      if (!m["ttl_s"].is_number_unsigned() || m["ttl_s"].get<std::uint64_t>() < 1 ||
          m["ttl_s"].get<std::uint64_t>() > 30ull * 86400) {
        return respond(ErrorResponse(400, "invalid_argument", "message.ttl_s: must be an integer between 1 and 2592000"));
      }
      c.expires_at = now + static_cast<Micros>(m["ttl_s"].get<std::uint64_t>()) * kMicrosPerSecond;
    }
    if (m.contains("expires_at")) {
      auto at = ParseTime(m["expires_at"], "message.expires_at");
      if (!at.ok()) return respond(ErrorResponse(at.status()));
      c.expires_at = *at;
    }
    for (const char* k : {"collapse_key", "idempotency_key"}) {
      if (!m.contains(k)) continue;
      if (!m[k].is_string() || m[k].get<std::string>().empty() || m[k].get<std::string>().size() > 128) {
        return respond(ErrorResponse(400, "invalid_argument", std::string("message.") + k + ": must be a string of 1 to 128 bytes"));
      }
      (std::string(k) == "collapse_key" ? c.collapse_key : c.idempotency_key) = policy::SmallKey(m[k].get<std::string>());
    }
  }
  std::string tenant = req.tenant_id, uid = *user, aid = *account_id;
  auto handle = ctx.store;
  const policy::PolicyConfig* cfg = ctx.config;
  ctx.pipeline->RunOnUser(
      uid,
      [=](stream::Partition& p) -> Result<std::string> {
        policy::PolicyStore& store = p.Get(handle);
        Status failure;
        const policy::PolicyStore::User* u = store.Find(tenant, uid, &failure);
        if (!failure.ok()) return Status::Unavailable("the user's policy state cannot be read: " + failure.message());
        if (!u && !p.features().Known(tenant, uid)) return Status::NotFound("user_id: no user " + uid);
        static const policy::UserPolicy kEmpty{};
        const policy::FollowPolicy* f = u ? policy::PolicyStore::FollowOf(*u, c.account.key) : nullptr;
        const cctz::time_zone& tz = p.features().ZoneOf(tenant, uid);
        policy::Decision d = policy::Decide(u ? u->user : kEmpty, f, c, now, tz, *cfg);
        json out = DecisionJson(d, aid, tz, *cfg);
        out["following"] = f && f->followed_at != 0;
        return out.dump();
      },
      AnswerFromShard(respond));
}

}  // namespace

void RegisterPolicyRoutes(Router& router, const PolicyRoutesContext& ctx) {
  router.Add("POST", "/v1/accounts", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { UpsertAccount(ctx, req, std::move(respond)); });
  router.Add("GET", "/v1/accounts", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    json list = json::array();
    for (const auto& a : ctx.accounts->List(req.tenant_id)) {
      list.push_back(AccountJson(a, ctx.accounts->CountsOf(req.tenant_id, policy::AccountKey(a.id))));
    }
    respond(JsonResponse({{"accounts", list}}));
  });
  router.Add("GET", "/v1/accounts/{id}", Access::kTenant, [ctx](HttpRequest& req, Respond respond) {
    auto a = ctx.accounts->Find(req.tenant_id, req.params["id"]);
    if (!a) return respond(ErrorResponse(404, "unknown_account", "no account " + req.params["id"]));
    respond(JsonResponse(AccountJson(*a, ctx.accounts->CountsOf(req.tenant_id, policy::AccountKey(a->id)))));
  });
  router.Add("POST", "/v1/follows", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { ChangeFollows(ctx, req, std::move(respond), true); });
  router.Add("DELETE", "/v1/follows", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { ChangeFollows(ctx, req, std::move(respond), false); });
  router.Add("GET", "/v1/users/{id}/decisions", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { Decisions(ctx, req, std::move(respond)); });
  router.Add("POST", "/v1/policy/check", Access::kTenant,
             [ctx](HttpRequest& req, Respond respond) { Check(ctx, req, std::move(respond)); });
}

}  // namespace herald::api
