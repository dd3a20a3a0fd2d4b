// The 12 user classes and their push strategies.
//
// Every user is in exactly one class, the first of this list whose rule holds
// (thresholds in [profile], docs/segments.md "Classes"):
//
//   new_user             registered within new_user_hours (24 h)
//   high_value_silent    ltv >= high_value_ltv or pays >= high_value_pays, and
//                        not active for silent_days (3)
//   dormant              not active for dormant_days (30)
//   churn_risk           not active for churn_days (7), after churn_min_events
//                        activity events or more
//   executive            occupation "executive"
//   business             occupation "business" (business customers)
//   student              occupation "student", or no occupation and an age of
//                        student_min_age..student_max_age
//   content_creator      occupation "creator", or shares >= creator_shares
//   instant_consumption  conversions >= instant_conversions
//   night_owl            at least night_share of the activity in 22:00-04:59
//                        local, over night_min_activity events or more
//   high_frequency       decayed activity >= high_frequency_activity, active
//                        within the last 3 days
//   low_frequency        everyone else
//
// A class depends on the profile, the features and the time: Classify also says
// until when its answer holds if nothing else changes, so that stores recompute
// a class only when an event, a profile update or that time comes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/config.h"

namespace herald::profile {

enum class UserClass : std::uint8_t {
  kNewUser = 0,
  kHighValueSilent,
  kDormant,
  kChurnRisk,
  kExecutive,
  kBusiness,
  kStudent,
  kContentCreator,
  kInstantConsumption,
  kNightOwl,
  kHighFrequency,
  kLowFrequency,
};
inline constexpr size_t kClassCount = 12;

std::string_view ClassName(UserClass c);
// The class named `name`, or false.
bool ParseClass(std::string_view name, UserClass* out);

// A class's default push strategy: what to push, what triggers it, and the
// local windows it prefers.
struct Window {
  enum Days : std::uint8_t { kAny, kWeekdays, kWeekends } days = kAny;
  int from_minute = 0, to_minute = 24 * 60;  // local minutes of the day, [from, to)
};
struct Strategy {
  std::string focus;    // content focus, e.g. "onboarding"
  std::string trigger;  // "signup", "app_start", "schedule", "win_back", ...
  std::vector<Window> windows;
};
// Parses "weekdays 10:00-11:30", "any 20:00-24:00", "weekends 09:00-21:00".
bool ParseWindow(std::string_view text, Window* out);
std::string WindowText(const Window& w);

// The [profile] section: the class rules, strategies and the privacy secret.
struct ProfileConfig {
  std::uint64_t new_user_hours = 24;
  double high_value_ltv = 100;
  std::uint64_t high_value_pays = 3;
  std::uint64_t silent_days = 3;
  std::uint64_t dormant_days = 30;
  std::uint64_t churn_days = 7;
  std::uint64_t churn_min_events = 10;
  std::uint64_t student_min_age = 12, student_max_age = 22;
  std::uint64_t creator_shares = 20;
  std::uint64_t instant_conversions = 3;
  double night_share = 0.5;
  std::uint64_t night_min_activity = 5;
  double high_frequency_activity = 20;
  // "class=value" entries overriding the defaults of the strategies.
  std::vector<std::string> focus, trigger, windows;
  std::vector<std::string> holidays;  // "YYYY-MM-DD": low-frequency win-back days
  // The privacy secret that keys the item hashes (profile/privacy.h): a file
  // holding it, outside the data directory. Empty: <data_dir>.privacy.key,
  // created on first start.
  std::string secret_file;
};
config::Section<ProfileConfig> ProfileConfigSection();
// The strategies the source describes, by class.
std::array<Strategy, kClassCount> DefaultStrategies();
// The defaults with the config's overrides; InvalidArgument naming the entry.
Result<std::array<Strategy, kClassCount>> BuildStrategies(const ProfileConfig& c);

// What a class is computed from.
struct ClassInputs {
  Micros registered = 0;   // 0: unknown
  Micros last_active = 0;  // 0: never
  double activity = 0;     // decayed activity events at activity_ref
  Micros activity_ref = 0;
  double night = 0;        // share of the activity at night, 0..1
  std::uint32_t active_events = 0, pays = 0, shares = 0, conversions = 0;
  double ltv = 0;
  int age = -1;                    // -1: unknown
  std::string_view occupation;     // "" unknown
};
struct Classified {
  UserClass cls = UserClass::kLowFrequency;
  Micros until = 0;  // the answer holds before this time, if nothing changes
};
Classified Classify(const ClassInputs& in, const ProfileConfig& c, Micros now);

}  // namespace herald::profile
