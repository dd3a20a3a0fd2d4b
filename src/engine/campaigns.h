// Campaigns: a message, a target and a schedule (shared/API.md "Campaign"), their
// status and the planning side of their funnel, durable in their own column
// family. The delivery side of the funnel (delivered, opened, ...) is counted per
// partition by EngineStore from the events.
//
// Records, in the "campaigns" family:
//   tenant \0 "c" id  -> the campaign as JSON
//   tenant \0 "k" Idempotency-Key -> campaign id
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "engine/message.h"
#include "store/db.h"

namespace herald::engine {

inline constexpr const char* kCampaignsFamily = "campaigns";
inline constexpr size_t kMaxTargetUsers = 100'000;

struct Target {
  enum Kind { kFollowersOf, kUsers, kSegment } kind = kFollowersOf;
  std::string account_id;          // kFollowersOf
  std::vector<std::string> users;  // kUsers
  std::string segment;             // kSegment: a saved segment's name or an expression
};

struct Campaign {
  std::string id, account_id;
  std::string message_json;  // the message as given
  Target target;
  std::string schedule = "now";      // now, at, window (digest: parsed, then refused)
  // An ad account's terms: the bid per click and the budget per day (0: none given).
  double bid = 0, budget = 0;
  int local_minute = 0;             // at: minutes after local midnight
  Micros window_from = 0, window_to = 0;  // window
  std::string status = "planning";  // planning, sent, cancelled, failed
  std::string error;                // why it failed
  Micros created_at = 0, finished_at = 0;
  // The planning side of the funnel.
  std::uint64_t targeted = 0, scheduled = 0, sent = 0, fired = 0;
  std::map<std::string, std::uint64_t> suppressed;  // by rule (and "deferred" ones by their rule)
};

// Parses the body of POST /v1/campaigns (account_id, message, target, schedule);
// errors name the field. The message is checked with ParseMessage.
Result<Campaign> ParseCampaign(std::string_view body);

class CampaignDirectory {
 public:
  // Ids are a sequence from a random start, or from `seed` (a simulation's: the
  // same seed, the same ids; not for a directory that restarts).
  static Result<std::unique_ptr<CampaignDirectory>> Load(store::Db* db, std::uint64_t seed = 0);

  // Stores a new campaign (durable before it returns). With an idempotency key
  // already used, returns the campaign it created instead (*created = false).
  Result<Campaign> Create(const std::string& tenant, Campaign c, const std::string& idempotency_key, bool* created);
  std::optional<Campaign> Find(const std::string& tenant, const std::string& id) const;
  std::vector<Campaign> List(const std::string& tenant) const;
  // Applies fn to the stored campaign and writes it; NotFound when unknown.
  Status Update(const std::string& tenant, const std::string& id, const std::function<void(Campaign&)>& fn);
  size_t skipped_records() const { return skipped_; }

 private:
  CampaignDirectory(store::Db* db, store::ColumnFamily cf) : db_(db), cf_(cf) {}
  Status Write(const std::string& tenant, const Campaign& c, const std::string& idempotency_key);
  store::Db* db_;
  store::ColumnFamily cf_;
  mutable std::mutex mu_;
  std::map<std::string, Campaign> campaigns_;     // tenant \0 id
  std::map<std::string, std::string> idempotency_;  // tenant \0 key -> id
  std::uint64_t sequence_ = 0;
  size_t skipped_ = 0;
};

// The campaign as JSON for the API, with the delivery side of the funnel given.
// How far a campaign's planning got: partitions expanded and decided of all, the
// users decided so far, and the pushes of a "now" campaign handed to the gateway.
struct PlanProgress {
  std::uint64_t partitions = 0, partitions_done = 0, decided = 0, dispatched = 0;
};
std::string CampaignJson(const Campaign& c, const struct Funnel& delivery, const PlanProgress& progress = {});

}  // namespace herald::engine
