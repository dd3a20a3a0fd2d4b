// Push features: title traits as the source measured them, and a vector that is
// the same for the same push (what is scored is what is logged and learned).
#include "model/push_features.h"

#include <gtest/gtest.h>

namespace herald::model {
namespace {

TEST(PushFeaturesTest, TitleTraits) {
  EXPECT_TRUE(TraitsOf("3 deals today").digits);
  EXPECT_FALSE(TraitsOf("deals today").digits);
  EXPECT_TRUE(TraitsOf("Sale \xF0\x9F\x94\xA5").emoji);        // U+1F525 fire
  EXPECT_TRUE(TraitsOf("Weather \xE2\x98\x80").emoji);         // U+2600 sun
  EXPECT_FALSE(TraitsOf("\xE4\xBD\xA0\xE5\xA5\xBD").emoji);    // 你好
  EXPECT_EQ(TraitsOf("\xE4\xBD\xA0\xE5\xA5\xBD").chars, 2u);
  EXPECT_EQ(TraitsOf("").chars, 0u);
  EXPECT_LE(TraitsOf("\xF0\x9F").chars, 2u);  // a cut sequence never reads past the end
}

TEST(PushFeaturesTest, TheSamePushGivesTheSameVectorAndCrossesDiffer) {
  PushContext c;
  c.user_class = "student";
  c.account_id = "news";
  c.form = "video";
  c.local_hour = 20;
  c.weekday = 2;
  c.title = "5 things \xF0\x9F\x94\xA5";
  c.tags = {"finance", "sport"};
  c.activity_at_hour = 3.5;
  auto a = PushFeatures(c, 20), b = PushFeatures(c, 20);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].index, b[i].index);
  EXPECT_EQ(a.size(), 16u);  // 14 fields and crosses, 2 tags
  c.local_hour = 21;
  auto d = PushFeatures(c, 20);
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i].index != d[i].index;
  EXPECT_EQ(differ, 3);  // hour, hour x weekday, account x hour
  for (const auto& f : a) EXPECT_LT(f.index, 1u << 20);
}

TEST(PushFeaturesTest, ThePartsMakeUpTheWholeVector) {
  PushContext c;
  c.user_class = "student";
  c.account_id = "news";
  c.form = "video";
  c.local_hour = 20;
  c.weekday = 4;
  c.title = "3 picks for you";
  c.device = "ios";
  c.tag_keys = {42};
  c.activity_at_hour = 2.5;
  std::vector<Feature> parts;
  AppendUserFeatures(c, 20, &parts);
  AppendMessageFeatures(c, 20, &parts);
  AppendCrossFeatures(c, 20, &parts);
  const auto whole = PushFeatures(c, 20);
  ASSERT_EQ(parts.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(parts[i].index, whole[i].index);
}

}  // namespace
}  // namespace herald::model
