// TenantDirectory: the apps one herald deployment serves, and their API keys.
//
// A tenant is isolated: its users, accounts and records are stored under its id
// (store::TenantKey). Each tenant has one API key; only the SHA-256 of the key is
// stored, so a key is shown exactly once, when it is created. On first start the
// directory creates the admin tenant "default".
//
// Thread-safe. Lookups are served from memory.
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "store/db.h"

namespace herald::api {

struct Tenant {
  std::string id;
  std::string name;
  bool admin = false;
  Micros created_at = 0;
};

struct NewTenant {
  Tenant tenant;
  std::string api_key;  // the only time the key is available in clear
};

class TenantDirectory {
 public:
  // Loads every tenant from the "tenants" column family of `db`.
  static Result<std::unique_ptr<TenantDirectory>> Load(store::Db* db, const Clock* clock);

  // Creates a tenant with a fresh key. AlreadyExists when the id is taken.
  Result<NewTenant> Create(const std::string& id, const std::string& name, bool admin);

  // The tenant id owning `api_key`; Unauthenticated when none does.
  Result<std::string> Authenticate(std::string_view api_key, bool* is_admin) const;

  std::vector<Tenant> List() const;
  bool empty() const;
  // Records that Load() could not read: reported in the log and skipped.
  size_t skipped_records() const { return skipped_; }

 private:
  TenantDirectory(store::Db* db, store::ColumnFamily cf, const Clock* clock)
      : db_(db), cf_(cf), clock_(clock) {}

  store::Db* db_;
  store::ColumnFamily cf_;
  const Clock* clock_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Tenant> by_key_hash_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::string> key_hash_of_;  // tenant id -> key hash
  size_t skipped_ = 0;
};

// Column family holding tenants. Records: "t/<id>" -> JSON
// {"id","name","admin","created_at","key_sha256"}. On-disk format.
inline constexpr const char* kTenantsFamily = "tenants";

// "hk_" followed by 43 base64url characters of 32 random bytes.
std::string GenerateApiKey();
std::string Sha256Hex(std::string_view data);

}  // namespace herald::api
