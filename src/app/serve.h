// `herald serve`: starts a node and runs until SIGINT or SIGTERM.
#pragma once

#include <optional>
#include <string>

#include "node/config.h"

namespace herald::app {

struct ServeFlags {
  std::string config_file;
  std::optional<std::string> data_dir;
  std::optional<std::string> http_listen;
  std::optional<std::string> mqtt_listen;
  std::optional<std::string> ws_listen;
  bool virtual_clock = false;
  bool mqtt_open = false;
  std::optional<std::string> log_level;
  std::optional<std::string> kafka_brokers;
  bool demo = false;  // seed a demo and run it (sim/demo.h)
};

// Builds the effective configuration: the defaults, then the file, then the
// flags. Errors name the setting or flag at fault.
Result<node::Config> LoadConfig(const ServeFlags& flags);

// Serves until a signal arrives. Returns the process exit code: 0 after a clean
// shutdown, 1 when start-up failed (the reason is logged).
int Serve(const node::Config& config, bool demo = false);

}  // namespace herald::app
