// The policy's rules at their boundaries, on explicit times (the evaluator reads
// no clock): silence, new followers, months and days in users' zones, daylight
// saving, the downgrade channel, quiet hours and TTLs, marks, reach, encodings.
#include "policy/rules.h"

#include <gtest/gtest.h>

#include <cctz/time_zone.h>

#include "core/time_format.h"

namespace herald::policy {
namespace {

Micros T(const char* iso) { return ParseIsoTime(iso).value(); }
constexpr Micros kSec = kMicrosPerSecond;
constexpr Micros kHour = 3600 * kSec;
constexpr Micros kDay = 24 * kHour;

const cctz::time_zone& Zone(const char* name) {
  static std::map<std::string, cctz::time_zone> zones;
  auto it = zones.find(name);
  if (it == zones.end()) {
    cctz::time_zone tz;
    EXPECT_TRUE(cctz::load_time_zone(name, &tz)) << name;
    it = zones.emplace(name, tz).first;
  }
  return it->second;
}

PolicyConfig Config() {
  PolicyConfig c;
  EXPECT_TRUE(c.Resolve().ok());
  return c;
}
// Without quiet hours and fatigue, so that a cap's boundary is not hidden by the
// night or by its own unopened pushes.
PolicyConfig NoQuiet() {
  PolicyConfig c;
  c.quiet_start = c.quiet_end = "00:00";
  c.silence_after_unopened = 255;
  c.downgrade_after_unopened = 65535;
  EXPECT_TRUE(c.Resolve().ok());
  return c;
}

Candidate Business(const char* account = "a1") {
  Candidate c;
  c.account.key = AccountKey(account);
  c.account.type = AccountType::kBusiness;
  return c;
}
Candidate Service(const char* account = "s1") {
  Candidate c = Business(account);
  c.account.type = AccountType::kService;
  return c;
}

void Send(UserPolicy& u, FollowPolicy* f, Micros at, const cctz::time_zone& tz, const PolicyConfig& cfg,
          AccountType type = AccountType::kBusiness, std::uint32_t message = 0) {
  Fold(u, at, cfg);
  ApplySend(u, f, type, Lane::kMarketing, message, 0, 0, at, tz, cfg);
}

TEST(RulesTest, SilenceLastsExactly48HoursAfterTheThirdUnopenedPush) {
  const auto& sh = Zone("Asia/Shanghai");
  PolicyConfig cfg = Config();
  UserPolicy u;
  Send(u, nullptr, T("2026-03-08T08:00:00+08:00"), sh, cfg);
  Send(u, nullptr, T("2026-03-08T09:00:00+08:00"), sh, cfg);
  Send(u, nullptr, T("2026-03-08T10:00:00+08:00"), sh, cfg);
  // The third window closes on 9 March 10:00; the silence ends 48 h later.
  const Micros start = T("2026-03-09T10:00:00+08:00");
  struct Case {
    Micros at;
    Verdict verdict;
    Rule rule;
  } cases[] = {
      {start - kSec, Verdict::kAllow, Rule::kNone},  // two unopened, the third still open
      {start, Verdict::kSuppress, Rule::kFatigueSilence},
      {start + 47 * kHour + 59 * 60 * kSec + 59 * kSec, Verdict::kSuppress, Rule::kFatigueSilence},
      {start + 48 * kHour, Verdict::kAllow, Rule::kNone},
  };
  for (const auto& c : cases) {
    Decision d = Decide(u, nullptr, Business(), c.at, sh, cfg);
    EXPECT_EQ(d.verdict, c.verdict) << FormatIsoTime(c.at);
    EXPECT_EQ(d.rule, c.rule) << FormatIsoTime(c.at);
  }
  Decision d = Decide(u, nullptr, Business(), start + kHour, sh, cfg);
  EXPECT_EQ(d.until, start + 48 * kHour);
  EXPECT_EQ(Explain(d, "a1", sh, cfg),
            "suppressed: 3 consecutive unopened pushes (08:00, 09:00, 10:00 on 8 March); silent until 11 March "
            "10:00");
}

TEST(RulesTest, AnOpenedPushEndsTheRunAndPushesBeforeAnOpenDoNotCount) {
  const auto& sh = Zone("Asia/Shanghai");
  PolicyConfig cfg = Config();
  UserPolicy u;
  // A 08:00 unopened, B 09:00 opened at 09:05, C and D unopened: A is not part of
  // the run of C and D, which is two long.
  Send(u, nullptr, T("2026-03-08T08:00:00+08:00"), sh, cfg, AccountType::kBusiness, 1);
  Send(u, nullptr, T("2026-03-08T09:00:00+08:00"), sh, cfg, AccountType::kBusiness, 2);
  ApplyOpen(u, 2, T("2026-03-08T09:05:00+08:00"));
  Send(u, nullptr, T("2026-03-08T10:00:00+08:00"), sh, cfg, AccountType::kBusiness, 3);
  Send(u, nullptr, T("2026-03-08T11:00:00+08:00"), sh, cfg, AccountType::kBusiness, 4);
  const Micros later = T("2026-03-09T12:00:00+08:00");
  EXPECT_EQ(Decide(u, nullptr, Business(), later, sh, cfg).verdict, Verdict::kAllow);
  Fold(u, later, cfg);
  EXPECT_EQ(u.consecutive_unopened, 2);
  EXPECT_EQ(u.unopened_since_open, 2);
  // A third unopened after the open starts the silence.
  Send(u, nullptr, T("2026-03-09T12:00:00+08:00"), sh, cfg, AccountType::kBusiness, 5);
  EXPECT_EQ(Decide(u, nullptr, Business(), T("2026-03-10T12:00:00+08:00"), sh, cfg).rule, Rule::kFatigueSilence);
}

TEST(RulesTest, APushIsCountedOnceAndTransactionalOnesCountTowardNoCap) {
  const auto& sh = Zone("Asia/Shanghai");
  PolicyConfig cfg = NoQuiet();
  UserPolicy u;
  const Micros t = T("2026-03-08T08:00:00+08:00");
  Send(u, nullptr, t, sh, cfg, AccountType::kBusiness, 7);
  // Its window closes; the push stays among the latest, so a late delivery finds it.
  Fold(u, t + 2 * kDay, cfg);
  EXPECT_TRUE(IsRecentPush(u, 7));
  EXPECT_EQ(AccountOfPending(u, 7), 0u);  // sent without a follow
  EXPECT_FALSE(IsRecentPush(u, 8));
  for (int i = 0; i < 5; ++i) {
    ApplySend(u, nullptr, AccountType::kBusiness, Lane::kTransactional, 100 + i, 0, 0, t + kHour, sh, cfg);
  }
  EXPECT_EQ(u.day_sends, 1);
  EXPECT_EQ(Decide(u, nullptr, Business(), t + 2 * kHour, sh, cfg).verdict, Verdict::kAllow);
}

TEST(RulesTest, AnOpenWithinTheWindowKeepsThePushFromCountingAsUnopened) {
  const auto& sh = Zone("Asia/Shanghai");
  PolicyConfig cfg = Config();
  UserPolicy u;
  Send(u, nullptr, T("2026-03-08T08:00:00+08:00"), sh, cfg, AccountType::kBusiness, 11);
  Send(u, nullptr, T("2026-03-08T09:00:00+08:00"), sh, cfg, AccountType::kBusiness, 12);
  ApplyOpen(u, 12, T("2026-03-09T08:59:59+08:00"));  // the last second of its window
  Send(u, nullptr, T("2026-03-08T10:00:00+08:00"), sh, cfg, AccountType::kBusiness, 13);
  Decision d = Decide(u, nullptr, Business(), T("2026-03-10T12:00:00+08:00"), sh, cfg);
  EXPECT_EQ(d.verdict, Verdict::kAllow) << RuleName(d.rule);
}

// Days after the follow are 24-hour periods from the follow itself.
TEST(RulesTest, NewFollowersGetFiveInTheFirstThreeDaysThenARampThenOneADay) {
  const auto& sh = Zone("Asia/Shanghai");
  PolicyConfig cfg = NoQuiet();
  const Micros follow = T("2026-03-02T10:00:00+08:00");
  {
    UserPolicy u;
    FollowPolicy f;
    f.account = AccountKey("a1");
    ApplyFollow(f, follow);
    // Two on day 0, two on day 1, then the 5th and the 6th on day 2 (the third day).
    for (Micros at : {follow + kHour, follow + 2 * kHour, follow + kDay + kHour, follow + kDay + 2 * kHour}) {
      ASSERT_EQ(Decide(u, &f, Business(), at, sh, cfg).verdict, Verdict::kAllow);
      Send(u, &f, at, sh, cfg);
    }
    const Micros fifth = follow + 2 * kDay + kHour;
    ASSERT_EQ(Decide(u, &f, Business(), fifth, sh, cfg).verdict, Verdict::kAllow);
    Send(u, &f, fifth, sh, cfg);
    Decision sixth = Decide(u, &f, Business(), fifth + kHour, sh, cfg);
    EXPECT_EQ(sixth.rule, Rule::kNewFollowerFirstDays);
    EXPECT_EQ(sixth.count, 5u);
    EXPECT_EQ(sixth.until, follow + 3 * kDay);
    // The last second of day 2 is still in the first days; day 3 starts the ramp.
    EXPECT_EQ(Decide(u, &f, Business(), follow + 3 * kDay - kSec, sh, cfg).rule, Rule::kNewFollowerFirstDays);
    EXPECT_EQ(Decide(u, &f, Business(), follow + 3 * kDay, sh, cfg).rule, Rule::kNewFollowerRamp);
  }
  // Days 3..6: the trailing-3-day cap ramps 5, 4, 4, 3 (docs/policy.md).
  struct Ramp {
    int day;
    std::uint32_t cap;
  } ramp[] = {{3, 5}, {4, 4}, {5, 4}, {6, 3}};
  for (const auto& r : ramp) {
    const Micros now = follow + r.day * kDay + 2 * kHour;
    for (std::uint32_t n : {r.cap - 1, r.cap}) {
      UserPolicy u;
      FollowPolicy f;
      f.account = AccountKey("a1");
      ApplyFollow(f, follow);
      // n sends in the trailing window, all yesterday or earlier, none today.
      for (std::uint32_t i = 0; i < n; ++i) Send(u, &f, now - 25 * kHour - i * 10 * 60 * kSec, sh, cfg);
      Decision d = Decide(u, &f, Business(), now, sh, cfg);
      if (n < r.cap) {
        EXPECT_EQ(d.verdict, Verdict::kAllow) << "day " << r.day << " n " << n << " " << RuleName(d.rule);
      } else {
        EXPECT_EQ(d.rule, Rule::kNewFollowerRamp) << "day " << r.day << " n " << n;
        EXPECT_EQ(d.limit, r.cap);
        EXPECT_EQ(d.day_after_follow, static_cast<std::uint32_t>(r.day));
      }
    }
  }
  // Day 7 on: one a local day.
  UserPolicy u;
  FollowPolicy f;
  f.account = AccountKey("a1");
  ApplyFollow(f, follow);
  const Micros day7 = follow + 7 * kDay;  // 9 March 10:00
  Send(u, &f, day7 + kHour, sh, cfg);
  Decision d = Decide(u, &f, Business(), day7 + 2 * kHour, sh, cfg);
  EXPECT_EQ(d.rule, Rule::kNewFollowerDaily);
  EXPECT_EQ(d.until, T("2026-03-10T00:00:00+08:00"));
  EXPECT_EQ(Decide(u, &f, Business(), T("2026-03-10T00:00:00+08:00"), sh, cfg).verdict, Verdict::kAllow);
}

TEST(RulesTest, TheServiceMonthIsTheUsersOwnMonth) {
  PolicyConfig cfg = NoQuiet();
  // 2026-03-31 16:30 UTC is 1 April 00:30 in Shanghai and 31 March 09:30 in Los Angeles.
  const Micros instant = T("2026-03-31T16:30:00Z");
  for (const char* zone : {"Asia/Shanghai", "America/Los_Angeles"}) {
    const auto& tz = Zone(zone);
    UserPolicy u;
    FollowPolicy f;
    f.account = AccountKey("s1");
    for (int i = 0; i < 4; ++i) {
      Send(u, &f, T("2026-03-31T10:00:00Z") + i * 60 * kSec, tz, cfg, AccountType::kService);
    }
    Decision d = Decide(u, &f, Service(), instant, tz, cfg);
    if (std::string(zone) == "Asia/Shanghai") {
      EXPECT_EQ(d.verdict, Verdict::kAllow) << RuleName(d.rule);
    } else {
      EXPECT_EQ(d.rule, Rule::kServiceMonthlyCap);
      EXPECT_EQ(d.count, 4u);
      EXPECT_EQ(d.until, T("2026-04-01T00:00:00-07:00"));
      EXPECT_EQ(Decide(u, &f, Service(), d.until - kSec, tz, cfg).rule, Rule::kServiceMonthlyCap);
      EXPECT_EQ(Decide(u, &f, Service(), d.until, tz, cfg).verdict, Verdict::kAllow);
    }
  }
  // A business account has no monthly cap.
  const auto& la = Zone("America/Los_Angeles");
  UserPolicy u;
  FollowPolicy f;
  for (int i = 0; i < 4; ++i) Send(u, &f, T("2026-03-31T10:00:00Z") + i * 60 * kSec, la, cfg);
  EXPECT_EQ(Decide(u, &f, Business("s1"), instant, la, cfg).verdict, Verdict::kAllow);
}

TEST(RulesTest, TheDailyCapFollowsLocalDaysAcrossDaylightSaving) {
  PolicyConfig cfg = NoQuiet();
  struct Case {
    const char* zone;
    const char* first_send;  // five sends from here, a minute apart
    const char* late;        // last minute of that local day
    const char* midnight;    // the next local midnight
  } cases[] = {
      // 8 March 2026: New York springs forward, the day has 23 hours.
      {"America/New_York", "2026-03-08T00:30:00-05:00", "2026-03-08T23:59:00-04:00", "2026-03-09T00:00:00-04:00"},
      // 25 October 2026: Berlin falls back, the day has 25 hours.
      {"Europe/Berlin", "2026-10-25T00:30:00+02:00", "2026-10-25T23:59:00+01:00", "2026-10-26T00:00:00+01:00"},
      {"Europe/Berlin", "2026-03-29T00:30:00+01:00", "2026-03-29T23:59:00+02:00", "2026-03-30T00:00:00+02:00"},
  };
  for (const auto& c : cases) {
    const auto& tz = Zone(c.zone);
    UserPolicy u;
    for (int i = 0; i < 5; ++i) Send(u, nullptr, T(c.first_send) + i * 60 * kSec, tz, cfg);
    Decision d = Decide(u, nullptr, Business(), T(c.late), tz, cfg);
    EXPECT_EQ(d.rule, Rule::kDailyCap) << c.zone << " " << c.late;
    EXPECT_EQ(d.until, T(c.midnight)) << c.zone;
    EXPECT_EQ(Decide(u, nullptr, Business(), T(c.midnight) - kSec, tz, cfg).rule, Rule::kDailyCap) << c.zone;
    EXPECT_EQ(Decide(u, nullptr, Business(), T(c.midnight), tz, cfg).verdict, Verdict::kAllow) << c.zone;
  }
}

TEST(RulesTest, QuietHoursDeferToTheirLocalEndAcrossDaylightSaving) {
  PolicyConfig cfg = Config();
  struct Case {
    const char* zone;
    const char* at;
    Verdict verdict;
    const char* until;
  } cases[] = {
      {"Asia/Shanghai", "2026-03-08T22:29:59+08:00", Verdict::kAllow, nullptr},
      {"Asia/Shanghai", "2026-03-08T22:30:00+08:00", Verdict::kDefer, "2026-03-09T07:30:00+08:00"},
      {"Asia/Shanghai", "2026-03-09T03:00:00+08:00", Verdict::kDefer, "2026-03-09T07:30:00+08:00"},
      {"Asia/Shanghai", "2026-03-09T07:29:59+08:00", Verdict::kDefer, "2026-03-09T07:30:00+08:00"},
      {"Asia/Shanghai", "2026-03-09T07:30:00+08:00", Verdict::kAllow, nullptr},
      // The night New York springs forward: 07:30 EDT is 11:30 UTC, not 12:30.
      {"America/New_York", "2026-03-08T01:00:00-05:00", Verdict::kDefer, "2026-03-08T07:30:00-04:00"},
      {"America/New_York", "2026-03-07T23:00:00-05:00", Verdict::kDefer, "2026-03-08T07:30:00-04:00"},
      // The night Berlin falls back: 07:30 CET.
      {"Europe/Berlin", "2026-10-24T23:00:00+02:00", Verdict::kDefer, "2026-10-25T07:30:00+01:00"},
  };
  for (const auto& c : cases) {
    Decision d = Decide(UserPolicy{}, nullptr, Business(), T(c.at), Zone(c.zone), cfg);
    EXPECT_EQ(d.verdict, c.verdict) << c.zone << " " << c.at;
    if (c.until) {
      EXPECT_EQ(d.rule, Rule::kQuietHours);
      EXPECT_EQ(d.until, T(c.until)) << c.zone << " " << c.at << " got " << FormatIsoTime(d.until);
    }
  }
}

TEST(RulesTest, QuietHoursDeferOnlyWhileTheTtlAllows) {
  PolicyConfig cfg = Config();
  const auto& sh = Zone("Asia/Shanghai");
  const Micros at = T("2026-03-08T23:00:00+08:00");
  const Micros end = T("2026-03-09T07:30:00+08:00");
  Candidate c = Business();
  c.expires_at = end - kSec;
  EXPECT_EQ(Decide(UserPolicy{}, nullptr, c, at, sh, cfg).rule, Rule::kQuietHoursTtl);
  c.expires_at = end;  // it would expire the moment it could be delivered
  EXPECT_EQ(Decide(UserPolicy{}, nullptr, c, at, sh, cfg).rule, Rule::kQuietHoursTtl);
  c.expires_at = end + kSec;
  Decision d = Decide(UserPolicy{}, nullptr, c, at, sh, cfg);
  EXPECT_EQ(d.verdict, Verdict::kDefer);
  EXPECT_EQ(d.until, end);
  EXPECT_EQ(Explain(d, "a1", sh, cfg), "deferred: 23:00 is in quiet hours (22:30\u201307:30 local); deliver at 9 March 07:30");
  c.expires_at = at;
  EXPECT_EQ(Decide(UserPolicy{}, nullptr, c, at, sh, cfg).rule, Rule::kExpired);
  // Urgent transactional messages may land in quiet hours; urgent marketing may not.
  c.expires_at = 0;
  c.urgent = true;
  EXPECT_EQ(Decide(UserPolicy{}, nullptr, c, at, sh, cfg).rule, Rule::kQuietHours);
  c.lane = Lane::kTransactional;
  EXPECT_EQ(Decide(UserPolicy{}, nullptr, c, at, sh, cfg).verdict, Verdict::kAllow);
}

TEST(RulesTest, TheDowngradeChannelAllowsTwoAWeekUntilAnOpen) {
  PolicyConfig cfg = NoQuiet();
  cfg.downgrade_after_unopened = 5;  // the downgrade channel alone, without silences
  const auto& sh = Zone("Asia/Shanghai");
  UserPolicy u;
  const Micros t0 = T("2026-03-02T12:00:00+08:00");
  for (int i = 0; i < 5; ++i) Send(u, nullptr, t0 + i * kDay, sh, cfg);
  // The 5th window closes at t0 + 5 days; two of the pushes are within 7 days.
  const Micros now = t0 + 5 * kDay;
  Decision d = Decide(u, nullptr, Business(), now - kSec, sh, cfg);
  EXPECT_EQ(d.verdict, Verdict::kAllow) << RuleName(d.rule);
  d = Decide(u, nullptr, Business(), now, sh, cfg);
  EXPECT_EQ(d.rule, Rule::kDowngradeChannel);
  EXPECT_EQ(d.count, 5u);  // five sends in the last 7 days
  // Allowed again when the week's second newest push is 7 days old.
  EXPECT_EQ(d.until, t0 + 3 * kDay + 7 * kDay);
  // An open: back to normal at once.
  ApplyOpen(u, 0, now + kHour);
  EXPECT_EQ(Decide(u, nullptr, Business(), now + kHour, sh, cfg).verdict, Verdict::kAllow);
  // Without the open: two sends in 7 days still pass the channel, a third does not.
  // Without the open: two sends in 7 days fill the channel.
  const Micros later = t0;
  UserPolicy w;
  for (int i = 0; i < 5; ++i) Send(w, nullptr, t0 - 20 * kDay + i * kHour, sh, cfg);
  Send(w, nullptr, later, sh, cfg);
  Send(w, nullptr, later + kDay, sh, cfg);
  EXPECT_EQ(Decide(w, nullptr, Business(), later + kDay + kHour, sh, cfg).rule, Rule::kDowngradeChannel);
}

TEST(RulesTest, MarksBlockTheAccountForTheUserAndComplaintsWeighMore) {
  PolicyConfig cfg = NoQuiet();
  const auto& sh = Zone("Asia/Shanghai");
  const Micros t = T("2026-03-02T12:00:00+08:00");
  FollowPolicy ni, complaint;
  ApplyMark(ni, false, t, cfg);
  ApplyMark(complaint, true, t, cfg);
  EXPECT_FLOAT_EQ(ni.weight, 0.5f);
  EXPECT_FLOAT_EQ(complaint.weight, 0.25f);
  UserPolicy u;
  EXPECT_EQ(Decide(u, &ni, Business(), t + 30 * kDay - kSec, sh, cfg).rule, Rule::kNotInterested);
  EXPECT_EQ(Decide(u, &ni, Business(), t + 30 * kDay, sh, cfg).verdict, Verdict::kAllow);
  EXPECT_EQ(Decide(u, &complaint, Business(), t + 30 * kDay, sh, cfg).rule, Rule::kNotInterested);
  EXPECT_EQ(Decide(u, &complaint, Business(), t + 90 * kDay, sh, cfg).verdict, Verdict::kAllow);
  EXPECT_DOUBLE_EQ(Decide(u, &complaint, Business(), t + 90 * kDay, sh, cfg).weight, 0.25);
}

TEST(RulesTest, AThrottledAccountReachesItsFractionOfFollowers) {
  PolicyConfig cfg = NoQuiet();
  const auto& sh = Zone("Asia/Shanghai");
  Candidate c = Business();
  c.account.reach = 0.2;
  int allowed = 0;
  for (int i = 0; i < 10000; ++i) {
    c.user_hash = SmallKey("user-" + std::to_string(i));
    allowed += Decide(UserPolicy{}, nullptr, c, T("2026-03-02T12:00:00+08:00"), sh, cfg).verdict == Verdict::kAllow;
  }
  EXPECT_NEAR(allowed, 2000, 150);
}

TEST(RulesTest, TransactionalMessagesBypassCapsButNotQuietHoursOrSubscriptions) {
  PolicyConfig cfg = Config();
  const auto& sh = Zone("Asia/Shanghai");
  UserPolicy u;
  for (int i = 0; i < 5; ++i) Send(u, nullptr, T("2026-03-02T12:00:00+08:00") + i * kSec, sh, cfg);
  Candidate c = Business();
  EXPECT_EQ(Decide(u, nullptr, c, T("2026-03-02T13:00:00+08:00"), sh, cfg).rule, Rule::kDailyCap);
  c.lane = Lane::kTransactional;
  EXPECT_EQ(Decide(u, nullptr, c, T("2026-03-02T13:00:00+08:00"), sh, cfg).verdict, Verdict::kAllow);
  EXPECT_EQ(Decide(u, nullptr, c, T("2026-03-02T23:00:00+08:00"), sh, cfg).rule, Rule::kQuietHours);
  c.account.type = AccountType::kSubscription;
  EXPECT_EQ(Decide(u, nullptr, c, T("2026-03-02T13:00:00+08:00"), sh, cfg).rule, Rule::kSubscriptionAccount);
}

TEST(RulesTest, CollapseAndIdempotencyKeysDeduplicateWithinTheWindow) {
  PolicyConfig cfg = NoQuiet();
  const auto& sh = Zone("Asia/Shanghai");
  UserPolicy u;
  const Micros t = T("2026-03-02T12:00:00+08:00");
  ApplySend(u, nullptr, AccountType::kBusiness, Lane::kMarketing, 1, SmallKey("score"), SmallKey("idem-1"), t, sh, cfg);
  Candidate c = Business();
  c.collapse_key = SmallKey("score");
  EXPECT_EQ(Decide(u, nullptr, c, t + kDay - kSec, sh, cfg).rule, Rule::kDuplicateCollapse);
  EXPECT_EQ(Decide(u, nullptr, c, t + kDay, sh, cfg).verdict, Verdict::kAllow);
  c.collapse_key = 0;
  c.idempotency_key = SmallKey("idem-1");
  EXPECT_EQ(Decide(u, nullptr, c, t + kHour, sh, cfg).rule, Rule::kDuplicateIdempotency);
  c.idempotency_key = SmallKey("idem-2");
  EXPECT_EQ(Decide(u, nullptr, c, t + kHour, sh, cfg).verdict, Verdict::kAllow);
}

TEST(RulesTest, RecordsRoundTripAndRefuseGarbage) {
  const auto& sh = Zone("Asia/Shanghai");
  PolicyConfig cfg = Config();
  UserPolicy u;
  FollowPolicy f;
  f.account = AccountKey("a1");
  ApplyFollow(f, T("2026-03-01T00:00:00Z"));
  for (int i = 0; i < 12; ++i) {
    ApplySend(u, &f, AccountType::kService, Lane::kMarketing, 100 + i, SmallKey("c"), 0, T("2026-03-02T00:00:00Z") + i * kHour, sh, cfg);
  }
  ApplyMark(f, true, T("2026-03-03T00:00:00Z"), cfg);
  Fold(u, T("2026-03-03T06:00:00Z"), cfg);
  EXPECT_EQ(DeserializeUser(SerializeUser(u)).value(), u);
  EXPECT_EQ(DeserializeFollow(SerializeFollow(f)).value(), f);
  EXPECT_EQ(SerializeUser(UserPolicy{}).size(), 1 + 8 * 21 + 4 * 8 * 3 + 4 * 3 + 16 + 4 + 3);
  EXPECT_EQ(SerializeFollow(FollowPolicy{}).size(), 1 + 8 + 4 + 32 + 4 + 4 + 4 + 6 + 2);
  EXPECT_FALSE(DeserializeUser("").ok());
  EXPECT_FALSE(DeserializeUser(std::string(1, '\x02')).ok());
  std::string cut = SerializeFollow(f);
  cut.pop_back();
  EXPECT_FALSE(DeserializeFollow(cut).ok());
}

TEST(RulesTest, ConfigRefusesImpossibleRules) {
  PolicyConfig c;
  c.quiet_start = "25:00";
  EXPECT_FALSE(c.Resolve().ok());
  c.quiet_start = "7:30";
  EXPECT_FALSE(c.Resolve().ok());
  EXPECT_TRUE(ParseClockTime("23:59").ok());
  EXPECT_FALSE(ParseClockTime("24:00").ok());
}

}  // namespace
}  // namespace herald::policy
