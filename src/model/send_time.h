// The send-time model, the "golden push window": for each user, local hour and
// kind of day (weekday or weekend), a Bayesian estimate of the chance that the
// user is there to see a push, that is, opens a push or is active in the app
// within an hour of it.
//
// Evidence is counted in days: a day of the user's counts once for every hour
// within ±1 h of an hour in which the user opened a push or was active. The
// estimate for hour h on a kind of day d is the mean of a Beta posterior
//   Beta(k_d(h) + m1 * p_all(h), n_d - k_d(h) + m1 * (1 - p_all(h)))
// whose prior is the user's own all-days rate, itself shrunk toward the rate of
// the user's group (the tenant's users of the user's class), which is shrunk
// toward the population's rate for that hour and kind of day:
//   p_all(h) = (k(h) + m2 * p_group_d(h)) / (n + m2),
//   p_group_d(h) = (k_g,d(h) + m3 * p_pop_d(h)) / (n_g,d + m3)
// (p_group = p_pop for a user without a group). An empty population follows the
// source's hourly table (SourceOpenRate), so a cold start picks 08:00.
// A user with no history gets the population's best hour; one with a few days
// leans on it; one with months of days has their own. BestHour() takes the
// posterior mean; SampleHour() draws from each hour's posterior (Thompson
// sampling), so that serving keeps exploring hours the user might prefer.
//
// Thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace cctz {
class time_zone;
}

namespace herald::model {

inline constexpr int kDayKinds = 2;  // 0 weekday (Monday..Friday), 1 weekend

struct SendTimePrior {
  double user_strength = 2;        // m1: pseudo-days of the user's all-days rate
  double population_strength = 3;  // m2: pseudo-days of the group's (or population's) rate
  double group_strength = 5;       // m3: pseudo-days of the population's rate in a group's
};

// The source's open rate of a push by local hour: 06-07 3.2%, 08-09 6.8%,
// 12-13 5.1%, 19-20 4.7%, 22-23 2.1%; the hours between are interpolated, and
// the night falls to 0.5% at 03:00. The cold start of both models.
double SourceOpenRate(int local_hour);

// One user's evidence: days seen by kind, and per kind and hour the days with
// activity within ±1 h.
struct SendTimeUser {
  std::array<std::uint32_t, kDayKinds> days{};
  std::array<std::array<std::uint32_t, 24>, kDayKinds> near{};
  // The evidence of the user's group (the tenant's users of the user's class):
  // the level between the user and the population, or null. Not owned.
  const SendTimeUser* group = nullptr;
};

class SendTimeModel {
 public:
  explicit SendTimeModel(SendTimePrior prior = {}) : prior_(prior) {}

  // Adds one day of a user: its kind and the local hours with activity (bit h of
  // `hours` set: active or opened in hour h).
  void AddDay(SendTimeUser& u, int kind, std::uint32_t hours);
  // Adds the same day to the population's rates (call once per user-day).
  void AddPopulationDay(int kind, std::uint32_t hours);

  // The posterior mean for hour h on a day of `kind`.
  double Rate(const SendTimeUser& u, int kind, int hour) const;
  // The hour with the highest posterior mean (ties: the earliest).
  int BestHour(const SendTimeUser& u, int kind) const;
  // One draw from the posterior of hour h (Thompson sampling).
  double SampleRate(const SendTimeUser& u, int kind, int hour, std::mt19937_64& rng) const;
  // Thompson sampling among hours [from, to] (inclusive, wrapping past 23).
  int SampleHour(const SendTimeUser& u, int kind, int from, int to, std::mt19937_64& rng) const;
  // Replaces the population's evidence (restored from a checkpoint).
  void SetPopulation(const SendTimeUser& population) { population_ = population; }
  // The population's best hour for a kind of day.
  int PopulationBestHour(int kind) const;

 private:
  double PopulationRate(int kind, int hour) const;
  double AllDaysRate(const SendTimeUser& u, int kind, int hour) const;

  SendTimePrior prior_;
  SendTimeUser population_;
};

// What the engine asks: the time inside [from, to) to send a push to the user,
// chosen by Thompson sampling among the local hours the window covers, at the
// start of the chosen hour (or `from`, when that hour starts before it). The
// window's first hour wins when the window is shorter than an hour.
Micros BestTimeInWindow(const SendTimeModel& model, const SendTimeUser& user, Micros from, Micros to,
                        const cctz::time_zone& tz, std::mt19937_64& rng);

// The bits of the hours within ±1 h of any set bit (circular).
std::uint32_t NearHours(std::uint32_t hours);

// `herald model eval-sendtime`: reads `path` (CSV: user_id,ts,type[,tz]; type
// sent, opened or active), holds out each user's last third of days, and returns
// the report whose last line is "hit_rate model=... global_best_hour=...
// user_mode=...". Errors name the line.
Result<std::string> EvalSendTime(const std::string& path);

}  // namespace herald::model
