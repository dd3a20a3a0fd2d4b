// Event types and Validate(): every rule, and the field each error names.
#include "stream/event.h"

#include <gtest/gtest.h>

#include "core/time_format.h"

namespace herald::stream {
namespace {

Event Valid() {
  Event e;
  e.tenant = "default";
  e.user_id = "u1";
  e.type = EventType::kAppOpen;
  e.ts = ParseIsoTime("2026-01-05T08:00:00+08:00").value();
  return e;
}

std::string ErrorOf(const Event& e) {
  Status st = Validate(e);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  return st.message();
}

TEST(EventTypeTest, EveryTypeRoundTripsThroughItsName) {
  const char* names[] = {"register",  "app_open", "read",      "pay",       "share",
                         "follow",    "unfollow", "location",  "sent",      "delivered",
                         "opened",    "clicked",  "converted", "dismissed", "not_interested",
                         "complaint", "uninstall", "queued",    "expired",   "refused",
                         "online",    "offline"};
  ASSERT_EQ(std::size(names), kEventTypeCount);
  for (std::size_t i = 0; i < kEventTypeCount; ++i) {
    auto type = static_cast<EventType>(i);
    EXPECT_EQ(EventTypeName(type), names[i]);
    EXPECT_EQ(ParseEventType(names[i]), type);
  }
  EXPECT_FALSE(ParseEventType("App_Open"));
  EXPECT_FALSE(ParseEventType(""));
  EXPECT_EQ(EventTypeName(static_cast<EventType>(200)), "unknown");
}

TEST(EventTypeTest, ActivityIsBehaviourPlusEngagementWithAPush) {
  EXPECT_TRUE(IsBehaviour(EventType::kAppOpen));
  EXPECT_TRUE(IsBehaviour(EventType::kLocation));
  EXPECT_FALSE(IsBehaviour(EventType::kOpened));
  EXPECT_FALSE(IsBehaviour(EventType::kRegister));
  EXPECT_TRUE(IsActivity(EventType::kOpened));
  EXPECT_TRUE(IsActivity(EventType::kClicked));
  EXPECT_TRUE(IsActivity(EventType::kConverted));
  EXPECT_FALSE(IsActivity(EventType::kSent));
  EXPECT_FALSE(IsActivity(EventType::kDismissed));
  EXPECT_FALSE(IsActivity(EventType::kUninstall));
}

TEST(ValidateTest, AcceptsAMinimalEvent) {
  EXPECT_TRUE(Validate(Valid()).ok());
}

TEST(ValidateTest, IdsAreCheckedAndNamed) {
  Event e = Valid();
  e.user_id = "";
  EXPECT_EQ(ErrorOf(e), "user_id must not be empty");
  e.user_id = std::string(129, 'u');
  EXPECT_EQ(ErrorOf(e), "user_id is longer than 128 bytes");
  e.user_id = std::string(128, 'u');
  EXPECT_TRUE(Validate(e).ok());
  e.account_id = "a/1";
  EXPECT_NE(ErrorOf(e).find("account_id may hold only"), std::string::npos);
  e.account_id = "a1";
  e.message_id = std::string(200, 'm');
  EXPECT_EQ(ErrorOf(e), "message_id is longer than 128 bytes");
  e.message_id = "m1";
  e.campaign_id = "c 1";
  EXPECT_NE(ErrorOf(e).find("campaign_id"), std::string::npos);
  e.campaign_id = "";
  e.tenant = "";
  EXPECT_EQ(ErrorOf(e), "tenant must not be empty");
}

TEST(ValidateTest, TypeMustBeKnown) {
  Event e = Valid();
  e.type = static_cast<EventType>(kEventTypeCount);
  EXPECT_EQ(ErrorOf(e), "type 22 is not an event type");
}

TEST(ValidateTest, TimeMustFallIn2000To2100) {
  Event e = Valid();
  e.ts = kMinEventTime - 1;
  EXPECT_EQ(ErrorOf(e), "ts must be between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z");
  e.ts = kMinEventTime;
  EXPECT_TRUE(Validate(e).ok());
  e.ts = kMaxEventTime;
  EXPECT_FALSE(Validate(e).ok());
}

TEST(ValidateTest, LocationNeedsCoordinatesInRange) {
  Event e = Valid();
  e.type = EventType::kLocation;
  EXPECT_EQ(ErrorOf(e), "attrs.lat is required for a location event");
  e.lat = 39.9;
  EXPECT_EQ(ErrorOf(e), "attrs.lng is required for a location event");
  e.lng = 116.4;
  EXPECT_TRUE(Validate(e).ok());
  e.lat = 90.5;
  EXPECT_EQ(ErrorOf(e), "attrs.lat must be a number between -90 and 90");
  e.lat = -90;
  e.lng = -180.01;
  EXPECT_EQ(ErrorOf(e), "attrs.lng must be a number between -180 and 180");
  e.lng = 180;
  EXPECT_TRUE(Validate(e).ok());
}

TEST(ValidateTest, ReadNeedsAnItem) {
  Event e = Valid();
  e.type = EventType::kRead;
  EXPECT_EQ(ErrorOf(e), "attrs.item is required for a read event");
  e.item = "article-1";
  EXPECT_TRUE(Validate(e).ok());
  e.item = std::string(kMaxItemBytes + 1, 'i');
  EXPECT_EQ(ErrorOf(e), "attrs.item is longer than 256 bytes");
}

TEST(ValidateTest, AttrsSizeAndTags) {
  Event e = Valid();
  e.attrs = "[1]";
  EXPECT_EQ(ErrorOf(e), "attrs must be an object");
  e.attrs = "{\"k\":\"" + std::string(kMaxAttrsBytes, 'x') + "\"}";
  EXPECT_EQ(ErrorOf(e), "attrs is longer than 4096 bytes");
  e.attrs = "{}";
  e.tags = {"sports", ""};
  EXPECT_EQ(ErrorOf(e), "attrs.tags entries must be 1..64 bytes");
  e.tags = {"sports", std::string(65, 't')};
  EXPECT_EQ(ErrorOf(e), "attrs.tags entries must be 1..64 bytes");
}

}  // namespace
}  // namespace herald::stream
