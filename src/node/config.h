// The configuration of a node: every module's section, put together.
//
// The defaults are the member initialisers of each module's struct; the schema
// (Schema()) describes every key once. `herald config defaults` prints
// RenderDefaults(), and config/herald.toml is that text (a test keeps them equal).
#pragma once

#include <string>
#include <vector>

#include "api/http_config.h"
#include "core/config.h"
#include "engine/engine_config.h"
#include "log/log_config.h"
#include "model/model_config.h"
#include "mqtt/mqtt_config.h"
#include "policy/policy_config.h"
#include "profile/classes.h"
#include "store/store_config.h"
#include "stream/stream_config.h"

namespace herald::node {

// [server]: the process as a whole.
struct ServerConfig {
  std::string data_dir = "./data";
  unsigned shards = 0;
  unsigned partitions = 64;
  std::string log_level = "info";
  bool virtual_clock = false;
  std::string virtual_clock_start = "2026-01-05T00:00:00Z";
  unsigned descriptor_reserve = 1024;
};

struct Config {
  ServerConfig server;
  api::HttpConfig http;
  mqtt::MqttConfig mqtt;
  store::StoreConfig store;
  eventlog::LogConfig log;
  stream::StreamConfig stream;
  eventlog::KafkaConfig kafka;
  policy::PolicyConfig policy;
  model::ModelConfig model;
  profile::ProfileConfig profile;
  engine::EngineConfig engine;
  engine::AdsConfig ads;

  // The defaults.
  static Config Defaults() { return Config{}; }
  // The defaults overlaid with the TOML text. Unknown sections or keys, wrong
  // types, out-of-range values and impossible combinations are InvalidArgument
  // naming the key ("http.threads: ...").
  static Result<Config> FromToml(std::string_view toml_text, std::string_view source_name);
  static Result<Config> FromFile(const std::string& path);

  // Checks the rules across keys (the TLS listener needs a certificate, the
  // virtual clock needs loopback listeners, ...). Run after flags are applied.
  Status Validate() const;
};

const config::Schema<Config>& Schema();
// The documented TOML file of the defaults.
std::string RenderDefaults();

}  // namespace herald::node
