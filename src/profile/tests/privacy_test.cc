// The privacy transforms: grid cells instead of coordinates, keyed hashes
// instead of item ids, and attrs rewritten so that neither survives.
#include "profile/privacy.h"

#include <gtest/gtest.h>

namespace herald::profile {
namespace {

TEST(PrivacyTest, ACellIsAboutHalfAKilometreAndHoldsThePoint) {
  const std::uint64_t c = GeoCell(31.2304, 121.4737);
  EXPECT_NE(c, 0u);
  EXPECT_LT(CellDistance(c, 31.2304, 121.4737), 450.0);  // within the cell's half diagonal
  EXPECT_EQ(GeoCell(31.2304, 121.4737), GeoCell(31.23041, 121.47371));  // 1 m away: same cell
  EXPECT_NE(GeoCell(31.2304, 121.4737), GeoCell(31.2404, 121.4737));   // 1.1 km away: not
  EXPECT_FALSE(CellToken(c).empty());
}

TEST(PrivacyTest, TheCoverHoldsEveryCellWhoseCentreIsInTheDisc) {
  const double lat = 31.23, lng = 121.47, r = 3000;
  const auto ranges = CoverDisc(lat, lng, r);
  ASSERT_FALSE(ranges.empty());
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_LT(ranges[i - 1].second, ranges[i].first);
  size_t inside = 0;
  for (double dy = -0.05; dy <= 0.05; dy += 0.002) {
    for (double dx = -0.05; dx <= 0.05; dx += 0.002) {
      const std::uint64_t c = GeoCell(lat + dy, lng + dx);
      if (CellDistance(c, lat, lng) > r) continue;
      ++inside;
      bool covered = false;
      for (const auto& [a, b] : ranges) covered |= c >= a && c <= b;
      EXPECT_TRUE(covered) << dy << "," << dx;
    }
  }
  EXPECT_GT(inside, 50u);
}

TEST(PrivacyTest, ItemHashesAreKeyedPerTenantAndStable) {
  KeyedHasher h("secret-1");
  const std::string a = h.Item("t1", "article-42");
  EXPECT_EQ(a.size(), 34u);
  EXPECT_EQ(a.substr(0, 2), "h:");
  EXPECT_EQ(a, h.Item("t1", "article-42"));
  EXPECT_NE(a, h.Item("t2", "article-42"));
  EXPECT_NE(a, h.Item("t1", "article-43"));
  EXPECT_NE(a, KeyedHasher("secret-2").Item("t1", "article-42"));
}

TEST(PrivacyTest, TheTransformLeavesNoCoordinatesOrItemIds) {
  PrivacyTransform t("s");
  stream::Event e;
  e.tenant = "t";
  e.user_id = "u";
  e.type = stream::EventType::kLocation;
  e.ts = 1772323200LL * kMicrosPerSecond;
  e.lat = 31.2304;
  e.lng = 121.4737;
  e.attrs = R"({"lat":31.2304,"lng":121.4737,"src":"gps","deep":{"a":[1,2]}})";
  t.Apply(e);
  EXPECT_FALSE(e.lat);
  EXPECT_FALSE(e.lng);
  EXPECT_EQ(e.cell, GeoCell(31.2304, 121.4737));
  EXPECT_EQ(e.attrs.find("31.23"), std::string::npos) << e.attrs;
  EXPECT_NE(e.attrs.find("\"src\":\"gps\""), std::string::npos) << e.attrs;
  EXPECT_NE(e.attrs.find("\"deep\":{\"a\":[1,2]}"), std::string::npos) << e.attrs;
  EXPECT_NE(e.attrs.find("\"cell\":\"" + CellToken(e.cell) + "\""), std::string::npos) << e.attrs;
  EXPECT_TRUE(stream::Validate(e).ok());

  stream::Event r;
  r.tenant = "t";
  r.user_id = "u";
  r.type = stream::EventType::kRead;
  r.item = "secret-article";
  r.attrs = R"({"item":"secret-article","tags":["x"]})";
  t.Apply(r);
  EXPECT_EQ(r.item, t.hasher().Item("t", "secret-article"));
  EXPECT_EQ(r.attrs.find("secret-article"), std::string::npos) << r.attrs;
  EXPECT_NE(r.attrs.find(r.item), std::string::npos) << r.attrs;
}

}  // namespace
}  // namespace herald::profile
