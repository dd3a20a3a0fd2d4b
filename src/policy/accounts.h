// AccountDirectory: the accounts that push to a tenant's users, and how their
// followers receive them.
//
// An account has a type (service, subscription, business or ad, rules.h), a
// name and a quality score in [0, 1] (ranking uses it). Accounts are stored in
// the "accounts" column family (tenant \0 account_id -> JSON, see Encode) and
// served from memory.
//
// Reputation: every partition counts, per account, pushes and "not interested" /
// complaint marks by UTC day (PolicyStore). The node merges them every
// policy.reputation_refresh_s and calls SetReputation(); an account whose rate of
// marks per push crosses policy.downweight_rate is down-weighted for everyone,
// and past policy.throttle_rate it is throttled (View().reach < 1).
//
// Thread-safe. Reads take a shared lock; writes are rare.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "policy/policy_config.h"
#include "policy/rules.h"
#include "store/db.h"

namespace herald::policy {

inline constexpr const char* kAccountsFamily = "accounts";

// An acceleration pack: a quality creator's account gets `factor` (3-5) times
// the exposure between `from` and `to` (its candidates' value in contention is
// multiplied by it, within the user's caps).
struct AccelerationPack {
  double factor = 0;
  Micros from = 0, to = 0;
  bool operator==(const AccelerationPack&) const = default;
};
inline constexpr double kMinPackFactor = 3, kMaxPackFactor = 5;

struct Account {
  std::string id;
  AccountType type = AccountType::kBusiness;
  std::string name;
  double quality = 1;
  Micros created_at = 0;
  std::optional<AccelerationPack> pack;
  // The pack's factor at `now`, 1 outside its time or without one.
  double PackFactor(Micros now) const {
    return pack && now >= pack->from && now < pack->to ? pack->factor : 1.0;
  }
};

// Marks and pushes of one account, merged over partitions.
struct AccountCounts {
  std::uint64_t pushes = 0, not_interested = 0, complaints = 0;
};

class AccountDirectory {
 public:
  static Result<std::unique_ptr<AccountDirectory>> Load(store::Db* db, const Clock* clock,
                                                        const PolicyConfig& cfg);

  // Creates or replaces the account (durable before it returns).
  Status Upsert(const std::string& tenant, const Account& a);
  std::optional<Account> Find(const std::string& tenant, std::string_view id) const;
  std::vector<Account> List(const std::string& tenant) const;
  // The account's id from its key, or "#<hex>" when unknown.
  std::string NameOf(const std::string& tenant, std::uint64_t key) const;

  // What Decide() needs of the account, with its reputation.
  AccountView View(const std::string& tenant, const Account& a) const;
  // Replaces the reputation with the counts of the window (by tenant, account key).
  void SetReputation(const std::map<std::pair<std::string, std::uint64_t>, AccountCounts>& counts);
  AccountCounts CountsOf(const std::string& tenant, std::uint64_t key) const;
  size_t skipped_records() const { return skipped_; }

 private:
  AccountDirectory(store::Db* db, store::ColumnFamily cf, const Clock* clock, const PolicyConfig& cfg)
      : db_(db), cf_(cf), clock_(clock), cfg_(cfg) {}
  struct Reputation {
    AccountCounts counts;
    double rate = 0, weight = 1, reach = 1, complaint_rate = 0;
  };

  store::Db* db_;
  store::ColumnFamily cf_;
  const Clock* clock_;
  PolicyConfig cfg_;
  mutable std::shared_mutex mu_;
  // tenant \0 id -> account
  std::map<std::string, Account, std::less<>> accounts_;
  std::unordered_map<std::string, std::string> names_;  // tenant \0 key(8 bytes) -> id
  std::map<std::pair<std::string, std::uint64_t>, Reputation> reputation_;
  size_t skipped_ = 0;
};

}  // namespace herald::policy
