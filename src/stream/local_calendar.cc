// The local calendar of features_internal.h, on cctz.
#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include <chrono>

#include "stream/features_internal.h"

namespace herald::stream::internal {
namespace {

const cctz::civil_day kDayZero(1999, 12, 27);  // a Monday

}  // namespace

LocalTime ToLocal(Micros t, const cctz::time_zone& tz) {
  Micros seconds = t / kMicrosPerSecond - (t % kMicrosPerSecond < 0 ? 1 : 0);
  const auto tp =
      std::chrono::time_point<std::chrono::system_clock, cctz::seconds>(cctz::seconds(seconds));
  const cctz::civil_second cs = cctz::convert(tp, tz);
  const cctz::civil_day day(cs);
  LocalTime lt;
  lt.hour = cs.hour();
  lt.day = static_cast<int>(day - kDayZero);
  // cctz::weekday counts from Monday = 0, as our buckets do.
  lt.hour_of_week = static_cast<int>(cctz::get_weekday(day)) * 24 + lt.hour;
  return lt;
}

int MonthOf(int day) {
  const cctz::civil_month m(kDayZero + day);
  return static_cast<int>((m.year() - 2000) * 12 + m.month() - 1);
}

}  // namespace herald::stream::internal
