// The policy's rules: per-user and per-follow state, how events change it, and
// the evaluator that decides one candidate push.
//
// Decide() is a pure function of the state, the candidate, the time and the
// config: O(1) in the user's history (every array here has a fixed size), no
// locks, no allocation unless an explanation is asked for. It returns Allow,
// Defer(until) or Suppress(rule), with the counters behind the decision, which
// Explain() turns into a sentence.
//
// Times inside the state are unix seconds in 32 bits (events are bounded to
// 2000..2100, stream/event.h). Calendar rules (the day, the month, quiet hours)
// are in the user's time zone.
//
// Thread-compatible: a state is owned by its partition's shard.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/clock.h"
#include "core/status.h"
#include "policy/policy_config.h"

namespace cctz {
class time_zone;
}

namespace herald::policy {

inline constexpr std::size_t kRecentSends = 8;    // send times kept per user and per follow
inline constexpr std::size_t kPendingPushes = 8;  // pushes whose open window is still open
inline constexpr std::size_t kDedupKeys = 8;      // collapse / idempotency keys remembered
inline constexpr std::size_t kSilenceCauses = 3;  // unopened pushes named in an explanation

// Durable values (stored in follow and decision records): append, never renumber.
enum class AccountType : std::uint8_t { kService = 0, kSubscription = 1, kBusiness = 2, kAd = 3 };
std::string_view AccountTypeName(AccountType t);
bool ParseAccountType(std::string_view name, AccountType* out);

enum class Verdict : std::uint8_t { kAllow = 0, kDefer = 1, kSuppress = 2 };
enum class Lane : std::uint8_t { kMarketing = 0, kTransactional = 1 };
std::string_view VerdictName(Verdict v);

// The rule behind a decision, in the order Decide() checks them. Durable.
enum class Rule : std::uint8_t {
  kNone = 0,                  // allowed
  kSubscriptionAccount = 1,   // subscription accounts never push on their own
  kExpired = 2,               // the message's TTL is over
  kDuplicateIdempotency = 3,  // the user already got a push with this idempotency key
  kDuplicateCollapse = 4,     // ... or with this collapse key, within the dedup window
  kNotInterested = 5,         // the user marked the account not interested or complained
  kAccountThrottled = 6,      // the account's reach is capped for its not-interested rate
  kFatigueSilence = 7,        // consecutive unopened pushes: silence
  kDowngradeChannel = 8,      // unopened since the last open: at most N a week
  kDailyCap = 9,              // pushes today over all accounts
  kServiceMonthlyCap = 10,    // a service account's pushes this month
  kNewFollowerFirstDays = 11, // the first days after a follow
  kNewFollowerRamp = 12,      // between the first days and the steady rule
  kNewFollowerDaily = 13,     // the steady per-day rule
  kQuietHours = 14,           // deferred to the end of quiet hours
  kQuietHoursTtl = 15,        // quiet hours end after the message expires
  // The engine's slot arbitration (engine/auction.h), after the policy allowed:
  kContention = 16,           // another candidate of higher value took the user's slot
  kAdBudget = 17,             // the ad campaign's budget for the day is spent
  kAdPaced = 18,              // the ad campaign's pacing held it back for now
};
inline constexpr std::size_t kRuleCount = 19;
std::string_view RuleName(Rule r);  // "fatigue_silence", ...; "allowed" for kNone

// The 64-bit key of an account id (the same as stream::KeyOf) and a 32-bit key of
// a message, collapse or idempotency id (never 0).
std::uint64_t AccountKey(std::string_view account_id);
std::uint32_t SmallKey(std::string_view id);

// One of the user's latest pushes. It stays after its open window closed (then
// `kFolded`), so that a late delivery, a retry or a mark naming its message finds it.
inline constexpr std::uint32_t kPushOpened = 1;  // opened or clicked
inline constexpr std::uint32_t kPushFolded = 2;  // its window closed and it was judged
struct PendingPush {
  std::uint64_t account = 0;
  std::uint32_t message = 0;   // SmallKey(message_id), 0 = none
  std::uint32_t sent_at = 0;
  std::uint32_t deadline = 0;  // end of the open window; 0 = free slot
  std::uint32_t flags = 0;     // kPushOpened | kPushFolded

  bool operator==(const PendingPush&) const = default;
};

// What the policy keeps per user: 328 bytes. All zeros is a user with no pushes.
struct UserPolicy {
  PendingPush pending[kPendingPushes];  // the latest pushes, by deadline, earliest first
  std::uint32_t sends[kRecentSends] = {};  // latest sends over all accounts, ascending, 0 = free
  std::uint32_t dedup_key[kDedupKeys] = {};
  std::uint32_t dedup_at[kDedupKeys] = {};
  std::uint32_t silence_cause[kSilenceCauses] = {};  // sent times of the unopened pushes
  std::uint32_t silent_until = 0;
  std::uint32_t last_open = 0;
  std::uint32_t downgraded_at = 0;  // 0: not in the downgrade channel
  std::uint32_t decision_seq = 0;   // decisions recorded so far
  std::uint16_t day = 0;            // local day of the latest counted send
  std::uint16_t unopened_since_open = 0;
  std::uint8_t day_sends = 0;
  std::uint8_t consecutive_unopened = 0;
  std::uint8_t dedup_next = 0;

  bool operator==(const UserPolicy&) const = default;
};
static_assert(std::is_trivially_copyable_v<UserPolicy>);

// What the policy keeps per user and account (the follow): 64 bytes.
struct FollowPolicy {
  std::uint64_t account = 0;       // AccountKey
  std::uint32_t followed_at = 0;   // 0: not following (sends are still counted)
  std::uint32_t sends[kRecentSends] = {};  // latest sends from the account, ascending
  std::uint32_t blocked_until = 0; // not interested / complaint
  std::uint32_t marked_at = 0;     // latest mark
  float weight = 1;                // the account's weight for this user
  std::uint16_t month = 0;         // local month of the latest counted send
  std::uint16_t not_interested = 0;
  std::uint16_t complaints = 0;
  std::uint8_t month_sends = 0;
  std::uint8_t type = 0;           // AccountType, as of the latest send

  bool operator==(const FollowPolicy&) const = default;
};
static_assert(std::is_trivially_copyable_v<FollowPolicy>);

// A user's follows, kept sorted by account key (any vector of FollowPolicy):
// the follow of `account`, or null; and the follow, added when missing.
template <typename Follows>
const FollowPolicy* FindFollow(const Follows& follows, std::uint64_t account) {
  auto it = std::lower_bound(follows.begin(), follows.end(), account,
                             [](const FollowPolicy& f, std::uint64_t k) { return f.account < k; });
  return it != follows.end() && it->account == account ? &*it : nullptr;
}
template <typename Follows>
FollowPolicy& FollowIn(Follows& follows, std::uint64_t account) {
  auto it = std::lower_bound(follows.begin(), follows.end(), account,
                             [](const FollowPolicy& f, std::uint64_t k) { return f.account < k; });
  if (it == follows.end() || it->account != account) {
    FollowPolicy f;
    f.account = account;
    it = follows.insert(it, f);
  }
  return *it;
}

// What the caller knows of the account when it asks.
struct AccountView {
  std::uint64_t key = 0;
  AccountType type = AccountType::kBusiness;
  double weight = 1;        // over all users (down-weighted when its rate is high)
  double reach = 1;         // fraction of followers it may reach (throttled below 1)
  double rate = 0;          // its not-interested rate, for explanations
  double complaint_rate = 0;  // its complaints per push (the ad auction's complaint term)
};


struct Candidate {
  AccountView account;
  std::uint64_t user_hash = 0;  // SmallKey-like hash of the user, for the reach cut
  Lane lane = Lane::kMarketing;
  bool urgent = false;          // transactional and urgent: may land in quiet hours
  Micros expires_at = 0;        // 0: no TTL
  std::uint32_t collapse_key = 0;     // SmallKey, 0 = none
  std::uint32_t idempotency_key = 0;  // SmallKey, 0 = none
};

struct Decision {
  Verdict verdict = Verdict::kAllow;
  Rule rule = Rule::kNone;
  Micros until = 0;   // defer: when to deliver; suppress: when the rule next allows (0: unknown)
  // The counters behind the rule (their meaning per rule in docs/policy.md).
  std::uint32_t count = 0;
  std::uint32_t limit = 0;
  std::uint32_t day_after_follow = 0;
  Micros since = 0;   // start of the rule's window, or the time of the mark
  Micros causes[kSilenceCauses] = {};
  double weight = 1;  // the account's weight for the user (per user x global)
  double rate = 0;    // the account's not-interested rate (throttle)
};

// Fold: pushes whose open window ended by `horizon` and were not opened count as
// unopened, in deadline order (silence and downgrade start here).
void Fold(UserPolicy& u, Micros horizon, const PolicyConfig& cfg);

// A push counted at `at` (the first of its sent and delivered events): user and
// follow counters, an entry for its open window, its dedup keys. `follow` may be
// null (no per-account counters then). A transactional push leaves only its dedup
// keys: it counts toward no cap and no fatigue.
void ApplySend(UserPolicy& u, FollowPolicy* follow, AccountType type, Lane lane, std::uint32_t message,
               std::uint32_t collapse_key, std::uint32_t idempotency_key, Micros at,
               const cctz::time_zone& tz, const PolicyConfig& cfg);
// The message was delivered at `at`: its open window starts there (if it is pending).
void ApplyDelivered(UserPolicy& u, std::uint32_t message, Micros at, const PolicyConfig& cfg);
// An open or click (of `message`, 0 if unknown): the user is back to normal, and
// pushes sent before it no longer count as unopened.
void ApplyOpen(UserPolicy& u, std::uint32_t message, Micros at);
// True when `message` is among the user's latest pushes (counted already).
bool IsRecentPush(const UserPolicy& u, std::uint32_t message);
// The account of one of the latest pushes, 0 if the message is not among them.
std::uint64_t AccountOfPending(const UserPolicy& u, std::uint32_t message);
// A "not interested" mark (complaint = false) or complaint against the follow's account.
void ApplyMark(FollowPolicy& f, bool complaint, Micros at, const PolicyConfig& cfg);
void ApplyFollow(FollowPolicy& f, Micros followed_at);
void ApplyUnfollow(FollowPolicy& f);

// Decides `c` for the user at `now`. `follow` may be null (the user has no
// relation with the account yet).
Decision Decide(const UserPolicy& u, const FollowPolicy* follow, const Candidate& c, Micros now,
                const cctz::time_zone& tz, const PolicyConfig& cfg);

// The decision as a sentence, times in the user's zone, e.g. "suppressed: 3
// consecutive unopened pushes (08:00, 09:00, 10:00 on 8 March); silent until 11
// March 10:00". `account` names the account.
std::string Explain(const Decision& d, std::string_view account, const cctz::time_zone& tz,
                    const PolicyConfig& cfg);

// Durable encodings (version byte first). Corruption for anything else.
std::string SerializeUser(const UserPolicy& u);
Result<UserPolicy> DeserializeUser(std::string_view bytes);
std::string SerializeFollow(const FollowPolicy& f);
Result<FollowPolicy> DeserializeFollow(std::string_view bytes);

}  // namespace herald::policy
