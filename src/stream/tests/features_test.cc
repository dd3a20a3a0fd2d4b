// UserFeatures: decay math, local hours, sessions, push counts and interests.
#include "stream/features.h"

#include <cctz/time_zone.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/time_format.h"
#include "stream/timezones.h"
#include "stream/tests/test_util.h"

namespace herald::stream {
namespace {

using testing::At;
using testing::Numbered;

Event Make(EventType type, Micros ts, std::string message_id = "", std::string account = "") {
  Event e;
  e.tenant = "default";
  e.user_id = "user-1";
  e.type = type;
  e.ts = ts;
  e.message_id = std::move(message_id);
  e.account_id = std::move(account);
  return e;
}

const cctz::time_zone& Utc() {
  return UtcTimeZone();
}
const cctz::time_zone& Shanghai() {
  return *FindTimeZone("Asia/Shanghai").value();
}
const cctz::time_zone& NewYork() {
  return *FindTimeZone("America/New_York").value();
}

// 2026-01-05 is a Monday; hour-of-week 0 is Monday 00:00 local.
constexpr std::size_t kMonday8 = 8;

TEST(UserFeaturesTest, FitsInOneKibibyte) {
  EXPECT_EQ(sizeof(UserFeatures), 968u);
  EXPECT_EQ(offsetof(UserFeatures, sessions), 344u);
  EXPECT_EQ(offsetof(UserFeatures, activity), 452u);
  EXPECT_EQ(offsetof(UserFeatures, push_opened), 964u);
  EXPECT_LT(sizeof(UserFeatures), 1024u);
  EXPECT_EQ(UserFeatures{}, UserFeatures{});
}

TEST(UserFeaturesTest, CountsEveryTypeAndTracksTimes) {
  UserFeatures f;
  const Micros t0 = At("2026-01-05T08:00:00Z");
  for (std::size_t i = 0; i < kEventTypeCount; ++i) {
    Event e = Make(static_cast<EventType>(i), t0 + static_cast<Micros>(i) * kMicrosPerMinute);
    Apply(f, e, Utc());
  }
  Apply(f, Make(EventType::kAppOpen, t0 - kMicrosPerHour), Utc());  // late
  for (std::size_t i = 0; i < kEventTypeCount; ++i) {
    EXPECT_EQ(f.events_total[i], i == 1 ? 2u : 1u) << EventTypeName(static_cast<EventType>(i));
  }
  EXPECT_EQ(f.first_event, t0 - kMicrosPerHour);
  EXPECT_EQ(f.last_event, t0 + static_cast<Micros>(kEventTypeCount - 1) * kMicrosPerMinute);
  // The latest activity event is "converted" (12); dismissed and later are not activity.
  EXPECT_EQ(f.last_active, t0 + 12 * kMicrosPerMinute);
}

TEST(UserFeaturesTest, ActivityHalvesEveryHalfLife) {
  UserFeatures f;
  const Micros t0 = At("2026-01-05T08:10:00Z");
  Apply(f, Make(EventType::kAppOpen, t0), Utc());
  EXPECT_DOUBLE_EQ(ActivityAt(f, kMonday8, t0), 1.0);
  EXPECT_DOUBLE_EQ(ActivityAt(f, kMonday8, t0 + kDecayHalfLife), 0.5);
  EXPECT_DOUBLE_EQ(ActivityAt(f, kMonday8, t0 + 2 * kDecayHalfLife), 0.25);
  EXPECT_NEAR(ActivityAt(f, kMonday8, t0 + kDecayHalfLife / 2), std::sqrt(0.5), 1e-12);
  EXPECT_EQ(ActivityAt(f, kMonday8 + 1, t0), 0.0);
  // A second event one half-life later: 0.5 + 1.
  Apply(f, Make(EventType::kRead, t0 + kDecayHalfLife), Utc());
  EXPECT_NEAR(ActivityAt(f, kMonday8, t0 + kDecayHalfLife), 1.5, 1.5e-4);
}

TEST(UserFeaturesTest, ActivityStaysPreciseOverManyEvents) {
  // 5,000 events over 20 weeks at random hours, and then 2,000 more within one
  // hour: the 16-bit mantissas track an exact double computation of the decayed
  // counts within 0.1% of the busiest hour, without drifting one way.
  std::mt19937 rng(7);
  UserFeatures f;
  std::array<double, kHoursPerWeek> exact{};
  const Micros start = At("2026-01-05T00:00:00Z");
  const Micros end = start + 20 * 7 * kMicrosPerDay;
  std::vector<Micros> times(5000);
  std::uniform_int_distribution<Micros> when(start, end - 1);
  for (Micros& t : times) t = when(rng);
  std::sort(times.begin(), times.end());
  for (int i = 0; i < 2000; ++i) times.push_back(end - kMicrosPerHour + i * 1000);
  for (Micros t : times) {
    Apply(f, Make(EventType::kAppOpen, t), Utc());
    std::size_t how = static_cast<std::size_t>((t - start) / kMicrosPerHour % kHoursPerWeek);
    exact[how] += std::exp2(-static_cast<double>(end - t) / kDecayHalfLife);
  }
  const double top = *std::max_element(exact.begin(), exact.end());
  for (std::size_t h = 0; h < kHoursPerWeek; ++h) {
    EXPECT_NEAR(ActivityAt(f, h, end), exact[h], top * 1e-3) << h;
  }
}

TEST(UserFeaturesTest, LateEventsDecayAsIfInOrder) {
  const Micros t0 = At("2026-01-05T08:00:00Z");
  std::vector<Event> events;
  for (int i = 0; i < 200; ++i) {
    events.push_back(Make(EventType::kAppOpen, t0 + i * 37 * kMicrosPerMinute));
    events.back().tags = {Numbered("tag", i % 3)};
    events.back().type = i % 2 ? EventType::kRead : EventType::kAppOpen;
  }
  UserFeatures in_order, shuffled;
  for (const Event& e : events) Apply(in_order, e, Utc());
  // Swap neighbours: every other event arrives 37 minutes late.
  for (std::size_t i = 0; i + 1 < events.size(); i += 2) std::swap(events[i], events[i + 1]);
  for (const Event& e : events) Apply(shuffled, e, Utc());
  const Micros now = t0 + 30 * kMicrosPerDay;
  for (std::size_t h = 0; h < kHoursPerWeek; ++h) {
    EXPECT_NEAR(ActivityAt(shuffled, h, now), ActivityAt(in_order, h, now), 1e-3) << h;
  }
  auto a = Interests(in_order, now), b = Interests(shuffled, now);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].key, b[i].key);
    EXPECT_NEAR(a[i].weight, b[i].weight, 1e-4);
  }
}

TEST(UserFeaturesTest, LongSilenceDecaysOldActivityAway) {
  UserFeatures f;
  const Micros t0 = At("2026-01-05T08:00:00Z");
  for (int i = 0; i < 50; ++i) Apply(f, Make(EventType::kAppOpen, t0 + i), Utc());
  const Micros later = t0 + 3 * 365 * kMicrosPerDay + 5 * kMicrosPerHour;  // a Thursday
  Apply(f, Make(EventType::kAppOpen, later), Utc());
  EXPECT_DOUBLE_EQ(ActivityAt(f, kMonday8, later), 0.0);
  const auto by_hour = ActivityByHourOfWeek(f, later);
  EXPECT_NEAR(*std::max_element(by_hour.begin(), by_hour.end()), 1.0, 1e-4);
}

TEST(UserFeaturesTest, SameInstantLandsInEachUsersLocalHour) {
  // 2026-01-05T00:30Z is Monday 08:30 in Shanghai and Sunday 19:30 in New York.
  const Event e = Make(EventType::kAppOpen, At("2026-01-05T00:30:00Z"));
  UserFeatures sh, ny, utc;
  Apply(sh, e, Shanghai());
  Apply(ny, e, NewYork());
  Apply(utc, e, Utc());
  EXPECT_GT(sh.activity[kMonday8], 0);
  EXPECT_GT(ny.activity[6 * 24 + 19], 0);
  EXPECT_GT(utc.activity[0], 0);
  EXPECT_EQ(std::count_if(std::begin(ny.activity), std::end(ny.activity),
                          [](std::uint16_t v) { return v != 0; }),
            1);
  // In summer New York is UTC-4: 2026-07-06T00:30Z is Sunday 20:30 there.
  UserFeatures summer;
  Apply(summer, Make(EventType::kAppOpen, At("2026-07-06T00:30:00Z")), NewYork());
  EXPECT_GT(summer.activity[6 * 24 + 20], 0);
}

TEST(UserFeaturesTest, SessionGapOfExactlyThirtyMinutesContinuesTheSession) {
  UserFeatures f;
  const Micros t0 = At("2026-01-05T08:00:00Z");
  Apply(f, Make(EventType::kAppOpen, t0), Utc());
  Apply(f, Make(EventType::kRead, t0 + kSessionGap), Utc());  // exactly the gap: same session
  EXPECT_EQ(Sessions(f).count, 1u);
  EXPECT_EQ(Sessions(f).last, kSessionGap);
  const Micros t1 = t0 + 2 * kSessionGap + 1;  // one microsecond past the gap
  Apply(f, Make(EventType::kAppOpen, t1), Utc());
  EXPECT_EQ(Sessions(f).count, 2u);
  EXPECT_EQ(Sessions(f).last, 0);
  Apply(f, Make(EventType::kPay, t1 + 10 * kMicrosPerMinute), Utc());
  // A late event within the gap of the session's start extends it backwards.
  Apply(f, Make(EventType::kShare, t1 - 20 * kMicrosPerMinute), Utc());
  EXPECT_EQ(Sessions(f).count, 2u);
  EXPECT_EQ(Sessions(f).last, 30 * kMicrosPerMinute);
  EXPECT_EQ(Sessions(f).total, kSessionGap + 30 * kMicrosPerMinute);
  // Pushes and other non-activity events neither start nor extend sessions.
  Apply(f, Make(EventType::kSent, t1 + 5 * kMicrosPerHour), Utc());
  Apply(f, Make(EventType::kDismissed, t1 + 5 * kMicrosPerHour), Utc());
  EXPECT_EQ(Sessions(f).count, 2u);
  // A late event older than the current session's start minus the gap is ignored.
  Apply(f, Make(EventType::kAppOpen, t0 - kMicrosPerHour), Utc());
  EXPECT_EQ(Sessions(f).count, 2u);
}

TEST(UserFeaturesTest, OpenResetsConsecutiveUnopenedPushes) {
  UserFeatures f;
  const Micros t0 = At("2026-01-05T08:00:00Z");
  for (int i = 0; i < 3; ++i) {
    Apply(f, Make(EventType::kSent, t0 + i * kMicrosPerHour, Numbered("m", i)), Utc());
  }
  EXPECT_EQ(UnopenedSinceLastOpen(f), 3u);
  // delivered of a push already counted, and delivered without a message id, do not count
  Apply(f, Make(EventType::kDelivered, t0 + 2 * kMicrosPerHour + 1, "m2"), Utc());
  Apply(f, Make(EventType::kDelivered, t0 + 2 * kMicrosPerHour + 2), Utc());
  EXPECT_EQ(UnopenedSinceLastOpen(f), 3u);
  EXPECT_EQ(f.events_total[static_cast<int>(EventType::kDelivered)], 2u);
  // a delivered that arrives before its sent counts the push once
  Apply(f, Make(EventType::kDelivered, t0 + 3 * kMicrosPerHour, "m3"), Utc());
  Apply(f, Make(EventType::kSent, t0 + 3 * kMicrosPerHour - 5, "m3"), Utc());
  EXPECT_EQ(UnopenedSinceLastOpen(f), 4u);
  Apply(f, Make(EventType::kOpened, t0 + 4 * kMicrosPerHour, "m3"), Utc());
  EXPECT_EQ(UnopenedSinceLastOpen(f), 0u);
  Apply(f, Make(EventType::kSent, t0 + 5 * kMicrosPerHour), Utc());  // no message id: counts
  EXPECT_EQ(UnopenedSinceLastOpen(f), 1u);
  Apply(f, Make(EventType::kClicked, t0 + 6 * kMicrosPerHour), Utc());
  EXPECT_EQ(UnopenedSinceLastOpen(f), 0u);
}

TEST(UserFeaturesTest, LateOpenOnlyClearsPushesBeforeIt) {
  UserFeatures f;
  const Micros t0 = At("2026-01-05T08:00:00Z");
  for (int i = 0; i < 4; ++i) {
    Apply(f, Make(EventType::kSent, t0 + i * kMicrosPerHour, Numbered("m", i)), Utc());
  }
  // An open between the second and the third push arrives after all four.
  Apply(f, Make(EventType::kOpened, t0 + 90 * kMicrosPerMinute, "m1"), Utc());
  EXPECT_EQ(UnopenedSinceLastOpen(f), 2u);
  // An even older open changes nothing.
  Apply(f, Make(EventType::kOpened, t0 + 30 * kMicrosPerMinute, "m0"), Utc());
  EXPECT_EQ(UnopenedSinceLastOpen(f), 2u);
}

TEST(UserFeaturesTest, UnopenedCountGoesPastTheEightKeptPushes) {
  UserFeatures f;
  const Micros t0 = At("2026-01-05T08:00:00Z");
  for (int i = 0; i < 12; ++i) {
    Apply(f, Make(EventType::kSent, t0 + i * kMicrosPerHour, Numbered("m", i)), Utc());
  }
  EXPECT_EQ(UnopenedSinceLastOpen(f), 12u);
  EXPECT_EQ(f.unopened_evicted, 4u);
  Apply(f, Make(EventType::kOpened, t0 + 20 * kMicrosPerHour), Utc());
  EXPECT_EQ(UnopenedSinceLastOpen(f), 0u);
}

TEST(UserFeaturesTest, OpensAreBucketedAtTheHourThePushWasSent) {
  UserFeatures f;
  // Sent 08:05 Shanghai, opened 10:40 Shanghai, then clicked: one open at hour 8.
  Apply(f, Make(EventType::kSent, At("2026-01-05T08:05:00+08:00"), "m1"), Shanghai());
  Apply(f, Make(EventType::kOpened, At("2026-01-05T10:40:00+08:00"), "m1"), Shanghai());
  Apply(f, Make(EventType::kClicked, At("2026-01-05T10:41:00+08:00"), "m1"), Shanghai());
  EXPECT_EQ(f.sent_by_hour[8], 1);
  EXPECT_EQ(f.opened_by_hour[8], 1);
  EXPECT_EQ(f.opened_by_hour[10], 0);
  // An open of an unknown push counts at its own hour; a click of one does not.
  Apply(f, Make(EventType::kOpened, At("2026-01-05T21:00:00+08:00"), "old"), Shanghai());
  Apply(f, Make(EventType::kClicked, At("2026-01-05T22:00:00+08:00"), "old2"), Shanghai());
  EXPECT_EQ(f.opened_by_hour[21], 1);
  EXPECT_EQ(f.opened_by_hour[22], 0);
}

TEST(UserFeaturesTest, HourHistogramsHalveTogetherWhenFull) {
  UserFeatures f;
  f.sent_by_hour[3] = 65535;
  f.sent_by_hour[4] = 1000;
  f.opened_by_hour[3] = 600;
  Apply(f, Make(EventType::kSent, At("2026-01-05T03:00:00Z")), Utc());
  EXPECT_EQ(f.sent_by_hour[3], 32768);
  EXPECT_EQ(f.sent_by_hour[4], 500);
  EXPECT_EQ(f.opened_by_hour[3], 300);
}

TEST(UserFeaturesTest, InterestsKeepTheTopEightDecayed) {
  UserFeatures f;
  const Micros t0 = At("2026-01-05T08:00:00Z");
  auto read = [&](Micros t, std::vector<std::string> tags) {
    Event e = Make(EventType::kRead, t);
    e.item = "item";
    e.tags = std::move(tags);
    Apply(f, e, Utc());
  };
  read(t0, {"sports", "nba"});
  read(t0, {"sports"});
  for (int i = 0; i < 6; ++i) read(t0 + 1, {Numbered("t", i)});
  read(t0 + kDecayHalfLife, {"sports"});
  auto interests = Interests(f, t0 + kDecayHalfLife);
  ASSERT_EQ(interests.size(), 8u);
  EXPECT_EQ(interests[0].key, KeyOf("sports"));
  EXPECT_NEAR(interests[0].weight, 2.0, 1e-5);  // 2 halved, plus 1
  EXPECT_NEAR(interests[1].weight, 0.5, 1e-5);
  // A ninth tag evicts the weakest (a t* tag, older than "nba" by nothing, so
  // the first of the weakest): "nba" has the same weight, sports stays.
  read(t0 + kDecayHalfLife, {"cooking"});
  interests = Interests(f, t0 + kDecayHalfLife);
  ASSERT_EQ(interests.size(), 8u);
  EXPECT_EQ(interests[0].key, KeyOf("sports"));
  EXPECT_EQ(interests[1].key, KeyOf("cooking"));
  EXPECT_NEAR(interests[1].weight, 1.0, 1e-5);
}

}  // namespace
}  // namespace herald::stream
