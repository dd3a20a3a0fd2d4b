// ToJson: the GET /v1/users/{id}/features answer.
#include <cctz/time_zone.h>

#include <cmath>
#include <cstdio>

#include "core/time_format.h"
#include "stream/features.h"
#include "stream/features_internal.h"
#include "stream/json_text.h"

namespace herald::stream {
namespace {

// Appends `,"key":` (without the comma for the first member of an object).
void Key(std::string* out, std::string_view key) {
  if (out->back() != '{') out->push_back(',');
  json::AppendString(out, key);
  out->push_back(':');
}

void Time(std::string* out, std::string_view key, Micros t) {
  Key(out, key);
  if (t == 0) {
    out->append("null");
  } else {
    json::AppendString(out, FormatIsoTime(t));
  }
}

void Int(std::string* out, std::string_view key, std::int64_t v) {
  Key(out, key);
  out->append(std::to_string(v));
}

// Decayed values are shown to 4 decimals: enough to rank hours, and stable.
void Decimal(std::string* out, double v) {
  json::AppendNumber(out, std::round(v * 1e4) / 1e4);
}

template <typename T, std::size_t N>
void IntArray(std::string* out, std::string_view key, const T (&values)[N]) {
  Key(out, key);
  out->push_back('[');
  for (std::size_t i = 0; i < N; ++i) {
    if (i) out->push_back(',');
    out->append(std::to_string(values[i]));
  }
  out->push_back(']');
}

void Name(std::string* out, std::uint64_t key) {
  std::string name;
  if (!internal::LookupName(key, &name)) {
    char hex[24];
    std::snprintf(hex, sizeof hex, "#%016llx", static_cast<unsigned long long>(key));
    name = hex;
  }
  json::AppendString(out, name);
}

void Activity(const UserFeatures& f, Micros now, std::string* out) {
  Key(out, "activity");
  out->push_back('{');
  Int(out, "half_life_days", kDecayHalfLife / kMicrosPerDay);
  const auto by_week = ActivityByHourOfWeek(f, now);
  double by_day[24] = {};
  Key(out, "by_hour_of_week");
  out->push_back('[');
  for (std::size_t h = 0; h < kHoursPerWeek; ++h) {
    if (h) out->push_back(',');
    Decimal(out, by_week[h]);
    by_day[h % 24] += by_week[h];
  }
  out->append("]");
  Key(out, "by_hour_of_day");
  out->push_back('[');
  for (int h = 0; h < 24; ++h) {
    if (h) out->push_back(',');
    Decimal(out, by_day[h]);
  }
  out->append("]}");
}

void SessionsJson(const UserFeatures& f, std::string* out) {
  const SessionStats s = Sessions(f);
  Key(out, "sessions");
  out->push_back('{');
  Int(out, "count", s.count);
  Int(out, "total_s", s.total / kMicrosPerSecond);
  Int(out, "last_s", s.last / kMicrosPerSecond);
  Time(out, "last_start", f.session_start);
  Time(out, "last_end", f.session_end);
  Int(out, "gap_s", kSessionGap / kMicrosPerSecond);
  out->push_back('}');
}

void Pushes(const UserFeatures& f, std::string* out) {
  Key(out, "pushes");
  out->push_back('{');
  Int(out, "consecutive_unopened", UnopenedSinceLastOpen(f));
  Time(out, "last_push", f.last_push);
  Time(out, "last_open", f.last_open);
  IntArray(out, "sent_by_hour", f.sent_by_hour);
  IntArray(out, "opened_by_hour", f.opened_by_hour);
  out->push_back('}');
}

void Accounts(const UserFeatures& f, const cctz::time_zone& tz, Micros now, std::string* out) {
  const internal::LocalTime today = internal::ToLocal(now, tz);
  Key(out, "sends_by_account");
  out->push_back('[');
  bool first = true;
  for (std::size_t i = 0; i < kTrackedAccounts; ++i) {
    if (f.account_key[i] == 0) continue;
    const int last = f.account_day[i];
    if (!first) out->push_back(',');
    first = false;
    out->append("{\"account_id\":");
    Name(out, f.account_key[i]);
    Int(out, "day", today.day == last ? f.sends_day[i] : 0);
    Int(out, "week", internal::WeekOf(today.day) == internal::WeekOf(last) ? f.sends_week[i] : 0);
    Int(out, "month",
        internal::MonthOf(today.day) == internal::MonthOf(last) ? f.sends_month[i] : 0);
    out->push_back('}');
  }
  out->push_back(']');
}

void InterestsJson(const UserFeatures& f, Micros now, std::string* out) {
  Key(out, "interests");
  out->push_back('[');
  bool first = true;
  for (const Interest& interest : Interests(f, now)) {
    if (!first) out->push_back(',');
    first = false;
    out->append("{\"tag\":");
    Name(out, interest.key);
    out->append(",\"weight\":");
    Decimal(out, interest.weight);
    out->push_back('}');
  }
  out->push_back(']');
}

}  // namespace

void ToJson(const UserFeatures& f, std::string_view user_id, const cctz::time_zone& tz, Micros now,
            std::string* out) {
  out->push_back('{');
  Key(out, "user_id");
  json::AppendString(out, user_id);
  Key(out, "events_total");
  out->push_back('{');
  for (std::size_t i = 0; i < kEventTypeCount; ++i) {
    Int(out, EventTypeName(static_cast<EventType>(i)), f.events_total[i]);
  }
  out->push_back('}');
  Time(out, "last_active", f.last_active);
  Time(out, "first_event", f.first_event);
  Time(out, "last_event", f.last_event);
  Key(out, "tz");
  json::AppendString(out, tz.name());
  Activity(f, now, out);
  SessionsJson(f, out);
  Pushes(f, out);
  Accounts(f, tz, now, out);
  InterestsJson(f, now, out);
  out->push_back('}');
}

}  // namespace herald::stream
