// Serialize / Deserialize of UserFeatures, and the ToJson answer shape.
#include <cctz/time_zone.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/time_format.h"
#include "stream/features.h"
#include "stream/timezones.h"
#include "stream/tests/test_util.h"

namespace herald::stream {
namespace {

using testing::At;
using testing::Numbered;

Event Make(EventType type, const char* iso) {
  Event e;
  e.tenant = "default";
  e.user_id = "user-1";
  e.type = type;
  e.ts = At(iso);
  return e;
}

// A user with something in every feature.
UserFeatures Busy(const cctz::time_zone& tz) {
  UserFeatures f;
  Apply(f, Make(EventType::kRegister, "2026-01-05T07:00:00+08:00"), tz);
  Apply(f, Make(EventType::kAppOpen, "2026-01-05T07:05:00+08:00"), tz);
  Event read = Make(EventType::kRead, "2026-01-05T07:10:00+08:00");
  read.item = "article-9";
  read.tags = {"codec-sports", "codec-nba"};
  Apply(f, read, tz);
  for (int i = 0; i < 10; ++i) {
    Event sent = Make(EventType::kSent, "2026-01-05T08:00:00+08:00");
    sent.ts += i * kMicrosPerMinute;
    sent.account_id = "codec-svc";
    sent.message_id = Numbered("m", i);
    Apply(f, sent, tz);
  }
  Event open = Make(EventType::kOpened, "2026-01-05T08:30:00+08:00");
  open.message_id = "m9";
  Apply(f, open, tz);
  Event late_sent = Make(EventType::kSent, "2026-01-05T09:00:00+08:00");
  late_sent.account_id = "codec-svc";
  Apply(f, late_sent, tz);
  return f;
}

TEST(FeaturesCodecTest, RoundTripsExactly) {
  const UserFeatures f = Busy(*FindTimeZone("Asia/Shanghai").value());
  const std::string bytes = Serialize(f);
  EXPECT_LT(bytes.size(), 400u);
  Result<UserFeatures> back = Deserialize(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, f);
  EXPECT_NE(bytes.find("codec-svc"), std::string::npos);  // names travel with the keys
  EXPECT_EQ(Deserialize(Serialize(UserFeatures{})).value(), UserFeatures{});
}

TEST(FeaturesCodecTest, DamagedRecordsAreCorruption) {
  const std::string bytes = Serialize(Busy(UtcTimeZone()));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    Result<UserFeatures> r = Deserialize(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), Code::kCorruption);
  }
  EXPECT_EQ(Deserialize(bytes + "x").status().message(), "features: trailing bytes");
  std::string other = bytes;
  other[0] = 3;
  EXPECT_EQ(Deserialize(other).status().message(), "features: unknown version 3");
}

TEST(FeaturesJsonTest, HasTheApiShape) {
  const cctz::time_zone& tz = *FindTimeZone("Asia/Shanghai").value();
  const UserFeatures f = Busy(tz);
  std::string out;
  ToJson(f, "user-1", tz, At("2026-01-05T12:00:00+08:00"), &out);
  nlohmann::json j = nlohmann::json::parse(out);
  // Lifetime counts by type come first, right after the user id.
  EXPECT_EQ(out.rfind(R"({"user_id":"user-1","events_total":{"register":1,"app_open":1,)", 0), 0u);
  ASSERT_EQ(j["events_total"].size(), kEventTypeCount);
  EXPECT_EQ(j["events_total"]["sent"], 11);
  EXPECT_EQ(j["last_active"], "2026-01-05T00:30:00Z");
  EXPECT_EQ(j["tz"], "Asia/Shanghai");
  ASSERT_EQ(j["activity"]["by_hour_of_week"].size(), 168u);
  EXPECT_EQ(j["activity"]["half_life_days"], 14);
  EXPECT_GT(j["activity"]["by_hour_of_week"][7].get<double>(), 1.9);  // Monday 07h: 2 events
  EXPECT_GT(j["activity"]["by_hour_of_day"][8].get<double>(), 0.9);   // the open, 08:30
  EXPECT_EQ(j["sessions"]["count"], 2);
  EXPECT_EQ(j["pushes"]["consecutive_unopened"], 1);
  EXPECT_EQ(j["pushes"]["sent_by_hour"][8], 10);
  EXPECT_EQ(j["pushes"]["opened_by_hour"][8], 1);
  ASSERT_EQ(j["sends_by_account"].size(), 1u);
  EXPECT_EQ(
      j["sends_by_account"][0],
      nlohmann::json({{"account_id", "codec-svc"}, {"day", 11}, {"week", 11}, {"month", 11}}));
  ASSERT_EQ(j["interests"].size(), 2u);
  EXPECT_EQ(j["interests"][0]["tag"], "codec-sports");
  EXPECT_EQ(j["pushes"]["last_open"], "2026-01-05T00:30:00Z");
}

TEST(FeaturesJsonTest, EmptyFeaturesShowNulls) {
  std::string out;
  ToJson(UserFeatures{}, "u\"2", UtcTimeZone(), At("2026-01-05T00:00:00Z"), &out);
  nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_EQ(j["user_id"], "u\"2");
  EXPECT_TRUE(j["last_active"].is_null());
  EXPECT_TRUE(j["sends_by_account"].empty());
  EXPECT_EQ(j["activity"]["by_hour_of_week"][0], 0);
}

}  // namespace
}  // namespace herald::stream
