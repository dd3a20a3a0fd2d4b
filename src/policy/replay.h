// What-if replay: history through the policy under one or more configs.
//
// Each `sent` event of the history is a candidate push. Under each config the
// policy decides it on the state that config's own decisions built: an allowed
// push is counted (and its delivered / opened / marks events apply), a deferred
// one is decided again at its `until` (or dropped when it has expired by then),
// a suppressed one never reached the user, so its later events are ignored.
// Follows, opens, marks and time zones apply as they do live (PolicyStore).
//
// Input: NDJSON in the event schema (shared API.md, one event per line; a
// "tenant" field is not read: every line belongs to `tenant`), or herald's own
// log directory (a data directory or its log/), read partition by partition (a
// user's events are all in one partition, in order). Account types come from
// `accounts` (id -> type) or the event's attrs.account_type, else business.
// Account reputation (throttling for everyone) is not replayed: reach stays 1.
//
// Not thread-safe; one replay per object.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "policy/rules.h"
#include "stream/event.h"

namespace herald::policy {

struct ReplayTotals {
  std::uint64_t candidates = 0;  // sent events
  std::uint64_t allowed = 0;     // allowed at once
  std::uint64_t deferred = 0;    // deferred at least once
  std::uint64_t deferred_then_allowed = 0;
  std::array<std::uint64_t, kRuleCount> suppressed{};  // by rule (kQuietHours: expired while deferred)
  // Pushes that reached users, per user and local day that got at least one.
  std::uint64_t user_days = 0;
  double pushes_per_user_day = 0;
  std::uint32_t p50_per_user_day = 0, p99_per_user_day = 0, max_per_user_day = 0;
  std::uint64_t users = 0;
};

struct ReplayUser;
class ReplayUsers;

class Replay {
 public:
  // One run per config; every event goes through all of them.
  // `lateness` as stream.allowed_lateness_s: how long after its window a push
  // waits for a late open before it is judged.
  Replay(std::vector<PolicyConfig> configs, std::string tenant,
         std::unordered_map<std::string, AccountType> accounts, Micros lateness = 600 * kMicrosPerSecond);
  ~Replay();

  // Feeds one event, in history order.
  void Add(const stream::Event& e);
  // Sets a user's zone (from a log's user updates or a users file).
  void SetZone(std::string_view user_id, std::string_view tz_name);
  // Decides what is still deferred and computes the totals.
  std::vector<ReplayTotals> Finish();

  const std::string& tenant() const { return tenant_; }
  std::uint64_t events() const { return events_; }
  std::uint64_t rejected() const { return rejected_; }
  void CountRejected(std::uint64_t n) { rejected_ += n; }

 private:
  struct Run;
  // The user's state in run `run`; the runs' states of one user are side by side.
  // Users are keyed by a 64-bit hash of their id (a collision merges two users).
  ReplayUser& UserOf(std::uint64_t key, size_t run);
  AccountType TypeOf(const stream::Event& e) const;
  const cctz::time_zone& ZoneOf(const std::string& user_id) const;
  std::vector<std::unique_ptr<Run>> runs_;
  std::string tenant_;
  std::unordered_map<std::string, AccountType> accounts_;
  std::unordered_map<std::string, const cctz::time_zone*> zones_;
  std::unique_ptr<class ReplayUsers> users_;
  std::uint64_t events_ = 0, rejected_ = 0;
};

// Reads `path` (an NDJSON file, or a data or log directory) into `replay`.
Status ReplayFrom(const std::string& path, Replay& replay);

// The report of `herald policy replay`: per config, candidates, allowed, deferred,
// suppressed by rule, and pushes per user per day.
std::string FormatReplay(const std::vector<std::string>& names, const std::vector<ReplayTotals>& totals,
                         const Replay& replay, double seconds);

}  // namespace herald::policy
