// The time zone cache: IANA names load once, bad names never reach the disk.
#include "stream/timezones.h"

#include <cctz/time_zone.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace herald::stream {
namespace {

TEST(TimeZonesTest, LoadsIanaZonesOnce) {
  Result<const cctz::time_zone*> a = FindTimeZone("Asia/Shanghai");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->name(), "Asia/Shanghai");
  EXPECT_EQ(FindTimeZone("Asia/Shanghai").value(), *a);  // the cached zone
  EXPECT_TRUE(ValidTimeZone("America/New_York"));
  EXPECT_TRUE(ValidTimeZone("UTC"));
  EXPECT_TRUE(ValidTimeZone("Etc/GMT+8"));
}

TEST(TimeZonesTest, RejectsUnknownAndUnsafeNames) {
  EXPECT_EQ(FindTimeZone("Mars/Base").status().message(), "unknown time zone \"Mars/Base\"");
  for (const char* name : {"", "../../etc/passwd", "/etc/localtime", "localtime",
                           "Asia/../Asia/Shanghai", "Asia//Shanghai", "Asia/Shanghai "}) {
    EXPECT_FALSE(ValidTimeZone(name)) << name;
  }
}

TEST(TimeZonesTest, UnknownNamesFallBackToUtc) {
  EXPECT_EQ(TimeZoneOrUtc("").name(), "UTC");
  EXPECT_EQ(TimeZoneOrUtc("Nowhere/Land").name(), "UTC");
  EXPECT_EQ(TimeZoneOrUtc("Europe/Paris").name(), "Europe/Paris");
  EXPECT_EQ(&UtcTimeZone(), &TimeZoneOrUtc(""));
}

TEST(TimeZonesTest, ConcurrentLookupsAgree) {
  const char* names[] = {"Europe/Berlin", "Asia/Tokyo", "America/Sao_Paulo", "Africa/Cairo"};
  std::vector<std::thread> threads;
  std::vector<const cctz::time_zone*> seen(8 * 4);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4; ++i) seen[t * 4 + i] = &TimeZoneOrUtc(names[i]);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 1; t < 8; ++t) {
    for (int i = 0; i < 4; ++i) EXPECT_EQ(seen[t * 4 + i], seen[i]);
  }
}

}  // namespace
}  // namespace herald::stream
