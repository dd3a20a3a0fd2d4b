// Sends per account per local day, week and month: boundaries in the user's
// zone, late sends, and the bounded set of tracked accounts.
#include <cctz/time_zone.h>
#include <gtest/gtest.h>

#include "core/time_format.h"
#include "stream/features.h"
#include "stream/timezones.h"
#include "stream/tests/test_util.h"

namespace herald::stream {
namespace {

using testing::At;
using testing::Numbered;

const cctz::time_zone& Shanghai() {
  return *FindTimeZone("Asia/Shanghai").value();
}
const cctz::time_zone& NewYork() {
  return *FindTimeZone("America/New_York").value();
}

class AccountSendsTest : public ::testing::Test {
 protected:
  void Send(const char* iso, const std::string& account = "svc-1",
            const cctz::time_zone* tz = nullptr) {
    Event e;
    e.tenant = "default";
    e.user_id = "user-1";
    e.type = EventType::kSent;
    e.ts = At(iso);
    e.account_id = account;
    e.message_id = Numbered("m", ++messages_);
    Apply(f_, e, tz ? *tz : Shanghai());
  }
  SendCounts At_(const char* iso, const std::string& account = "svc-1",
                 const cctz::time_zone* tz = nullptr) {
    return SendsFromAccount(f_, account, At(iso), tz ? *tz : Shanghai());
  }

  UserFeatures f_;
  int messages_ = 0;
};

TEST_F(AccountSendsTest, MidnightLocalStartsANewDay) {
  // 2026-01-07 is a Wednesday.
  Send("2026-01-07T23:59:00+08:00");
  EXPECT_EQ(At_("2026-01-07T23:59:30+08:00"), (SendCounts{1, 1, 1}));
  Send("2026-01-08T00:01:00+08:00");
  EXPECT_EQ(At_("2026-01-08T00:01:00+08:00"), (SendCounts{1, 2, 2}));
  Send("2026-01-08T12:00:00+08:00");
  EXPECT_EQ(At_("2026-01-08T23:59:59+08:00"), (SendCounts{2, 3, 3}));
  // At 00:00 local the day counter reads zero; the week and month go on.
  EXPECT_EQ(At_("2026-01-09T00:00:00+08:00"), (SendCounts{0, 3, 3}));
}

TEST_F(AccountSendsTest, WeeksRunMondayToSunday) {
  Send("2026-01-11T23:59:00+08:00");  // Sunday
  Send("2026-01-12T00:01:00+08:00");  // Monday
  EXPECT_EQ(At_("2026-01-12T08:00:00+08:00"), (SendCounts{1, 1, 2}));
  EXPECT_EQ(At_("2026-01-18T23:59:59+08:00"), (SendCounts{0, 1, 2}));
  EXPECT_EQ(At_("2026-01-19T00:00:00+08:00"), (SendCounts{0, 0, 2}));
}

TEST_F(AccountSendsTest, MonthRollsOverInLocalTime) {
  // 2026-01-31 is a Saturday: Feb 1 starts a month but not a week.
  Send("2026-01-31T10:00:00+08:00");
  Send("2026-01-31T23:59:00+08:00");
  EXPECT_EQ(At_("2026-01-31T23:59:59+08:00"), (SendCounts{2, 2, 2}));
  EXPECT_EQ(At_("2026-02-01T00:00:00+08:00"), (SendCounts{0, 2, 0}));
  Send("2026-02-01T00:01:00+08:00");
  EXPECT_EQ(At_("2026-02-01T00:01:00+08:00"), (SendCounts{1, 3, 1}));
}

TEST_F(AccountSendsTest, TheSameInstantIsADifferentDayInAnotherZone) {
  // 2026-01-31T16:30Z is Feb 1 00:30 in Shanghai but Jan 31 11:30 in New York.
  Send("2026-01-31T10:00:00Z", "svc-1", &Shanghai());
  Send("2026-01-31T16:30:00Z", "svc-1", &Shanghai());
  Send("2026-01-31T10:00:00Z", "svc-2", &NewYork());
  Send("2026-01-31T16:30:00Z", "svc-2", &NewYork());
  EXPECT_EQ(At_("2026-01-31T16:31:00Z", "svc-1", &Shanghai()), (SendCounts{1, 2, 1}));
  EXPECT_EQ(At_("2026-01-31T16:31:00Z", "svc-2", &NewYork()), (SendCounts{2, 2, 2}));
}

TEST_F(AccountSendsTest, LateSendCountsOnlyInPeriodsStillCurrent) {
  Send("2026-02-02T09:00:00+08:00");  // Monday Feb 2
  Send("2026-02-02T08:00:00+08:00");  // late, same day
  Send("2026-02-01T09:00:00+08:00");  // late, previous day: Sunday, same month, other week
  Send("2026-01-30T09:00:00+08:00");  // late, previous month, previous week
  EXPECT_EQ(At_("2026-02-02T10:00:00+08:00"), (SendCounts{2, 2, 3}));
}

TEST_F(AccountSendsTest, TracksSixteenAccountsEvictingTheLeastRecent) {
  for (int i = 0; i < 16; ++i) {
    std::string iso = Numbered("2026-01-", 10 + i).append("T09:00:00+08:00");
    Send(iso.c_str(), Numbered("acct-", i));
  }
  Send("2026-01-26T10:00:00+08:00", "acct-0");  // acct-0 is now recent; acct-1 is oldest
  Send("2026-01-26T11:00:00+08:00", "acct-16");
  EXPECT_EQ(At_("2026-01-26T12:00:00+08:00", "acct-16"), (SendCounts{1, 1, 1}));
  EXPECT_EQ(At_("2026-01-26T12:00:00+08:00", "acct-0").month, 2u);
  EXPECT_EQ(At_("2026-01-26T12:00:00+08:00", "acct-1"), (SendCounts{}));
  EXPECT_EQ(At_("2026-01-26T12:00:00+08:00", "acct-2").month, 1u);
}

TEST_F(AccountSendsTest, CountsSaturateAt255) {
  for (int i = 0; i < 300; ++i) Send("2026-01-07T10:00:00+08:00");
  EXPECT_EQ(At_("2026-01-07T11:00:00+08:00"), (SendCounts{255, 255, 255}));
}

}  // namespace
}  // namespace herald::stream
