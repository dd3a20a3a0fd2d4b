#include "engine/campaigns.h"

#include <nlohmann/json.hpp>
#include <cctype>
#include <random>

#include "core/ids.h"
#include "core/log.h"
#include "core/time_format.h"
#include "engine/auction.h"
#include "engine/engine_store.h"
#include "store/keys.h"

namespace herald::engine {

namespace {

using json = nlohmann::json;

Status Bad(const std::string& field, const std::string& why) { return Status::InvalidArgument(field + ": " + why); }

std::string LocalTime(int minute) {
  char b[16];
  std::snprintf(b, sizeof b, "%02d:%02d", minute / 60, minute % 60);
  return b;
}

Result<Micros> Time(const json& v, const std::string& field) {
  if (v.is_number()) {
    const double s = v.get<double>();
    if (s >= 946684800 && s < 4102444800) return static_cast<Micros>(s * 1e6);
  } else if (v.is_string()) {
    auto t = ParseIsoTime(v.get<std::string>());
    if (t.ok()) return *t;
  }
  return Bad(field, "must be an ISO-8601 time with a zone or unix seconds");
}

json ToJson(const Campaign& c) {
  json t;
  switch (c.target.kind) {
    case Target::kFollowersOf: t = {{"followers_of", c.target.account_id}}; break;
    case Target::kUsers: t = {{"users", c.target.users}}; break;
    case Target::kSegment: t = {{"segment", c.target.segment}}; break;
  }
  return {{"id", c.id},
          {"account_id", c.account_id},
          {"message", json::parse(c.message_json)},
          {"target", t},
          {"schedule", c.schedule == "at"       ? json{{"type", "at"}, {"local_time", LocalTime(c.local_minute)}}
                       : c.schedule == "window" ? json{{"type", "window"}, {"from", FormatIsoTime(c.window_from)},
                                                       {"to", FormatIsoTime(c.window_to)}}
                       : c.schedule == "digest" ? json{{"type", "digest"}}
                                                : json{{"type", "now"}}},
          {"local_minute", c.local_minute},
          {"window_from", c.window_from},
          {"window_to", c.window_to},
          {"status", c.status},
          {"error", c.error},
          {"created_at", c.created_at},
          {"finished_at", c.finished_at},
          {"targeted", c.targeted},
          {"scheduled", c.scheduled},
          {"sent", c.sent},
          {"fired", c.fired},
          {"suppressed", c.suppressed}};
}

// An ad campaign's bid and budget, where it has them.
void AddAdTerms(const Campaign& c, json& j) {
  if (c.bid <= 0) return;
  j["bid"] = c.bid;
  j["budget"] = c.budget;
}

Result<Campaign> FromJson(const json& j) {
  try {
    Campaign c;
    c.id = j.at("id").get<std::string>();
    c.account_id = j.at("account_id").get<std::string>();
    c.message_json = j.at("message").dump();
    const json& t = j.at("target");
    if (t.contains("followers_of")) {
      c.target.kind = Target::kFollowersOf;
      c.target.account_id = t["followers_of"].get<std::string>();
    } else if (t.contains("users")) {
      c.target.kind = Target::kUsers;
      c.target.users = t["users"].get<std::vector<std::string>>();
    } else {
      c.target.kind = Target::kSegment;
      c.target.segment = t.at("segment").get<std::string>();
    }
    c.schedule = j.at("schedule").at("type").get<std::string>();
    c.local_minute = j.value("local_minute", 0);
    c.window_from = j.value("window_from", Micros{0});
    c.window_to = j.value("window_to", Micros{0});
    c.fired = j.value("fired", std::uint64_t{0});
    c.status = j.at("status").get<std::string>();
    c.error = j.value("error", "");
    c.created_at = j.at("created_at").get<Micros>();
    c.finished_at = j.at("finished_at").get<Micros>();
    c.targeted = j.at("targeted").get<std::uint64_t>();
    c.scheduled = j.at("scheduled").get<std::uint64_t>();
    c.sent = j.at("sent").get<std::uint64_t>();
    c.suppressed = j.at("suppressed").get<std::map<std::string, std::uint64_t>>();
    c.bid = j.value("bid", 0.0);
    c.budget = j.value("budget", 0.0);
    return c;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("campaign record: ") + e.what());
  }
}

}  // namespace

Result<Campaign> ParseCampaign(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument("invalid JSON");
  if (!j.is_object()) return Status::InvalidArgument("the body must be a campaign object");
  for (const auto& [k, v] : j.items()) {
    if (k != "account_id" && k != "message" && k != "target" && k != "schedule" && k != "bid" && k != "budget") {
      return Bad(k, "unknown field (account_id, message, target, schedule, bid, budget)");
    }
  }
  if (j.contains("bid") || j.contains("budget")) {
    // An ad's terms, both or neither; whether the account may have them is the
    // engine's to say.
    if (!j.contains("bid") || !j["bid"].is_number()) return Bad("bid", "an ad campaign needs a bid (per click)");
    if (!j.contains("budget") || !j["budget"].is_number()) return Bad("budget", "an ad campaign needs a budget (per day)");
  }
  Campaign c;
  if (j.contains("bid")) {
    c.bid = j["bid"].get<double>();
    c.budget = j["budget"].get<double>();
    HERALD_RETURN_IF_ERROR(CheckAdTerms(c.bid, c.budget));
  }
  if (!j.contains("account_id") || !j["account_id"].is_string()) return Bad("account_id", "required string");
  c.account_id = j["account_id"].get<std::string>();
  HERALD_RETURN_IF_ERROR(ValidateId("account_id", c.account_id));
  if (!j.contains("message")) return Bad("message", "required object");
  auto m = ParseMessage(j["message"]);
  if (!m.ok()) return m.status();
  c.message_json = j["message"].dump();
  if (!j.contains("target") || !j["target"].is_object() || j["target"].size() != 1) {
    return Bad("target", "required: one of {\"followers_of\":ACCOUNT}, {\"users\":[...]}, {\"segment\":EXPR or NAME}");
  }
  const json& t = j["target"];
  if (t.contains("followers_of")) {
    if (!t["followers_of"].is_string()) return Bad("target.followers_of", "must be an account id");
    c.target.kind = Target::kFollowersOf;
    c.target.account_id = t["followers_of"].get<std::string>();
    HERALD_RETURN_IF_ERROR(ValidateId("target.followers_of", c.target.account_id));
  } else if (t.contains("users")) {
    if (!t["users"].is_array()) return Bad("target.users", "must be an array of user ids");
    if (t["users"].empty()) return Bad("target.users", "the audience is empty");
    if (t["users"].size() > kMaxTargetUsers) return Bad("target.users", "at most 100000 users");
    for (const auto& u : t["users"]) {
      if (!u.is_string()) return Bad("target.users", "must be an array of user ids");
      HERALD_RETURN_IF_ERROR(ValidateId("target.users", u.get_ref<const std::string&>()));
      c.target.users.push_back(u.get<std::string>());
    }
    c.target.kind = Target::kUsers;
  } else if (t.contains("segment")) {
    if (!t["segment"].is_string() || t["segment"].get_ref<const std::string&>().empty()) {
      return Bad("target.segment", "must be a saved segment's name or an expression");
    }
    c.target.kind = Target::kSegment;
    c.target.segment = t["segment"].get<std::string>();
  } else {
    return Bad("target", "must be one of followers_of, users, segment");
  }
  if (j.contains("schedule")) {
    const json& s = j["schedule"];
    if (!s.is_object() || !s.contains("type") || !s["type"].is_string()) {
      return Bad("schedule.type", "required: now, at, window or digest");
    }
    const std::string type = s["type"].get<std::string>();
    if (type != "now" && type != "at" && type != "window" && type != "digest") {
      return Bad("schedule.type", "must be now, at, window or digest");
    }
    c.schedule = type;
    for (const auto& [k, v] : s.items()) {
      const bool ok = k == "type" || (type == "at" && k == "local_time") || (type == "window" && (k == "from" || k == "to"));
      if (!ok) return Bad("schedule." + k, "unknown field for a \"" + type + "\" schedule");
    }
    if (type == "at") {
      const std::string t = s.value("local_time", "");
      const bool shape = t.size() == 5 && t[2] == ':' && std::isdigit(t[0]) && std::isdigit(t[1]) &&
                         std::isdigit(t[3]) && std::isdigit(t[4]);
      const int h = shape ? (t[0] - '0') * 10 + (t[1] - '0') : 99, mi = shape ? (t[3] - '0') * 10 + (t[4] - '0') : 99;
      if (h > 23 || mi > 59) return Bad("schedule.local_time", "required: a local time \"HH:MM\"");
      c.local_minute = h * 60 + mi;
    }
    if (type == "window") {
      if (!s.contains("from") || !s.contains("to")) return Bad("schedule.from", "a window needs from and to");
      auto from = Time(s["from"], "schedule.from");
      if (!from.ok()) return from.status();
      auto to = Time(s["to"], "schedule.to");
      if (!to.ok()) return to.status();
      if (*to <= *from) return Bad("schedule.to", "the window ends before it starts");
      if (*to - *from > 30 * kMicrosPerDay) return Bad("schedule.to", "a window is at most 30 days");
      c.window_from = *from;
      c.window_to = *to;
    }
  }
  return c;
}

Result<std::unique_ptr<CampaignDirectory>> CampaignDirectory::Load(store::Db* db, std::uint64_t seed) {
  auto cf = db->Family(kCampaignsFamily);
  if (!cf.ok()) return cf.status();
  std::unique_ptr<CampaignDirectory> dir(new CampaignDirectory(db, *cf));
  std::random_device rd;
  dir->sequence_ = seed ? seed : (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  HERALD_RETURN_IF_ERROR(db->Scan(*cf, "", [&](std::string_view key, std::string_view value) {
    const size_t nul = key.find('\0');
    if (nul == std::string_view::npos || nul + 1 >= key.size()) {
      ++dir->skipped_;
      return true;
    }
    const std::string tenant(key.substr(0, nul));
    const char kind = key[nul + 1];
    const std::string rest(key.substr(nul + 2));
    if (kind == 'k') {
      dir->idempotency_[store::TenantKey(tenant, rest)] = std::string(value);
      return true;
    }
    auto c = FromJson(json::parse(value, nullptr, false));
    if (!c.ok()) {
      ++dir->skipped_;
      log::Error("campaign record skipped", {{"error", c.status().message()}});
      return true;
    }
    if (c->status == "planning") {
      // Planning stopped with the process: what was sent is in the log; the rest is not.
      c->status = "failed";
      c->error = "herald stopped while the campaign was planned";
    }
    dir->campaigns_[store::TenantKey(tenant, c->id)] = std::move(*c);
    return true;
  }));
  return dir;
}

Status CampaignDirectory::Write(const std::string& tenant, const Campaign& c, const std::string& idempotency_key) {
  store::WriteBatch b;
  std::string key(tenant);
  key.push_back('\0');
  key.push_back('c');
  key += c.id;
  json j = ToJson(c);
  AddAdTerms(c, j);
  b.Put(cf_, key, j.dump());
  if (!idempotency_key.empty()) {
    std::string k(tenant);
    k.push_back('\0');
    k.push_back('k');
    k += idempotency_key;
    b.Put(cf_, k, c.id);
  }
  return db_->Write(std::move(b));
}

Result<Campaign> CampaignDirectory::Create(const std::string& tenant, Campaign c, const std::string& idempotency_key,
                                           bool* created) {
  std::lock_guard<std::mutex> l(mu_);
  *created = false;
  if (!idempotency_key.empty()) {
    auto it = idempotency_.find(store::TenantKey(tenant, idempotency_key));
    if (it != idempotency_.end()) {
      auto c2 = campaigns_.find(store::TenantKey(tenant, it->second));
      if (c2 != campaigns_.end()) return c2->second;
    }
  }
  static const char* kHex = "0123456789abcdef";
  const std::uint64_t v = (sequence_++) * 0x9e3779b97f4a7c15ULL;
  c.id = "c-";
  for (int i = 15; i >= 0; --i) c.id.push_back(kHex[(v >> (i * 4)) & 15]);
  HERALD_RETURN_IF_ERROR(Write(tenant, c, idempotency_key));
  campaigns_[store::TenantKey(tenant, c.id)] = c;
  if (!idempotency_key.empty()) idempotency_[store::TenantKey(tenant, idempotency_key)] = c.id;
  *created = true;
  return c;
}

std::optional<Campaign> CampaignDirectory::Find(const std::string& tenant, const std::string& id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = campaigns_.find(store::TenantKey(tenant, id));
  if (it == campaigns_.end()) return std::nullopt;
  return it->second;
}

std::vector<Campaign> CampaignDirectory::List(const std::string& tenant) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Campaign> out;
  const std::string prefix = store::TenantKey(tenant, "");
  for (auto it = campaigns_.lower_bound(prefix); it != campaigns_.end() && it->first.starts_with(prefix); ++it) {
    out.push_back(it->second);
  }
  return out;
}

Status CampaignDirectory::Update(const std::string& tenant, const std::string& id,
                                 const std::function<void(Campaign&)>& fn) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = campaigns_.find(store::TenantKey(tenant, id));
  if (it == campaigns_.end()) return Status::NotFound("no campaign " + id);
  Campaign c = it->second;
  fn(c);
  HERALD_RETURN_IF_ERROR(Write(tenant, c, ""));
  it->second = std::move(c);
  return Status::Ok();
}

std::string CampaignJson(const Campaign& c, const Funnel& d, const PlanProgress& p) {
  json j = ToJson(c);
  AddAdTerms(c, j);
  j.erase("targeted");
  j.erase("scheduled");
  j.erase("sent");
  j.erase("suppressed");
  j["created_at"] = FormatIsoTime(c.created_at);
  j["finished_at"] = c.finished_at ? json(FormatIsoTime(c.finished_at)) : json(nullptr);
  if (c.error.empty()) j.erase("error");
  j["funnel"] = {{"targeted", c.targeted},  {"suppressed", c.suppressed}, {"scheduled", c.scheduled},
                 {"sent", std::max(c.sent, d.sent)}, {"delivered", d.delivered},   {"opened", d.opened},
                 {"clicked", d.clicked},    {"converted", d.converted},   {"expired", d.expired},
                 {"queued", d.queued},      {"refused", d.refused},       {"not_interested", d.not_interested},
                 {"complaint", d.complaint}};
  if (c.bid > 0) {
    // An ad's funnel: impressions (delivered pushes), clicks, the spend (their
    // charges), the average price per click charged and the eCPM (spend per
    // thousand impressions).
    const double spend = static_cast<double>(d.spend_micros) / 1e6;
    const double impressions = static_cast<double>(d.delivered);
    j["funnel"]["impressions"] = d.delivered;
    j["funnel"]["clicks"] = d.clicked;
    j["funnel"]["spend"] = spend;
    j["funnel"]["avg_price"] = impressions > 0 ? static_cast<double>(d.price_micros) / 1e6 / impressions : 0.0;
    j["funnel"]["ecpm"] = impressions > 0 ? spend / impressions * 1000 : 0.0;
  }
  j["progress"] = {{"partitions", p.partitions},
                   {"partitions_done", p.partitions_done},
                   {"decided", p.decided},
                   {"dispatched", p.dispatched}};
  return j.dump();
}

}  // namespace herald::engine
