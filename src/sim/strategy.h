// What each strategy of sim/simulator.h changes in herald, and what herald is told
// of a simulated user: shared by the fast mode and the run through MQTT.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.h"
#include "node/config.h"
#include "sim/population.h"

namespace herald::sim {

inline constexpr Micros kStep = 30 * kMicrosPerMinute;
inline constexpr int kStepsPerDay = 48;
// Monday 2 March 2026, 00:00 in Shanghai.
inline constexpr Micros kStart = 1772380800LL * kMicrosPerSecond;

struct Spec {
  bool caps = true, fatigue = true, quiet = true, reputation = true, window = true, digest = true;
};
Spec SpecOf(const std::string& name);

// herald's configuration for the strategy, on the virtual clock from kStart.
node::Config ConfigOf(const Spec& s, const std::string& dir, size_t users);

// The user's profile as POST /v1/users takes it (JSON object text): the fields
// herald's classifier reads for the user's class.
std::string ProfileJson(const SimUser& u, Micros start);

// Counts each user in its class with its pushes per day (`sent_per_user` over
// `days`), then the classes into the whole.
void CountUsers(const Population& pop, const std::vector<std::uint32_t>& sent_per_user, int days,
                struct StrategyResult* result);

}  // namespace herald::sim
