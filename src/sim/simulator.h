// The simulator: a population (sim/population.h) pushed through the real herald
// on the virtual clock, one strategy at a time, and what it did to the users.
//
// The simulator only plays the users and their devices. herald decides: its
// event pipeline, profiles, policy, models and engine run as in `herald serve`
// (a node::Node on the virtual clock, in a temporary data directory), and the
// simulator reaches them the way an app's backend does: accounts, users,
// follows and campaigns through the HTTP API's routes (in process), app activity
// and device receipts as events.
//
// Two modes:
//   fast           the node's engine hands pushes straight to the simulated
//                  devices (in-process delivery); a device reports `delivered`
//                  as the gateway would;
//   through MQTT   `herald serve` runs as a child process; each simulated device
//                  is a real MQTT client on loopback with a persistent session,
//                  and faults are injected: random disconnects, devices offline
//                  for hours, and a kill -9 of the server halfway through.
//
// Time moves in steps of 30 minutes from Monday 2 March 2026 00:00 Asia/Shanghai.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/population.h"

namespace herald::sim {

// The strategies a run compares.
//   blast              every campaign to every follower at its fixed time, no caps
//   fixed-caps         the same with the daily, monthly and new-follower caps only
//   herald             the full system: every rule, the golden window chosen by
//                      the send-time model, the daily digest, the CTR model
//   herald-no-sendtime herald at the fixed times
const std::vector<std::string>& StrategyNames();

struct SimOptions {
  size_t users = 10000;
  int days = 7;
  std::vector<std::string> strategies = {"herald"};
  std::uint64_t seed = 1;
  std::vector<ZoneShare> zones = DefaultZones();
  bool through_mqtt = false;
  std::string herald_bin;  // through MQTT: the binary to serve (default: this one)
  bool faults = true;      // through MQTT: disconnects, offline devices, a kill -9
  bool progress = true;    // a line on stderr while it runs
  std::string work_dir;    // where data directories go (default: the system's temp)
};

// What one strategy did to a group of users.
struct Counts {
  std::uint64_t users = 0, sent = 0, delivered = 0, delivered_in_ttl = 0, opened = 0, clicked = 0, converted = 0;
  std::uint64_t uninstalled = 0, not_interested = 0, complained = 0;  // users who did it (at least once)
  std::uint64_t unreachable = 0;  // pushes sent to users who had uninstalled: no device to reach
  double gmv = 0;
  std::array<std::uint64_t, 24> delivered_by_hour{}, opened_by_hour{};  // by the user's local hour
  // pushes per user per day, summed and squared over users (for its interval)
  double ppud_sum = 0, ppud_sq = 0;
  Counts& operator+=(const Counts& o);
};

struct StrategyResult {
  std::string name;
  Counts all;
  std::array<Counts, kClasses> by_class;
  double seconds = 0;  // wall time of the run
  std::uint64_t lost = 0;   // through MQTT: pushes herald sent that no device got before they expired
  std::uint64_t restarts = 0;
  std::uint64_t redelivered = 0;  // through MQTT: pushes herald handed to the gateway again after the restart
  std::map<std::string, std::uint64_t> suppressed;  // herald's suppressions by rule
};

// Runs every strategy of `o` on the same population and seed. `progress` gets
// the progress line (also written to stderr when o.progress).
Result<std::vector<StrategyResult>> Simulate(const SimOptions& o);

}  // namespace herald::sim
