// herald simulate: a simulated population through herald, and its report
// (sim/simulator.h, docs/simulation.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace herald::app {

struct SimulateFlags {
  std::size_t users = 10000;
  int days = 7;
  std::vector<std::string> strategies;  // comma-separated lists, as given
  std::uint64_t seed = 1;
  std::string report;
  std::string zones;
  bool through_mqtt = false, no_faults = false, quiet = false;
};

// Runs it; prints a summary line per strategy; 0 on success, 2 for bad flags.
int Simulate(const SimulateFlags& flags, const char* argv0);

}  // namespace herald::app
