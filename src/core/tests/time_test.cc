#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/time_format.h"

namespace herald {

TEST(TimeFormatTest, ParsesZonesToTheSameInstant) {
  auto a = ParseIsoTime("2026-01-05T08:00:00+08:00");
  auto b = ParseIsoTime("2026-01-05T00:00:00Z");
  auto c = ParseIsoTime("2026-01-04T19:00:00-0500");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(*b, *c);
  EXPECT_EQ(*b, 1767571200LL * kMicrosPerSecond);
}

TEST(TimeFormatTest, FractionsAndRoundTrip) {
  auto t = ParseIsoTime("2024-02-29T23:59:59.250Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatIsoTime(*t), "2024-02-29T23:59:59.250000Z");
  EXPECT_EQ(FormatIsoTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoTime(-kMicrosPerSecond), "1969-12-31T23:59:59Z");
}

TEST(TimeFormatTest, RejectsImpossibleAndZonelessTimes) {
  for (const char* bad : {"2026-01-05T08:00:00", "2025-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
                          "2026-01-05T24:00:00Z", "2026-01-05", "2026-01-05T08:00:00+25:00",
                          "2026-01-05T08:00:00Zjunk", "", "2026-01-05T08:00:00."}) {
    EXPECT_FALSE(ParseIsoTime(bad).ok()) << bad;
  }
}

TEST(VirtualClockTest, MovesOnlyForwardAndNotifies) {
  VirtualClock clock(1000);
  std::vector<Micros> seen;
  clock.OnMove([&](Micros t) { seen.push_back(t); });
  EXPECT_EQ(clock.Advance(500), 1500);
  EXPECT_TRUE(clock.Set(2000));
  EXPECT_FALSE(clock.Set(1999));
  EXPECT_EQ(clock.Now(), 2000);
  EXPECT_EQ(seen, (std::vector<Micros>{1500, 2000}));
  EXPECT_TRUE(clock.IsVirtual());
  EXPECT_FALSE(SystemClock().IsVirtual());
}

}  // namespace herald
