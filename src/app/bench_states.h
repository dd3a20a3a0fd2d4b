// `herald bench states`: what a registered partition state costs per event. The
// whole log is replayed with the built-in states alone and with K idle states
// added; the difference per state per event is the pipeline's own overhead.
#pragma once

#include <string>
#include <vector>

namespace herald::app {

int BenchStates(const std::vector<std::string>& args);

}  // namespace herald::app
