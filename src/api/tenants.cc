#include "api/tenants.h"

#include "core/log.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/ids.h"

namespace herald::api {

std::string GenerateApiKey() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) std::abort();  // no entropy: refuse to mint keys
  return "hk_" + Base64UrlEncode(raw, sizeof raw);
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Result<std::unique_ptr<TenantDirectory>> TenantDirectory::Load(store::Db* db, const Clock* clock) {
  auto cf = db->Family(kTenantsFamily);
  if (!cf.ok()) return cf.status();
  std::unique_ptr<TenantDirectory> dir(new TenantDirectory(db, *cf, clock));
  HERALD_RETURN_IF_ERROR(db->Scan(*cf, "t/", [&](std::string_view key, std::string_view value) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    auto str = [&](const char* k) { return j.contains(k) && j[k].is_string(); };
    if (!j.is_object() || !str("id") || !str("key_sha256") || (j.contains("name") && !str("name")) ||
        (j.contains("admin") && !j["admin"].is_boolean()) ||
        (j.contains("created_at") && !j["created_at"].is_number_integer())) {
      // One unreadable record costs its tenant, not the whole server.
      ++dir->skipped_;
      log::Error("tenant record skipped: not a tenant record", {{"key", std::string(key)}});
      return true;
    }
    Tenant t{j["id"].get<std::string>(), j.value("name", std::string()), j.value("admin", false),
             j.value("created_at", Micros{0})};
    std::string hash = j["key_sha256"].get<std::string>();
    dir->key_hash_of_[t.id] = hash;
    dir->by_key_hash_[hash] = std::move(t);
    return true;
  }));
  return dir;
}

Result<NewTenant> TenantDirectory::Create(const std::string& id, const std::string& name,
                                          bool admin) {
  HERALD_RETURN_IF_ERROR(ValidateId("id", id));
  if (name.size() > 256) return Status::InvalidArgument("name is longer than 256 bytes");
  NewTenant out{{id, name.empty() ? id : name, admin, clock_->Now()}, GenerateApiKey()};
  std::string hash = Sha256Hex(out.api_key);
  // Creation is rare; holding the write lock across the commit keeps two creates of
  // one id from both succeeding.
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (key_hash_of_.count(id)) return Status::AlreadyExists("tenant " + id + " already exists");
  nlohmann::json j = {{"id", id},
                      {"name", out.tenant.name},
                      {"admin", admin},
                      {"created_at", out.tenant.created_at},
                      {"key_sha256", hash}};
  store::WriteBatch b;
  b.Put(cf_, "t/" + id, j.dump());
  HERALD_RETURN_IF_ERROR(db_->Write(std::move(b)));
  key_hash_of_[id] = hash;
  by_key_hash_[hash] = out.tenant;
  return out;
}

Result<std::string> TenantDirectory::Authenticate(std::string_view api_key, bool* is_admin) const {
  if (api_key.size() > 256) return Status::Unauthenticated("the API key is not valid");
  std::string hash = Sha256Hex(api_key);
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = by_key_hash_.find(hash);
  if (it == by_key_hash_.end()) return Status::Unauthenticated("the API key is not valid");
  *is_admin = it->second.admin;
  return it->second.id;
}

std::vector<Tenant> TenantDirectory::List() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<Tenant> out;
  for (const auto& [_, t] : by_key_hash_) out.push_back(t);
  std::sort(out.begin(), out.end(), [](const Tenant& a, const Tenant& b) { return a.id < b.id; });
  return out;
}

bool TenantDirectory::empty() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return by_key_hash_.empty();
}

}  // namespace herald::api
