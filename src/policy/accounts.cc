#include "policy/accounts.h"

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/log.h"

namespace herald::policy {
namespace {

std::string KeyName(const std::string& tenant, std::uint64_t key) {
  std::string k = tenant;
  k.push_back('\0');
  k.append(reinterpret_cast<const char*>(&key), sizeof key);
  return k;
}

std::string Encode(const Account& a) {
  nlohmann::json j = {{"id", a.id},
                      {"type", std::string(AccountTypeName(a.type))},
                      {"name", a.name},
                      {"quality", a.quality},
                      {"created_at", a.created_at}};
  if (a.pack) j["pack"] = {{"factor", a.pack->factor}, {"from", a.pack->from}, {"to", a.pack->to}};
  return j.dump();
}

std::optional<Account> Decode(std::string_view value) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string() || !j.contains("type") ||
      !j["type"].is_string()) {
    return std::nullopt;
  }
  Account a;
  a.id = j["id"].get<std::string>();
  if (!ParseAccountType(j["type"].get<std::string>(), &a.type)) return std::nullopt;
  if (j.contains("name") && j["name"].is_string()) a.name = j["name"].get<std::string>();
  if (j.contains("quality") && j["quality"].is_number()) a.quality = j["quality"].get<double>();
  if (j.contains("created_at") && j["created_at"].is_number_integer()) a.created_at = j["created_at"].get<Micros>();
  if (j.contains("pack") && j["pack"].is_object()) {
    const auto& p = j["pack"];
    if (p.contains("factor") && p["factor"].is_number() && p.contains("from") && p["from"].is_number_integer() &&
        p.contains("to") && p["to"].is_number_integer()) {
      a.pack = AccelerationPack{p["factor"].get<double>(), p["from"].get<Micros>(), p["to"].get<Micros>()};
    }
  }
  return a;
}

}  // namespace

Result<std::unique_ptr<AccountDirectory>> AccountDirectory::Load(store::Db* db, const Clock* clock,
                                                                 const PolicyConfig& cfg) {
  auto cf = db->Family(kAccountsFamily);
  if (!cf.ok()) return cf.status();
  std::unique_ptr<AccountDirectory> dir(new AccountDirectory(db, *cf, clock, cfg));
  HERALD_RETURN_IF_ERROR(db->Scan(*cf, "", [&](std::string_view key, std::string_view value) {
    auto a = Decode(value);
    size_t nul = key.find('\0');
    if (!a || nul == std::string_view::npos) {
      ++dir->skipped_;
      log::Error("account record skipped: not an account record", {{"key", std::string(key)}});
      return true;
    }
    std::string tenant(key.substr(0, nul));
    dir->names_[KeyName(tenant, AccountKey(a->id))] = a->id;
    dir->accounts_[std::string(key)] = std::move(*a);
    return true;
  }));
  return dir;
}

Status AccountDirectory::Upsert(const std::string& tenant, const Account& in) {
  Account a = in;
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::string key = store::TenantKey(tenant, a.id);
  auto it = accounts_.find(key);
  a.created_at = it != accounts_.end() ? it->second.created_at : clock_->Now();
  store::WriteBatch b;
  b.Put(cf_, key, Encode(a));
  HERALD_RETURN_IF_ERROR(db_->Write(std::move(b)));
  names_[KeyName(tenant, AccountKey(a.id))] = a.id;
  accounts_[key] = std::move(a);
  return Status::Ok();
}

std::optional<Account> AccountDirectory::Find(const std::string& tenant, std::string_view id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = accounts_.find(store::TenantKey(tenant, id));
  if (it == accounts_.end()) return std::nullopt;
  return it->second;
}

std::vector<Account> AccountDirectory::List(const std::string& tenant) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<Account> out;
  std::string prefix = store::TenantPrefix(tenant);
  for (auto it = accounts_.lower_bound(prefix); it != accounts_.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::string AccountDirectory::NameOf(const std::string& tenant, std::uint64_t key) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = names_.find(KeyName(tenant, key));
  if (it != names_.end()) return it->second;
  char buf[24];
  std::snprintf(buf, sizeof buf, "#%016llx", static_cast<unsigned long long>(key));
  return buf;
}

AccountView AccountDirectory::View(const std::string& tenant, const Account& a) const {
  AccountView v;
  v.key = AccountKey(a.id);
  v.type = a.type;
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = reputation_.find({tenant, v.key});
  if (it != reputation_.end()) {
    v.weight = it->second.weight;
    v.reach = it->second.reach;
    v.rate = it->second.rate;
    v.complaint_rate = it->second.complaint_rate;
  }
  return v;
}

void AccountDirectory::SetReputation(
    const std::map<std::pair<std::string, std::uint64_t>, AccountCounts>& counts) {
  std::map<std::pair<std::string, std::uint64_t>, Reputation> next;
  for (const auto& [k, c] : counts) {
    Reputation r;
    r.counts = c;
    if (c.pushes >= cfg_.reputation_min_pushes) {
      r.rate = (static_cast<double>(c.not_interested) + cfg_.complaint_marks * static_cast<double>(c.complaints)) /
               static_cast<double>(c.pushes);
      r.complaint_rate = static_cast<double>(c.complaints) / static_cast<double>(c.pushes);
      if (r.rate >= cfg_.downweight_rate) r.weight = cfg_.downweight_factor;
      if (r.rate >= cfg_.throttle_rate) r.reach = cfg_.throttle_reach;
    }
    next.emplace(k, r);
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  reputation_.swap(next);
}

AccountCounts AccountDirectory::CountsOf(const std::string& tenant, std::uint64_t key) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = reputation_.find({tenant, key});
  return it == reputation_.end() ? AccountCounts{} : it->second.counts;
}

}  // namespace herald::policy
