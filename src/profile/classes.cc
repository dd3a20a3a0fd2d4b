#include "profile/classes.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "stream/features.h"

namespace herald::profile {

namespace {
constexpr const char* kNames[kClassCount] = {
    "new_user",  "high_value_silent", "dormant",   "churn_risk",    "executive",      "business",
    "student",   "content_creator",   "instant_consumption", "night_owl", "high_frequency",
    "low_frequency"};
constexpr Micros kHour = kMicrosPerHour, kDay = kMicrosPerDay;
constexpr Micros kRecentDays = 3;  // high_frequency: active within this many days
}  // namespace

std::string_view ClassName(UserClass c) {
  const auto i = static_cast<size_t>(c);
  return i < kClassCount ? kNames[i] : "unknown";
}

bool ParseClass(std::string_view name, UserClass* out) {
  for (size_t i = 0; i < kClassCount; ++i) {
    if (name == kNames[i]) {
      *out = static_cast<UserClass>(i);
      return true;
    }
  }
  return false;
}

namespace {
bool Clock(std::string_view t, int* minute) {
  if (t.size() != 5 || t[2] != ':') return false;
  for (size_t i : {0, 1, 3, 4}) {
    if (t[i] < '0' || t[i] > '9') return false;
  }
  const int h = (t[0] - '0') * 10 + (t[1] - '0'), m = (t[3] - '0') * 10 + (t[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m)) return false;
  *minute = h * 60 + m;
  return true;
}
std::string ClockText(int minute) {
  char b[16];
  std::snprintf(b, sizeof b, "%02d:%02d", minute / 60, minute % 60);
  return b;
}
}  // namespace

bool ParseWindow(std::string_view text, Window* out) {
  const size_t sp = text.find(' ');
  if (sp == std::string_view::npos) return false;
  const std::string_view days = text.substr(0, sp), range = text.substr(sp + 1);
  Window w;
  if (days == "any") {
    w.days = Window::kAny;
  } else if (days == "weekdays") {
    w.days = Window::kWeekdays;
  } else if (days == "weekends") {
    w.days = Window::kWeekends;
  } else {
    return false;
  }
  const size_t dash = range.find('-');
  if (dash == std::string_view::npos || !Clock(range.substr(0, dash), &w.from_minute) ||
      !Clock(range.substr(dash + 1), &w.to_minute) || w.from_minute >= w.to_minute) {
    return false;
  }
  *out = w;
  return true;
}

std::string WindowText(const Window& w) {
  std::string s(w.days == Window::kAny ? "any" : w.days == Window::kWeekdays ? "weekdays" : "weekends");
  s += ' ';
  s += ClockText(w.from_minute);
  s += '-';
  s += ClockText(w.to_minute);
  return s;
}

std::array<Strategy, kClassCount> DefaultStrategies() {
  auto win = [](const char* t) {
    Window w;
    ParseWindow(t, &w);
    return w;
  };
  std::array<Strategy, kClassCount> s;
  s[0] = {"onboarding", "signup", {win("any 09:00-21:00")}};  // within 24 h of sign-up
  s[1] = {"premium", "schedule", {win("any 19:00-21:00")}};
  s[2] = {"win_back", "win_back", {win("weekends 10:00-12:00")}};
  s[3] = {"retention", "win_back", {win("any 19:00-21:00")}};
  s[4] = {"briefing", "schedule", {win("any 07:00-09:00")}};
  s[5] = {"business", "schedule", {win("weekdays 10:00-11:30")}};
  s[6] = {"study_and_entertainment", "schedule", {win("any 20:00-22:30")}};
  s[7] = {"creator_updates", "event", {win("any 12:00-13:00"), win("any 19:00-22:00")}};
  s[8] = {"offers", "event", {win("any 12:00-13:00"), win("any 19:00-20:00")}};
  s[9] = {"entertainment", "schedule", {win("any 22:00-24:00")}};
  s[10] = {"personalised", "app_start", {win("any 08:00-09:00"), win("any 12:00-13:00"), win("any 19:00-20:00")}};
  s[11] = {"win_back", "win_back", {win("weekends 10:00-21:00")}};
  return s;
}

Result<std::array<Strategy, kClassCount>> BuildStrategies(const ProfileConfig& c) {
  if (c.student_min_age > c.student_max_age) {
    return Status::InvalidArgument("profile.student_min_age: must not exceed student_max_age");
  }
  if (c.churn_days >= c.dormant_days) {
    return Status::InvalidArgument("profile.churn_days: must be less than dormant_days");
  }
  auto strategies = DefaultStrategies();
  std::array<bool, kClassCount> replaced{};
  auto each = [&](const std::vector<std::string>& list, const char* key,
                  const std::function<bool(Strategy&, std::string_view)>& set) -> Status {
    for (const std::string& entry : list) {
      const size_t eq = entry.find('=');
      UserClass cls;
      if (eq == std::string::npos || !ParseClass(std::string_view(entry).substr(0, eq), &cls)) {
        return Status::InvalidArgument(std::string("profile.") + key + ": \"" + entry +
                                       "\" must be \"class=value\" with one of the 12 classes");
      }
      if (!set(strategies[static_cast<size_t>(cls)], std::string_view(entry).substr(eq + 1))) {
        return Status::InvalidArgument(std::string("profile.") + key + ": bad value in \"" + entry + "\"");
      }
    }
    return Status::Ok();
  };
  HERALD_RETURN_IF_ERROR(each(c.focus, "focus", [](Strategy& s, std::string_view v) {
    s.focus = v;
    return !v.empty();
  }));
  HERALD_RETURN_IF_ERROR(each(c.trigger, "trigger", [](Strategy& s, std::string_view v) {
    s.trigger = v;
    return !v.empty();
  }));
  HERALD_RETURN_IF_ERROR(each(c.windows, "windows", [&](Strategy& s, std::string_view v) {
    Window w;
    if (!ParseWindow(v, &w)) return false;
    const size_t i = static_cast<size_t>(&s - strategies.data());
    if (!replaced[i]) s.windows.clear();
    replaced[i] = true;
    s.windows.push_back(w);
    return true;
  }));
  for (const std::string& d : c.holidays) {
    const bool ok = d.size() == 10 && d[4] == '-' && d[7] == '-' &&
                    std::all_of(d.begin(), d.end(), [](char ch) { return ch == '-' || (ch >= '0' && ch <= '9'); });
    if (!ok) return Status::InvalidArgument("profile.holidays: \"" + d + "\" is not a date YYYY-MM-DD");
  }
  return strategies;
}

config::Section<ProfileConfig> ProfileConfigSection() {
  using C = ProfileConfig;
  config::Section<C> s("profile", "User profiles and the 12 classes (docs/segments.md).");
  s.Uint("new_user_hours", &C::new_user_hours, 1, 24 * 365, "A user is new_user this many hours after registering.");
  s.Double("high_value_ltv", &C::high_value_ltv, 0, 1e12, "high_value_silent: lifetime value (profile ltv) from this.");
  s.Uint("high_value_pays", &C::high_value_pays, 1, 1000000, "high_value_silent: or this many pay events.");
  s.Uint("silent_days", &C::silent_days, 1, 3650, "high_value_silent: not active for this many days.");
  s.Uint("dormant_days", &C::dormant_days, 1, 3650, "dormant: not active for this many days.");
  s.Uint("churn_days", &C::churn_days, 1, 3650, "churn_risk: not active for this many days...");
  s.Uint("churn_min_events", &C::churn_min_events, 0, 1000000, "...after at least this many activity events.");
  s.Uint("student_min_age", &C::student_min_age, 0, 150, "student: youngest age without an occupation.");
  s.Uint("student_max_age", &C::student_max_age, 0, 150, "student: oldest age without an occupation.");
  s.Uint("creator_shares", &C::creator_shares, 1, 1000000, "content_creator: this many share events.");
  s.Uint("instant_conversions", &C::instant_conversions, 1, 1000000, "instant_consumption: this many conversions.");
  s.Double("night_share", &C::night_share, 0.01, 1, "night_owl: share of activity in 22:00-04:59 local.");
  s.Uint("night_min_activity", &C::night_min_activity, 1, 1000000, "night_owl: over at least this many activity events.");
  s.Double("high_frequency_activity", &C::high_frequency_activity, 0.1, 1e9,
           "high_frequency: decayed activity (events, half-life 14 days) from this.");
  s.Strings("focus", &C::focus, "Content focus by class, \"class=focus\" (overrides the defaults).");
  s.Strings("trigger", &C::trigger, "Trigger by class, \"class=trigger\".");
  s.Strings("windows", &C::windows,
            "Preferred local windows by class, \"class=any|weekdays|weekends HH:MM-HH:MM\"; the\n"
            "entries given for a class replace its defaults.");
  s.Strings("holidays", &C::holidays, "Dates \"YYYY-MM-DD\" treated like weekends by win-back windows.");
  s.String("secret_file", &C::secret_file,
           "A file holding the secret that keys the hashes of item ids, outside the data\n"
           "directory (refused inside it), so that the data alone cannot tell what users read.\n"
           "Empty: <data_dir>.privacy.key beside the data directory, created on first start.");
  s.Check([](const C& c) { return BuildStrategies(c).status(); });
  return s;
}

Classified Classify(const ClassInputs& in, const ProfileConfig& c, Micros now) {
  // Every rule's time boundary still ahead: the class may change there.
  Micros until = now + kDay;
  auto boundary = [&](Micros t) {
    if (t > now) until = std::min(until, t);
  };
  const Micros idle = in.last_active ? now - in.last_active : now - in.registered;
  const Micros since = in.last_active ? in.last_active : in.registered;
  auto idle_for = [&](std::uint64_t days) {
    boundary(since + static_cast<Micros>(days) * kDay);
    return since && idle >= static_cast<Micros>(days) * kDay;
  };
  Classified out;
  auto done = [&](UserClass cls) {
    out.cls = cls;
    out.until = until;
    return out;
  };
  if (in.registered) {
    const Micros end = in.registered + static_cast<Micros>(c.new_user_hours) * kHour;
    boundary(end);
    if (now < end) return done(UserClass::kNewUser);
  }
  const bool valuable = in.ltv >= c.high_value_ltv || in.pays >= c.high_value_pays;
  if (valuable && idle_for(c.silent_days)) return done(UserClass::kHighValueSilent);
  if (idle_for(c.dormant_days)) return done(UserClass::kDormant);
  if (in.active_events >= c.churn_min_events && idle_for(c.churn_days)) return done(UserClass::kChurnRisk);
  if (in.occupation == "executive") return done(UserClass::kExecutive);
  if (in.occupation == "business") return done(UserClass::kBusiness);
  if (in.occupation == "student" ||
      (in.occupation.empty() && in.age >= static_cast<int>(c.student_min_age) &&
       in.age <= static_cast<int>(c.student_max_age))) {
    return done(UserClass::kStudent);
  }
  if (in.occupation == "creator" || in.shares >= c.creator_shares) return done(UserClass::kContentCreator);
  if (in.conversions >= c.instant_conversions) return done(UserClass::kInstantConsumption);
  if (in.active_events >= c.night_min_activity && in.night >= c.night_share) return done(UserClass::kNightOwl);
  // Decayed activity falls below the threshold at ref + half_life * log2(a / t).
  const double half_lives = in.activity > 0 ? std::log2(in.activity / c.high_frequency_activity) : -1;
  const bool recent = in.last_active && now - in.last_active < kRecentDays * kDay;
  if (in.last_active) boundary(in.last_active + kRecentDays * kDay);
  if (half_lives >= 0) {
    const Micros fall = in.activity_ref + static_cast<Micros>(half_lives * static_cast<double>(stream::kDecayHalfLife));
    boundary(fall);
    if (recent && now < fall) return done(UserClass::kHighFrequency);
  }
  return done(UserClass::kLowFrequency);
}

}  // namespace herald::profile
