// PolicyStore: the policy's state of one partition, a PartitionState (see
// stream/partition_state.h) registered after the feature store.
//
// It folds every policy-relevant event of the partition's users, in log order:
//   follow / unfollow              the follow (attrs.followed_at, else ts)
//   sent, delivered                a push: counters, its open window; a `sent` event
//                                  is also decided (Decide on the state before it,
//                                  with the account's type but not its reputation,
//                                  which is not in the log) and the decision is
//                                  recorded for GET /v1/users/{id}/decisions
//   opened, clicked                the user is back to normal
//   not_interested, complaint      the follow's mark (account_id, or the account of
//                                  the pending push message_id names)
// and counts pushes and marks per account and UTC day for the reputation.
// Pushes whose open window closed more than the pipeline's allowed lateness ago
// are folded as unopened before each event (rules.h Fold), so a late open within
// the lateness still lands before its push is judged.
//
// Records in the state family (store/keys.h):
//   kPolicyUser      tenant \0 user_id                 -> SerializeUser   (rules.cc)
//   kPolicyFollow    tenant \0 user_id \0 u64BE account -> SerializeFollow (rules.cc)
//   kPolicyDecision  tenant \0 user_id \0 u32BE seq    -> EncodeDecision  (below)
//   kPolicyAccounts  tenant \0 u64BE account u16BE day -> varint pushes, marks, complaints
//
// Users are kept in memory while hot and loaded on first use, like the features.
// Lives on the partition's shard.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/accounts.h"
#include "policy/rules.h"
#include "stream/partition_state.h"

namespace herald::policy {

// One recorded decision.
struct DecisionRecord {
  Micros at = 0;
  std::string message_id;
  std::string account_id;
  Decision decision;
};
std::string EncodeDecision(const DecisionRecord& r);
Result<DecisionRecord> DecodeDecision(std::string_view bytes);

// The policy-relevant fields of a push's attrs.
struct PushAttrs {
  Lane lane = Lane::kMarketing;
  bool urgent = false;
  Micros expires_at = 0;
  std::string collapse_key, idempotency_key;
};
// attrs.priority ("transactional"), attrs.urgent, attrs.expires_at (TIME) or
// attrs.ttl_s (from `ts`), attrs.collapse_key, attrs.idempotency_key.
PushAttrs ParsePushAttrs(std::string_view attrs_json, Micros ts);
// attrs[key] as a TIME (unix seconds or ISO-8601) within 2000..2100, else `fallback`.
Micros AttrTime(std::string_view attrs_json, const char* key, Micros fallback);

class PolicyStore final : public stream::PartitionState {
 public:
  struct User {
    UserPolicy user;
    std::vector<FollowPolicy> follows;  // by account key
    bool dirty = false;
    std::vector<std::uint64_t> dirty_follows;
  };

  PolicyStore(store::Db* db, store::ColumnFamily cf, PartitionId p, const PolicyConfig* cfg,
              const AccountDirectory* accounts, Micros lateness, size_t max_hot_users);

  // The user's policy state, or null when the user has none (or when the store
  // cannot be read: then *failure says why). Never creates one. Valid until the
  // next event or checkpoint of this partition.
  const User* Find(std::string_view tenant, std::string_view user_id, Status* failure = nullptr);
  static const FollowPolicy* FollowOf(const User& u, std::uint64_t account) { return FindFollow(u.follows, account); }
  // The user's latest decisions, newest first, at most `limit`, none older than
  // policy.decisions_ttl_s at `now`.
  Result<std::vector<DecisionRecord>> Decisions(std::string_view tenant, std::string_view user_id,
                                                size_t limit, Micros now);
  // Pushes and marks per account over the reputation window ending at `now`.
  std::vector<std::pair<std::pair<std::string, std::uint64_t>, AccountCounts>> AccountWindow(Micros now) const;
  size_t hot_users() const { return users_.size(); }
  // Records a decision for a push that was not sent (deferred or suppressed
  // before it reached the log), for GET /v1/users/{id}/decisions. It is written
  // with the next checkpoint; the caller marks the partition changed.
  Status RecordUnsent(std::string_view tenant, std::string_view user_id, std::string_view message_id,
                      std::string_view account_id, Micros at, const Decision& d);

  Status Load(stream::StateReader& reader) override;
  void OnEvent(stream::AppliedEvent& e) override;
  void Checkpoint(stream::CheckpointWriter& writer) override;
  void OnCheckpointed() override;

 private:
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct AccountDay {
    AccountCounts counts;
    bool dirty = false;
  };
  void BuildKey(std::string_view tenant, std::string_view user_id);
  User* Lookup(bool create, Status* failure);
  static FollowPolicy& FollowFor(User& u, std::uint64_t account) { return FollowIn(u.follows, account); }
  void MarkDirty(User& u);
  void MarkFollowDirty(User& u, std::uint64_t account);
  void Record(User& u, const stream::Event& e, const Decision& d);
  void CountAccount(const std::string& tenant, std::uint64_t account, Micros at, int what);

  store::Db* db_;
  store::ColumnFamily cf_;
  PartitionId partition_;
  const PolicyConfig* cfg_;
  const AccountDirectory* accounts_;
  Micros lateness_;
  size_t max_hot_users_;
  std::unordered_map<std::string, User, KeyHash, std::equal_to<>> users_;
  std::vector<std::string> dirty_;
  std::map<std::string, std::string> new_decisions_;  // suffix -> record, not yet checkpointed
  std::vector<std::string> old_decisions_;            // suffixes to delete
  // tenant \0 u64BE account u16BE day -> counts
  std::map<std::string, AccountDay> account_days_;
  Micros latest_ = 0;  // latest event time applied
  std::string key_;
  std::string store_key_;
};

}  // namespace herald::policy
