#include "stream/windows.h"

#include <gtest/gtest.h>

#include "core/time_format.h"

namespace herald::stream {
namespace {

Event Ev(EventType t, const char* ts, const char* tenant = "t") {
  Event e;
  e.tenant = tenant;
  e.user_id = "u";
  e.type = t;
  e.ts = ParseIsoTime(ts).value();
  return e;
}

TEST(WindowsTest, TumblingMinuteAndHourBoundaries) {
  WindowCounts w;
  Micros wm = ParseIsoTime("2026-01-05T09:00:00Z").value();
  w.Add(Ev(EventType::kSent, "2026-01-05T08:59:59.999999Z"), "all", 8, wm);
  w.Add(Ev(EventType::kSent, "2026-01-05T09:00:00Z"), "all", 9, wm);
  w.Add(Ev(EventType::kOpened, "2026-01-05T09:00:59Z"), "all", 9, wm);
  w.Add(Ev(EventType::kAppOpen, "2026-01-05T09:00:30Z"), "all", 9, wm);  // not an outcome
  auto minutes = w.Windows(kMicrosPerMinute, "t", 0);
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(FormatIsoTime(minutes[0].start), "2026-01-05T08:59:00Z");
  EXPECT_EQ(minutes[0].counts, (OutcomeCounts{1, 0, 0, 0}));
  EXPECT_EQ(FormatIsoTime(minutes[1].start), "2026-01-05T09:00:00Z");
  EXPECT_EQ(minutes[1].counts, (OutcomeCounts{1, 0, 1, 0}));
  auto hours = w.Windows(kMicrosPerHour, "", 0);
  ASSERT_EQ(hours.size(), 2u);
  EXPECT_EQ(hours[1].counts, (OutcomeCounts{1, 0, 1, 0}));
  auto by_hour = w.ByLocalHour("t", "all");
  EXPECT_EQ(by_hour[8].sent, 1u);
  EXPECT_EQ(by_hour[9].sent, 1u);
  EXPECT_EQ(by_hour[9].opened, 1u);
}

TEST(WindowsTest, TenantsAreSeparateAndOldWindowsExpire) {
  WindowCounts w(kMicrosPerHour);
  Micros t0 = ParseIsoTime("2026-01-05T09:00:00Z").value();
  w.Add(Ev(EventType::kSent, "2026-01-05T09:00:00Z", "a"), "all", 9, t0);
  w.Add(Ev(EventType::kSent, "2026-01-05T09:00:00Z", "b"), "all", 9, t0);
  EXPECT_EQ(w.Windows(kMicrosPerMinute, "a", 0).size(), 1u);
  // Three hours later the 09:00 windows are past their retention.
  Micros later = ParseIsoTime("2026-01-05T12:00:00Z").value();
  w.Add(Ev(EventType::kSent, "2026-01-05T12:00:00Z", "a"), "all", 12, later);
  EXPECT_EQ(w.Windows(kMicrosPerMinute, "a", 0).size(), 1u);
  EXPECT_EQ(w.Windows(kMicrosPerMinute, "b", 0).size(), 0u);
  w.Add(Ev(EventType::kSent, "2026-01-05T09:30:00Z", "a"), "all", 9, later);  // too late
  EXPECT_EQ(w.late(), 2u);  // its minute and its hour window are gone
}

}  // namespace
}  // namespace herald::stream
