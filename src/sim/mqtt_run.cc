#include "sim/mqtt_run.h"

namespace herald::sim {

Result<StrategyResult> SimulateThroughMqtt(const SimOptions&, const Population&, const std::string&) {
  return Status::Unavailable("--through-mqtt: not built yet");
}

}  // namespace herald::sim
