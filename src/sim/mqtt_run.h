// The simulation through MQTT: `herald serve` as a child process on the virtual
// clock, reached over HTTP on loopback, and every simulated device a real MQTT
// client with a persistent session (sim/simulator.h).
#pragma once

#include <string>

#include "sim/simulator.h"

namespace herald::sim {

Result<StrategyResult> SimulateThroughMqtt(const SimOptions& o, const Population& pop, const std::string& strategy);

}  // namespace herald::sim
