#include "policy/rules.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include "core/bytes.h"

namespace herald::policy {
namespace {

constexpr std::uint32_t kDay = 86400;
constexpr std::uint32_t kWeek = 7 * kDay;
const cctz::civil_day kDayZero(1999, 12, 27);  // a Monday; local days count from it

std::uint32_t Secs(Micros t) { return t <= 0 ? 0 : static_cast<std::uint32_t>(t / kMicrosPerSecond); }
Micros At(std::uint32_t s) { return static_cast<Micros>(s) * kMicrosPerSecond; }

using Seconds = std::chrono::time_point<std::chrono::system_clock, cctz::seconds>;
cctz::civil_second Local(Micros t, const cctz::time_zone& tz) {
  return cctz::convert(Seconds(cctz::seconds(t / kMicrosPerSecond)), tz);
}
Micros FromLocal(const cctz::civil_second& cs, const cctz::time_zone& tz) {
  // A local time skipped by a daylight-saving change maps to the instant it would
  // have had before the change (cctz's "pre"), which lies after the gap.
  return static_cast<Micros>(cctz::convert(cs, tz).time_since_epoch().count()) * kMicrosPerSecond;
}
// The user's local calendar at an instant, from the zone's UTC offset. Offsets
// are cached per thread and zone for the span between two transitions, so a
// decision costs no time-zone lookup while the zone's offset holds.
struct LocalNow {
  int minute_of_day = 0;
  std::uint16_t day = 0;    // days since Monday 1999-12-27
  std::uint16_t month = 0;  // months since January 2000
};
constexpr std::int64_t kEpochToDayZero = 10952;  // days from 1970-01-01 to 1999-12-27

std::int64_t OffsetAt(std::int64_t secs, const cctz::time_zone& tz) {
  struct Span {
    const cctz::time_zone* tz = nullptr;
    std::int64_t lo = 0, hi = 0;  // [lo, hi): unix seconds with this offset
    std::int64_t offset = 0;
  };
  thread_local Span cache[4];
  thread_local unsigned next = 0;
  for (const Span& c : cache) {
    if (c.tz == &tz && secs >= c.lo && secs < c.hi) return c.offset;
  }
  const Seconds tp{cctz::seconds(secs)};
  const auto al = tz.lookup(tp);
  Span span{&tz, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(), al.offset};
  const cctz::civil_second epoch(1970, 1, 1, 0, 0, 0);
  cctz::time_zone::civil_transition trans;
  // A transition's `from` is the civil time just before it, in the old offset
  // (ours, for the next one); its `to` is in the new offset (ours, for the previous).
  if (tz.next_transition(tp, &trans)) span.hi = (trans.from - epoch) - al.offset;
  if (tz.prev_transition(tp + cctz::seconds(1), &trans)) span.lo = (trans.to - epoch) - al.offset;
  if (!(secs >= span.lo && secs < span.hi)) {  // not a span we can trust: no caching
    span.lo = span.hi = secs;
    return al.offset;
  }
  cache[next++ % 4] = span;
  return al.offset;
}

// Civil year and month of a day count since 1970-01-01 (H. Hinnant's algorithm).
void CivilMonth(std::int64_t z, int* year, int* month) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *year = static_cast<int>(yoe + era * 400 + (m <= 2));
  *month = m;
}

LocalNow LocalAt(Micros t, const cctz::time_zone& tz) {
  const std::int64_t secs = t / kMicrosPerSecond - (t % kMicrosPerSecond < 0 ? 1 : 0);
  const std::int64_t local = secs + OffsetAt(secs, tz);
  const std::int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  LocalNow n;
  n.minute_of_day = static_cast<int>((local - days * 86400) / 60);
  n.day = static_cast<std::uint16_t>(days - kEpochToDayZero);
  int y, m;
  CivilMonth(days, &y, &m);
  n.month = static_cast<std::uint16_t>((y - 2000) * 12 + m - 1);
  return n;
}

std::uint16_t DayOf(Micros t, const cctz::time_zone& tz) { return LocalAt(t, tz).day; }
std::uint16_t MonthOf(Micros t, const cctz::time_zone& tz) { return LocalAt(t, tz).month; }
Micros NextLocalMidnight(Micros t, const cctz::time_zone& tz) {
  return FromLocal(cctz::civil_second(cctz::civil_day(Local(t, tz)) + 1), tz);
}
Micros NextLocalMonth(Micros t, const cctz::time_zone& tz) {
  return FromLocal(cctz::civil_second(cctz::civil_month(Local(t, tz)) + 1), tz);
}

// Ascending arrays of times with free slots (0) first.
void InsertSorted(std::uint32_t (&a)[kRecentSends], std::uint32_t v) {
  if (a[0] != 0 && v < a[0]) return;  // older than every kept time
  a[0] = v;
  for (size_t i = 1; i < kRecentSends && a[i] < a[i - 1]; ++i) std::swap(a[i], a[i - 1]);
}
// Times >= since, and the oldest of them.
std::uint32_t CountSince(const std::uint32_t (&a)[kRecentSends], std::uint32_t since,
                         std::uint32_t* oldest = nullptr) {
  std::uint32_t n = 0;
  for (size_t i = kRecentSends; i-- > 0;) {
    if (a[i] == 0 || a[i] < since) break;
    ++n;
    if (oldest) *oldest = a[i];
  }
  return n;
}
// The k-th newest time (k = 1 is the newest), 0 if fewer are kept.
std::uint32_t NthNewest(const std::uint32_t (&a)[kRecentSends], std::uint32_t k) {
  return k >= 1 && k <= kRecentSends ? a[kRecentSends - k] : 0;
}

// Collapse (tag 1) and idempotency (tag 2) keys share the dedup ring; the tag
// keeps one kind from matching the other.
std::uint32_t DedupKey(std::uint32_t key, std::uint32_t tag) { return key ? (key & ~3u) | tag : 0; }

void SortPending(UserPolicy& u) {
  std::stable_sort(std::begin(u.pending), std::end(u.pending), [](const PendingPush& a, const PendingPush& b) {
    if ((a.deadline == 0) != (b.deadline == 0)) return b.deadline == 0;
    return a.deadline < b.deadline;
  });
}

// Judges a push whose window closed (or that is pushed out of the ring).
void CountUnopened(UserPolicy& u, const PendingPush& p, const PolicyConfig& cfg) {
  if (p.flags & kPushOpened) {  // an opened push ends a run of unopened ones
    u.consecutive_unopened = 0;
    return;
  }
  if (p.sent_at < u.last_open) return;  // the user opened something after it came
  if (u.consecutive_unopened < 255) ++u.consecutive_unopened;
  if (u.unopened_since_open < 65535) ++u.unopened_since_open;
  for (size_t i = 1; i < kSilenceCauses; ++i) u.silence_cause[i - 1] = u.silence_cause[i];
  u.silence_cause[kSilenceCauses - 1] = p.sent_at;
  if (u.consecutive_unopened >= cfg.silence_after_unopened) {
    u.silent_until = std::max<std::uint32_t>(u.silent_until, p.deadline + cfg.silence_s);
    u.consecutive_unopened = 0;
  }
  if (u.unopened_since_open >= cfg.downgrade_after_unopened && !u.downgraded_at) {
    u.downgraded_at = p.deadline;
  }
}

std::string LocalText(Micros t, const cctz::time_zone& tz, bool with_date = true) {
  static const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                  "July",    "August",   "September", "October", "November", "December"};
  const cctz::civil_second cs = Local(t, tz);
  char buf[64];
  if (with_date) {
    std::snprintf(buf, sizeof buf, "%d %s %02d:%02d", cs.day(), kMonths[cs.month() - 1], cs.hour(),
                  cs.minute());
  } else {
    std::snprintf(buf, sizeof buf, "%02d:%02d", cs.hour(), cs.minute());
  }
  return buf;
}

std::string Plural(std::uint32_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The trailing-window cap on `day` (0-based days since the follow) between the
// first days and the steady rule: linear from new_follower_max to
// steady_per_day * new_follower_days, rounded half up.
std::uint32_t RampCap(std::uint32_t day, const PolicyConfig& c) {
  const double from = static_cast<double>(c.new_follower_max);
  const double to = static_cast<double>(c.steady_per_day * c.new_follower_days);
  const double steps = static_cast<double>(c.steady_from_day - c.new_follower_days + 1);
  const double x = from + (to - from) * static_cast<double>(day - c.new_follower_days + 1) / steps;
  return static_cast<std::uint32_t>(std::floor(x + 0.5));
}

}  // namespace

std::string_view AccountTypeName(AccountType t) {
  switch (t) {
    case AccountType::kService: return "service";
    case AccountType::kSubscription: return "subscription";
    case AccountType::kBusiness: return "business";
    case AccountType::kAd: return "ad";
  }
  return "unknown";
}

bool ParseAccountType(std::string_view name, AccountType* out) {
  for (auto t : {AccountType::kService, AccountType::kSubscription, AccountType::kBusiness, AccountType::kAd}) {
    if (AccountTypeName(t) == name) {
      *out = t;
      return true;
    }
  }
  return false;
}

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kAllow: return "allow";
    case Verdict::kDefer: return "defer";
    case Verdict::kSuppress: return "suppress";
  }
  return "unknown";
}

std::string_view RuleName(Rule r) {
  switch (r) {
    case Rule::kNone: return "allowed";
    case Rule::kSubscriptionAccount: return "subscription_account";
    case Rule::kExpired: return "expired";
    case Rule::kDuplicateIdempotency: return "duplicate_idempotency_key";
    case Rule::kDuplicateCollapse: return "duplicate_collapse_key";
    case Rule::kNotInterested: return "not_interested";
    case Rule::kAccountThrottled: return "account_throttled";
    case Rule::kFatigueSilence: return "fatigue_silence";
    case Rule::kDowngradeChannel: return "downgrade_channel";
    case Rule::kDailyCap: return "daily_cap";
    case Rule::kServiceMonthlyCap: return "service_monthly_cap";
    case Rule::kNewFollowerFirstDays: return "new_follower_first_days";
    case Rule::kNewFollowerRamp: return "new_follower_ramp";
    case Rule::kNewFollowerDaily: return "new_follower_daily";
    case Rule::kQuietHours: return "quiet_hours";
    case Rule::kQuietHoursTtl: return "quiet_hours_ttl";
    case Rule::kContention: return "contention";
    case Rule::kAdBudget: return "ad_budget";
    case Rule::kAdPaced: return "ad_paced";
  }
  return "unknown";
}

std::uint64_t AccountKey(std::string_view id) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a, as stream::KeyOf
  for (unsigned char c : id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h ? h : 1;
}

std::uint32_t SmallKey(std::string_view id) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : id) {
    h ^= c;
    h *= 16777619u;
  }
  return h ? h : 1;
}

namespace {
// The fatigue fields of `u` once the pushes whose window closed by `now` are
// counted, as Fold would leave them.
struct Fatigue {
  std::uint32_t silent_until, downgraded_at;
  std::uint32_t cause[kSilenceCauses];
};
Fatigue FatigueAt(const UserPolicy& u, std::uint32_t now, const PolicyConfig& cfg) {
  Fatigue f{u.silent_until, u.downgraded_at, {}};
  for (size_t i = 0; i < kSilenceCauses; ++i) f.cause[i] = u.silence_cause[i];
  std::uint32_t consecutive = u.consecutive_unopened, since_open = u.unopened_since_open;
  for (const PendingPush& p : u.pending) {
    if (p.deadline == 0 || p.deadline > now) break;
    if (p.flags & kPushFolded) continue;
    if (p.flags & kPushOpened) {
      consecutive = 0;
      continue;
    }
    if (p.sent_at < u.last_open) continue;
    consecutive = std::min<std::uint32_t>(consecutive + 1, 255);
    since_open = std::min<std::uint32_t>(since_open + 1, 65535);
    for (size_t i = 1; i < kSilenceCauses; ++i) f.cause[i - 1] = f.cause[i];
    f.cause[kSilenceCauses - 1] = p.sent_at;
    if (consecutive >= cfg.silence_after_unopened) {
      f.silent_until = std::max<std::uint32_t>(f.silent_until, p.deadline + static_cast<std::uint32_t>(cfg.silence_s));
      consecutive = 0;
    }
    if (since_open >= cfg.downgrade_after_unopened && !f.downgraded_at) f.downgraded_at = p.deadline;
  }
  return f;
}
}  // namespace

void Fold(UserPolicy& u, Micros horizon, const PolicyConfig& cfg) {
  const std::uint32_t h = Secs(horizon);
  for (PendingPush& p : u.pending) {
    if (p.deadline == 0 || p.deadline > h) break;
    if (p.flags & kPushFolded) continue;
    p.flags |= kPushFolded;
    CountUnopened(u, p, cfg);
  }
}

void ApplySend(UserPolicy& u, FollowPolicy* f, AccountType type, Lane lane, std::uint32_t message,
               std::uint32_t collapse_key, std::uint32_t idempotency_key, Micros at,
               const cctz::time_zone& tz, const PolicyConfig& cfg) {
  const std::uint32_t s = std::max<std::uint32_t>(Secs(at), 1);
  for (std::uint32_t key : {DedupKey(collapse_key, 1), DedupKey(idempotency_key, 2)}) {
    if (!key) continue;
    u.dedup_key[u.dedup_next] = key;
    u.dedup_at[u.dedup_next] = s;
    u.dedup_next = static_cast<std::uint8_t>((u.dedup_next + 1) % kDedupKeys);
  }
  if (lane == Lane::kTransactional) return;
  InsertSorted(u.sends, s);
  const std::uint16_t day = DayOf(at, tz);
  if (u.day_sends == 0 || day > u.day) {
    u.day = day;
    u.day_sends = 1;
  } else if (day == u.day && u.day_sends < 255) {
    ++u.day_sends;
  }
  // The slot: a free one, else the oldest judged push, else the earliest open
  // one, which is judged now (as unopened unless it was opened).
  size_t slot = kPendingPushes;
  for (size_t i = 0; i < kPendingPushes && slot == kPendingPushes; ++i) {
    if (u.pending[i].deadline == 0) slot = i;
  }
  for (size_t i = 0; i < kPendingPushes && slot == kPendingPushes; ++i) {
    if (u.pending[i].flags & kPushFolded) slot = i;  // by deadline: the oldest first
  }
  if (slot == kPendingPushes) {
    slot = 0;
    u.pending[0].flags |= kPushFolded;
    CountUnopened(u, u.pending[0], cfg);
  }
  u.pending[slot] =
      PendingPush{f ? f->account : 0, message, s, s + static_cast<std::uint32_t>(cfg.open_window_s), 0};
  SortPending(u);
  if (!f) return;
  InsertSorted(f->sends, s);
  const std::uint16_t month = MonthOf(at, tz);
  if (f->month_sends == 0 || month > f->month) {
    f->month = month;
    f->month_sends = 1;
  } else if (month == f->month && f->month_sends < 255) {
    ++f->month_sends;
  }
  f->type = static_cast<std::uint8_t>(type);
}

void ApplyDelivered(UserPolicy& u, std::uint32_t message, Micros at, const PolicyConfig& cfg) {
  if (!message) return;
  for (auto& p : u.pending) {
    if (p.deadline != 0 && p.message == message && !(p.flags & kPushFolded)) {
      p.deadline = std::max<std::uint32_t>(p.deadline, Secs(at) + static_cast<std::uint32_t>(cfg.open_window_s));
      SortPending(u);
      return;
    }
  }
}

void ApplyOpen(UserPolicy& u, std::uint32_t message, Micros at) {
  if (message) {
    for (auto& p : u.pending) {
      if (p.deadline != 0 && p.message == message) p.flags |= kPushOpened;
    }
  }
  u.last_open = std::max(u.last_open, Secs(at));
  u.consecutive_unopened = 0;
  u.unopened_since_open = 0;
  u.downgraded_at = 0;
  u.silent_until = 0;
}

bool IsRecentPush(const UserPolicy& u, std::uint32_t message) {
  if (!message) return false;
  for (const auto& p : u.pending) {
    if (p.deadline != 0 && p.message == message) return true;
  }
  return false;
}

std::uint64_t AccountOfPending(const UserPolicy& u, std::uint32_t message) {
  if (!message) return 0;
  for (const auto& p : u.pending) {
    if (p.deadline != 0 && p.message == message) return p.account;
  }
  return 0;
}

void ApplyMark(FollowPolicy& f, bool complaint, Micros at, const PolicyConfig& cfg) {
  const std::uint32_t s = Secs(at);
  const std::uint64_t days = complaint ? cfg.complaint_block_days : cfg.not_interested_block_days;
  f.blocked_until = std::max<std::uint32_t>(f.blocked_until, s + static_cast<std::uint32_t>(days * kDay));
  f.marked_at = std::max(f.marked_at, s);
  f.weight = static_cast<float>(f.weight * (complaint ? cfg.complaint_weight : cfg.not_interested_weight));
  std::uint16_t& n = complaint ? f.complaints : f.not_interested;
  if (n < 65535) ++n;
}

void ApplyFollow(FollowPolicy& f, Micros followed_at) { f.followed_at = std::max<std::uint32_t>(Secs(followed_at), 1); }
void ApplyUnfollow(FollowPolicy& f) { f.followed_at = 0; }

Decision Decide(const UserPolicy& in, const FollowPolicy* f, const Candidate& c, Micros now,
                const cctz::time_zone& tz, const PolicyConfig& cfg) {
  Decision d;
  d.weight = (f ? f->weight : 1.0) * c.account.weight;
  d.rate = c.account.rate;
  const std::uint32_t now_s = Secs(now);
  auto suppress = [&](Rule r, Micros until) {
    d.verdict = Verdict::kSuppress;
    d.rule = r;
    d.until = until;
    return d;
  };
  if (c.account.type == AccountType::kSubscription) return suppress(Rule::kSubscriptionAccount, 0);
  if (c.expires_at && c.expires_at <= now) {
    d.since = c.expires_at;
    return suppress(Rule::kExpired, 0);
  }
  // Pushes whose window closed by now count as unopened: their effect on the
  // fatigue fields, without copying the state.
  Fatigue fat = FatigueAt(in, now_s, cfg);
  const UserPolicy& u = in;
  const LocalNow local = LocalAt(now, tz);
  for (size_t i = 0; i < kDedupKeys; ++i) {
    if (!u.dedup_key[i] || u.dedup_at[i] + cfg.dedup_window_s <= now_s) continue;
    if (c.idempotency_key && u.dedup_key[i] == DedupKey(c.idempotency_key, 2)) {
      d.since = At(u.dedup_at[i]);
      return suppress(Rule::kDuplicateIdempotency, 0);
    }
    if (c.collapse_key && u.dedup_key[i] == DedupKey(c.collapse_key, 1)) {
      d.since = At(u.dedup_at[i]);
      return suppress(Rule::kDuplicateCollapse, At(u.dedup_at[i] + static_cast<std::uint32_t>(cfg.dedup_window_s)));
    }
  }
  if (c.lane == Lane::kMarketing) {
    if (f && f->blocked_until > now_s) {
      d.since = At(f->marked_at);
      d.count = f->not_interested;
      d.limit = f->complaints;
      return suppress(Rule::kNotInterested, At(f->blocked_until));
    }
    if (c.account.reach < 1 && static_cast<double>(c.user_hash % 10000) >= c.account.reach * 10000) {
      return suppress(Rule::kAccountThrottled, 0);
    }
    if (fat.silent_until > now_s) {
      for (size_t i = 0; i < kSilenceCauses; ++i) d.causes[i] = At(fat.cause[i]);
      d.count = static_cast<std::uint32_t>(cfg.silence_after_unopened);
      return suppress(Rule::kFatigueSilence, At(fat.silent_until));
    }
    if (fat.downgraded_at) {
      std::uint32_t oldest = 0;
      const std::uint32_t n = CountSince(u.sends, now_s >= kWeek ? now_s - kWeek + 1 : 0, &oldest);
      if (n >= cfg.downgrade_per_week) {
        d.count = n;
        d.limit = static_cast<std::uint32_t>(cfg.downgrade_per_week);
        d.since = At(fat.downgraded_at);
        // Allowed again once enough of the week's pushes are older than 7 days.
        const std::uint32_t k = NthNewest(u.sends, static_cast<std::uint32_t>(cfg.downgrade_per_week));
        return suppress(Rule::kDowngradeChannel, k ? At(k + kWeek) : 0);
      }
    }
    const std::uint16_t today = local.day;
    const std::uint32_t sent_today = (u.day_sends && u.day == today) ? u.day_sends : 0;
    d.count = sent_today;
    d.limit = static_cast<std::uint32_t>(cfg.daily_cap);
    if (sent_today >= cfg.daily_cap) return suppress(Rule::kDailyCap, NextLocalMidnight(now, tz));
    if (c.account.type == AccountType::kService) {
      const std::uint16_t month = local.month;
      const std::uint32_t m = (f && f->month_sends && f->month == month) ? f->month_sends : 0;
      if (m >= cfg.service_monthly_cap) {
        d.count = m;
        d.limit = static_cast<std::uint32_t>(cfg.service_monthly_cap);
        return suppress(Rule::kServiceMonthlyCap, NextLocalMonth(now, tz));
      }
    }
    if (f && f->followed_at && f->followed_at <= now_s) {
      const std::uint32_t day = (now_s - f->followed_at) / kDay;
      d.day_after_follow = day;
      d.since = At(f->followed_at);
      if (day < cfg.new_follower_days) {
        const std::uint32_t n = CountSince(f->sends, f->followed_at);
        if (n >= cfg.new_follower_max) {
          d.count = n;
          d.limit = static_cast<std::uint32_t>(cfg.new_follower_max);
          return suppress(Rule::kNewFollowerFirstDays,
                          At(f->followed_at + static_cast<std::uint32_t>(cfg.new_follower_days) * kDay));
        }
      } else if (day < cfg.steady_from_day) {
        const std::uint32_t window = static_cast<std::uint32_t>(cfg.new_follower_days) * kDay;
        const std::uint32_t from = std::max(f->followed_at, now_s - window + 1);
        const std::uint32_t n = CountSince(f->sends, from);
        const std::uint32_t cap = RampCap(day, cfg);
        if (n >= cap) {
          d.count = n;
          d.limit = cap;
          const std::uint32_t k = cap ? NthNewest(f->sends, cap) : 0;
          return suppress(Rule::kNewFollowerRamp, k ? At(k + window) : 0);
        }
      } else {
        std::uint32_t n = 0;  // sends on the user's local day (26 h covers any day)
        for (size_t i = kRecentSends; i-- > 0;) {
          const std::uint32_t t = f->sends[i];
          if (t == 0 || t + 26 * 3600 < now_s) break;
          if (t <= now_s && DayOf(At(t), tz) == local.day) ++n;
        }
        if (n >= cfg.steady_per_day) {
          d.count = n;
          d.limit = static_cast<std::uint32_t>(cfg.steady_per_day);
          return suppress(Rule::kNewFollowerDaily, NextLocalMidnight(now, tz));
        }
      }
      d.count = sent_today;
      d.limit = static_cast<std::uint32_t>(cfg.daily_cap);
    }
  }
  const bool night_ok = c.urgent && c.lane == Lane::kTransactional;
  if (!night_ok && cfg.quiet_start_min != cfg.quiet_end_min) {
    const int m = local.minute_of_day;
    const int s = cfg.quiet_start_min, e = cfg.quiet_end_min;
    const bool quiet = s < e ? (m >= s && m < e) : (m >= s || m < e);
    if (quiet) {
      cctz::civil_day day(Local(now, tz));
      if (m >= e) day += 1;  // after today's end: the quiet hours end tomorrow
      const Micros next = FromLocal(cctz::civil_second(day.year(), day.month(), day.day(), e / 60, e % 60, 0), tz);
      if (c.expires_at && c.expires_at <= next) {
        d.since = c.expires_at;
        return suppress(Rule::kQuietHoursTtl, next);
      }
      d.verdict = Verdict::kDefer;
      d.rule = Rule::kQuietHours;
      d.until = next;
      d.since = now;
      return d;
    }
  }
  return d;
}

std::string Explain(const Decision& d, std::string_view account, const cctz::time_zone& tz,
                    const PolicyConfig& cfg) {
  const std::string acct(account);
  const std::string until = d.until ? LocalText(d.until, tz) : "";
  const std::string quiet = cfg.quiet_start + "\u2013" + cfg.quiet_end;
  switch (d.rule) {
    case Rule::kNone:
      return "allowed: " + std::to_string(d.count) + " of " + std::to_string(d.limit) +
             " pushes today before this one";
    case Rule::kSubscriptionAccount:
      return "suppressed: " + acct + " is a subscription account; its messages go into the daily digest";
    case Rule::kExpired:
      return "suppressed: the message expired at " + LocalText(d.since, tz);
    case Rule::kDuplicateIdempotency:
      return "suppressed: a push with the same idempotency key was counted at " + LocalText(d.since, tz);
    case Rule::kDuplicateCollapse:
      return "suppressed: a push with the same collapse key was counted at " + LocalText(d.since, tz) +
             "; a new one is allowed from " + until;
    case Rule::kNotInterested:
      return "suppressed: the user marked " + acct + " not interested (" + std::to_string(d.count) +
             ") or complained (" + std::to_string(d.limit) + "), latest " + LocalText(d.since, tz) +
             "; blocked until " + until;
    case Rule::kAccountThrottled: {
      char rate[32];
      std::snprintf(rate, sizeof rate, "%.1f%%", d.rate * 100);
      char reach[32];
      std::snprintf(reach, sizeof reach, "%.0f%%", cfg.throttle_reach * 100);
      return "suppressed: " + acct + " is throttled for its not-interested rate of " + rate +
             " over " + std::to_string(cfg.reputation_window_days) + " days; it reaches " + reach +
             " of its followers";
    }
    case Rule::kFatigueSilence: {
      std::string causes;
      Micros last = 0;
      for (Micros t : d.causes) {
        if (!t) continue;
        causes += (causes.empty() ? "" : ", ") + LocalText(t, tz, false);
        last = t;
      }
      std::string on = last ? " on " + LocalText(last, tz).substr(0, LocalText(last, tz).size() - 6) : "";
      return "suppressed: " + Plural(d.count, "consecutive unopened push", "consecutive unopened pushes") +
             " (" + causes + on + "); silent until " + until;
    }
    case Rule::kDowngradeChannel:
      return "suppressed: downgrade channel since " + LocalText(d.since, tz) + " (" +
             std::to_string(cfg.downgrade_after_unopened) + " unopened pushes since the last open): " +
             std::to_string(d.count) + " of " + std::to_string(d.limit) +
             " pushes in the last 7 days; next allowed " + until;
    case Rule::kDailyCap:
      return "suppressed: " + std::to_string(d.count) + " of " + std::to_string(d.limit) +
             " pushes today (daily cap); next allowed " + until;
    case Rule::kServiceMonthlyCap:
      return "suppressed: " + std::to_string(d.count) + " of " + std::to_string(d.limit) +
             " pushes this month from service account " + acct + "; next allowed " + until;
    case Rule::kNewFollowerFirstDays:
      return "suppressed: " + std::to_string(d.count) + " of " + std::to_string(d.limit) + " messages from " +
             acct + " in the first " + std::to_string(cfg.new_follower_days) +
             " days after the follow (followed " + LocalText(d.since, tz) + "); next allowed " + until;
    case Rule::kNewFollowerRamp:
      return "suppressed: " + std::to_string(d.count) + " of " + std::to_string(d.limit) + " messages from " +
             acct + " in the last " + std::to_string(cfg.new_follower_days) + " days, on day " +
             std::to_string(d.day_after_follow) + " after the follow; next allowed " + until;
    case Rule::kNewFollowerDaily:
      return "suppressed: " + std::to_string(d.count) + " of " + std::to_string(d.limit) + " messages from " +
             acct + " today (day " + std::to_string(d.day_after_follow) +
             " after the follow); next allowed " + until;
    case Rule::kQuietHours:
      return "deferred: " + LocalText(d.since, tz, false) + " is in quiet hours (" + quiet +
             " local); deliver at " + until;
    case Rule::kQuietHoursTtl:
      return "suppressed: quiet hours (" + quiet + ") end at " + until + ", after the message expires at " +
             LocalText(d.since, tz);
    case Rule::kContention: {
      // weight: this push's value, rate: the winner's (auction ranks).
      char ranks[96];
      std::snprintf(ranks, sizeof ranks, "value %.2f against the winner's %.2f", d.weight, d.rate);
      std::string out = std::string(d.verdict == Verdict::kDefer ? "deferred" : "suppressed") +
                        ": lost the user's slot to a push of higher value (" + ranks + ", " +
                        Plural(d.count, "candidate", "candidates") + ")";
      return d.verdict == Verdict::kDefer ? out + "; next try " + until
                                          : out + "; the message expires at " + LocalText(d.since, tz) +
                                                " before the next slot";
    }
    case Rule::kAdBudget:
      return d.verdict == Verdict::kDefer
                 ? "deferred: the ad campaign's budget for the day is spent; next try " + until
                 : "suppressed: the ad campaign's budget for the day is spent, and the message expires at " +
                       LocalText(d.since, tz) + " before the next day's";
    case Rule::kAdPaced:
      return d.verdict == Verdict::kDefer
                 ? "deferred: the ad campaign's budget is paced over the day; next try " + until
                 : "suppressed: the ad campaign's budget is paced over the day, and the message expires at " +
                       LocalText(d.since, tz) + " before the next try";
  }
  return "unknown rule";
}

// Records: u8 version (1), then each field in declaration order, fixed-width
// little-endian (the pending pushes as account, message, sent_at, deadline,
// flags u8). Sizes checked in tests/rules_test.cc.
namespace {
constexpr std::uint8_t kUserVersion = 1;
constexpr std::uint8_t kFollowVersion = 1;
template <size_t N>
void Times(ByteWriter& w, const std::uint32_t (&a)[N]) {
  for (auto v : a) w.Fixed<std::uint32_t>(v);
}
template <size_t N>
bool Times(ByteReader& r, std::uint32_t (&a)[N]) {
  for (auto& v : a) {
    if (!r.Fixed(&v)) return false;
  }
  return true;
}
}  // namespace

std::string SerializeUser(const UserPolicy& u) {
  std::string out;
  ByteWriter w(&out);
  w.Byte(kUserVersion);
  for (const auto& p : u.pending) {
    w.Fixed<std::uint64_t>(p.account);
    w.Fixed<std::uint32_t>(p.message);
    w.Fixed<std::uint32_t>(p.sent_at);
    w.Fixed<std::uint32_t>(p.deadline);
    w.Byte(static_cast<std::uint8_t>(p.flags));
  }
  Times(w, u.sends);
  Times(w, u.dedup_key);
  Times(w, u.dedup_at);
  Times(w, u.silence_cause);
  for (auto v : {u.silent_until, u.last_open, u.downgraded_at, u.decision_seq}) w.Fixed<std::uint32_t>(v);
  w.Fixed<std::uint16_t>(u.day);
  w.Fixed<std::uint16_t>(u.unopened_since_open);
  w.Byte(u.day_sends);
  w.Byte(u.consecutive_unopened);
  w.Byte(u.dedup_next);
  return out;
}

Result<UserPolicy> DeserializeUser(std::string_view bytes) {
  ByteReader r(bytes);
  std::uint8_t version = 0;
  if (!r.Byte(&version) || version != kUserVersion) return Status::Corruption("policy user record: unknown version");
  UserPolicy u;
  bool ok = true;
  for (auto& p : u.pending) {
    std::uint8_t flags = 0;
    ok = ok && r.Fixed(&p.account) && r.Fixed(&p.message) && r.Fixed(&p.sent_at) && r.Fixed(&p.deadline) &&
         r.Byte(&flags);
    p.flags = flags;
  }
  ok = ok && Times(r, u.sends) && Times(r, u.dedup_key) && Times(r, u.dedup_at) && Times(r, u.silence_cause) &&
       r.Fixed(&u.silent_until) && r.Fixed(&u.last_open) && r.Fixed(&u.downgraded_at) &&
       r.Fixed(&u.decision_seq) && r.Fixed(&u.day) && r.Fixed(&u.unopened_since_open) && r.Byte(&u.day_sends) &&
       r.Byte(&u.consecutive_unopened) && r.Byte(&u.dedup_next);
  if (!ok || !r.done() || u.dedup_next >= kDedupKeys) return Status::Corruption("policy user record: malformed");
  return u;
}

std::string SerializeFollow(const FollowPolicy& f) {
  std::string out;
  ByteWriter w(&out);
  w.Byte(kFollowVersion);
  w.Fixed<std::uint64_t>(f.account);
  w.Fixed<std::uint32_t>(f.followed_at);
  Times(w, f.sends);
  w.Fixed<std::uint32_t>(f.blocked_until);
  w.Fixed<std::uint32_t>(f.marked_at);
  w.Fixed<float>(f.weight);
  w.Fixed<std::uint16_t>(f.month);
  w.Fixed<std::uint16_t>(f.not_interested);
  w.Fixed<std::uint16_t>(f.complaints);
  w.Byte(f.month_sends);
  w.Byte(f.type);
  return out;
}

Result<FollowPolicy> DeserializeFollow(std::string_view bytes) {
  ByteReader r(bytes);
  std::uint8_t version = 0;
  if (!r.Byte(&version) || version != kFollowVersion) {
    return Status::Corruption("policy follow record: unknown version");
  }
  FollowPolicy f;
  bool ok = r.Fixed(&f.account) && r.Fixed(&f.followed_at) && Times(r, f.sends) && r.Fixed(&f.blocked_until) &&
            r.Fixed(&f.marked_at) && r.Fixed(&f.weight) && r.Fixed(&f.month) && r.Fixed(&f.not_interested) &&
            r.Fixed(&f.complaints) && r.Byte(&f.month_sends) && r.Byte(&f.type);
  if (!ok || !r.done() || !(f.weight >= 0 && f.weight <= 1)) return Status::Corruption("policy follow record: malformed");
  return f;
}

}  // namespace herald::policy
