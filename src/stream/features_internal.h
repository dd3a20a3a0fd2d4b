// Private to the stream module: the local calendar the features use, and the
// process-wide table of names behind account and tag keys.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace cctz {
class time_zone;
}

namespace herald::stream::internal {

// An instant in a user's local calendar. Days count from Monday 1999-12-27 (so
// every event time, 2000..2100 UTC, has a day in 0..65535 in every zone).
struct LocalTime {
  int hour = 0;          // 0..23
  int hour_of_week = 0;  // 0..167, Monday 00h = 0
  int day = 0;
};
LocalTime ToLocal(Micros t, const cctz::time_zone& tz);

inline int WeekOf(int day) {
  return day / 7;
}
// Months since January 2000 (any consistent count will do).
int MonthOf(int day);

// Names behind the 64-bit keys of accounts and tags, remembered by Apply() and
// Deserialize() and shown by ToJson(). Holds at most 1M names (then stops
// remembering new ones). Thread-safe.
void RememberName(std::uint64_t key, std::string_view name);
// True and sets `*name` when the name of `key` is known.
bool LookupName(std::uint64_t key, std::string* name);

}  // namespace herald::stream::internal
