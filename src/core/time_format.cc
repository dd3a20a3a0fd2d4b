#include "core/time_format.h"

#include <cstdio>

namespace herald {

// Howard Hinnant's public-domain civil calendar algorithms.
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void CivilFromDays(std::int64_t z, std::int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<std::int64_t>(yoe) + era * 400 + (*m <= 2);
}

namespace {

bool ReadDigits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

}  // namespace

Result<Micros> ParseIsoTime(std::string_view s) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument(std::string("invalid time \"") + std::string(s.substr(0, 64)) +
                                   "\": " + why);
  };
  int year, mon, day, hour, min, sec;
  if (!ReadDigits(s, 0, 4, &year) || s.size() < 19 || s[4] != '-' || !ReadDigits(s, 5, 2, &mon) ||
      s[7] != '-' || !ReadDigits(s, 8, 2, &day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !ReadDigits(s, 11, 2, &hour) || s[13] != ':' || !ReadDigits(s, 14, 2, &min) || s[16] != ':' ||
      !ReadDigits(s, 17, 2, &sec)) {
    return bad("expected YYYY-MM-DDTHH:MM:SS with a zone");
  }
  if (mon < 1 || mon > 12 || day < 1 || day > DaysInMonth(year, mon)) return bad("no such date");
  if (hour > 23 || min > 59 || sec > 60) return bad("no such time of day");
  if (sec == 60) sec = 59;  // leap second: clamp, as unix time does
  size_t pos = 19;
  Micros frac = 0;
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
    ++pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 6) frac = frac * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return bad("empty fraction of a second");
    for (int i = digits; i < 6; ++i) frac *= 10;
  }
  if (pos >= s.size()) return bad("missing zone (Z or +HH:MM)");
  Micros offset = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int sign = s[pos] == '-' ? -1 : 1;
    int oh, om;
    if (!ReadDigits(s, pos + 1, 2, &oh)) return bad("bad zone offset");
    size_t mpos = pos + 3;
    if (mpos < s.size() && s[mpos] == ':') ++mpos;
    if (!ReadDigits(s, mpos, 2, &om)) return bad("bad zone offset");
    if (oh > 23 || om > 59) return bad("zone offset out of range");
    offset = sign * (oh * kMicrosPerHour + om * kMicrosPerMinute);
    pos = mpos + 2;
  } else {
    return bad("missing zone (Z or +HH:MM)");
  }
  if (pos != s.size()) return bad("trailing characters");
  Micros t = DaysFromCivil(year, mon, day) * kMicrosPerDay + hour * kMicrosPerHour +
             min * kMicrosPerMinute + sec * kMicrosPerSecond + frac;
  return t - offset;
}

std::string FormatIsoTime(Micros t) {
  Micros days = t / kMicrosPerDay;
  Micros rem = t % kMicrosPerDay;
  if (rem < 0) {
    rem += kMicrosPerDay;
    --days;
  }
  std::int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  int hh = static_cast<int>(rem / kMicrosPerHour);
  int mm = static_cast<int>(rem / kMicrosPerMinute % 60);
  int ss = static_cast<int>(rem / kMicrosPerSecond % 60);
  int us = static_cast<int>(rem % kMicrosPerSecond);
  char buf[48];
  if (us == 0) {
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02dZ", static_cast<long long>(y), m,
                  d, hh, mm, ss);
  } else {
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%06dZ",
                  static_cast<long long>(y), m, d, hh, mm, ss, us);
  }
  return buf;
}

}  // namespace herald
