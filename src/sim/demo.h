// The demo of `herald serve --demo`: a running node seeded with a tenant's
// accounts, simulated users and their devices, each device a real MQTT client
// connected to the node's gateway, and campaigns every few seconds, so that a
// newcomer sees pushes flowing within a minute.
//
// Every `interval` seconds one of the accounts posts to its followers (now), the
// devices acknowledge what they get and open some of it as the behaviour model
// of sim/population.h says, and a few new users join with their devices. Every
// `report` seconds a line goes to stdout: pushes sent, delivered and opened so
// far, and herald's suppressions by rule; /metrics has the same counters.
#pragma once

#include <atomic>
#include <cstddef>

#include "core/status.h"

namespace herald::node {
class Node;
}

namespace herald::sim {

struct DemoOptions {
  size_t devices = 2000;
  int interval_s = 5;  // between two campaigns
  int report_s = 5;    // between two lines on stdout
  std::uint64_t seed = 1;
};

// Runs until `stop` is set; returns an error when the demo could not be seeded.
Status RunDemo(node::Node& node, const DemoOptions& o, const std::atomic<bool>& stop);

}  // namespace herald::sim
