// The simulated population and how its users behave (docs/simulation.md).
//
// A population is a pure function of its size, seed and time-zone mix: users of
// the 12 classes in fixed proportions, each with a time zone, a daily rhythm, the
// accounts it follows (and how much it likes each) and the profile fields
// herald's classifier reads. What a user does with a push is a pure function of
// the user, the push, the user's recent pushes and a random draw keyed by the
// seed, the user and the push, so that a run does not depend on the order in
// which herald's threads hand pushes over.
//
// The behaviour model, calibrated against the source:
//   - open:    the source's open rate at the local hour the push arrives
//              (06–07 3.2%, 08–09 6.8%, 12–13 5.1%, 19–20 4.7%, 22–23 2.1%;
//              model::SourceOpenRate), shaped by class (students late, night owls
//              at night, ...) and normalised so that the population's average is
//              the source's at every hour; times the user's affinity for the
//              account, the title's digits (+19% opens) and the fatigue factor;
//   - click:   given an open, 35% (+27% with an emoji in the title);
//   - convert: given a click, the class's rate (+41% for a video of 15 s),
//              with an order value (+18% for a service card);
//   - fatigue: every push past the user's tolerance in the last 24 hours cuts
//              the chance of an open by 20%; a push unopened past the tolerance,
//              or arriving while the user sleeps (23:00–07:00 local), may bring a
//              "not interested" mark, a complaint or an uninstall.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace herald::sim {

inline constexpr size_t kClasses = 12;

struct ClassSpec {
  const char* name;     // herald's class name (profile::ClassName)
  double share;         // of the population
  double app_opens;     // app opens a day
  double propensity;    // push opens relative to the population's
  double convert;       // P(convert | click)
  double tolerance;     // pushes in 24 hours before fatigue sets in
  double sensitivity;   // how readily annoyance turns into marks and uninstalls
  enum Tilt : std::uint8_t { kDay, kMorning, kEvening, kNight, kLow } tilt;
};
const std::array<ClassSpec, kClasses>& Classes();

// The chance that a user of class `cls` opens a push that arrives at local hour
// `hour`, before affinity, content and fatigue: the source's rate at that hour,
// shaped by class, the population's average being the source's.
double BaseOpen(size_t cls, int hour);
// The class's share of app activity at local `hour` (sums to 1 over the day).
double ActivityShare(size_t cls, int hour);

struct ZoneShare {
  std::string zone;
  double share = 0;
};
// Mostly Asia/Shanghai, with some users in other zones.
std::vector<ZoneShare> DefaultZones();
// "Asia/Shanghai=0.8,Europe/London=0.2": shares normalised; InvalidArgument
// naming the problem (an unknown zone, a bad share).
Result<std::vector<ZoneShare>> ParseZones(std::string_view text);

// An account of the simulated app: what it posts each day and when.
struct SimAccount {
  std::string id, name;
  std::string type;      // service, business or subscription (as herald runs it)
  int local_minute = 0;  // when its daily post goes, Asia/Shanghai
  std::string title;     // the post's title (digits and emoji change opens and clicks)
  std::string form;      // text, image_text, video, mini_program, service_card
  double reach = 0;      // share of the users following it
  int every_days = 1;    // posts every this many days
};
std::vector<SimAccount> DefaultAccounts();

struct SimUser {
  std::uint8_t cls = 0;
  std::uint8_t zone = 0;
  std::uint8_t age = 30;
  float activity = 1;  // the user's app activity relative to the class's
  std::vector<std::pair<std::uint8_t, float>> follows;  // account index, affinity (mean 1)
};

struct Population {
  std::vector<SimUser> users;
  std::vector<SimAccount> accounts;
  std::vector<ZoneShare> zones;
  std::string UserId(size_t i) const { return "sim-" + std::to_string(i); }
};
Population MakePopulation(size_t users, std::uint64_t seed, const std::vector<ZoneShare>& zones);

// A user's last pushes (times in seconds), for the fatigue factor.
struct Recent {
  std::array<std::int64_t, 16> at{};
  std::uint8_t next = 0;
  void Add(std::int64_t t) {
    at[next] = t;
    next = static_cast<std::uint8_t>((next + 1) % at.size());
  }
  int Within(std::int64_t now, std::int64_t seconds) const;
};

struct PushOutcome {
  bool opened = false, clicked = false, converted = false;
  double gmv = 0;
  bool not_interested = false, complaint = false, uninstall = false;
  int delay_steps = 0;  // the open comes this many steps after delivery
};
// What the user does with a push from `account` arriving at local `hour`, with
// `recent` pushes in the 24 hours before it; `asleep` when it arrives in the
// user's night. `draw` keys the randomness (seed, user, push).
PushOutcome Respond(const SimUser& u, const SimAccount& account, float affinity, int hour, int recent,
                    bool asleep, std::uint64_t draw);

// The user's response to a push from `account_id` (an account of the population,
// or "digest": the daily digest, liked as the user's best-liked subscription)
// arriving at local `hour`, `now_s` unix seconds; counts it in `recent`.
PushOutcome RespondToPush(const Population& pop, size_t user, std::string_view account_id, int hour,
                          std::int64_t now_s, Recent& recent, std::uint64_t draw);

// A random number generator keyed by values (SplitMix64 over their mix).
std::uint64_t Mix(std::uint64_t a, std::uint64_t b);
double Uniform(std::uint64_t& state);  // [0, 1), advances the state

}  // namespace herald::sim
