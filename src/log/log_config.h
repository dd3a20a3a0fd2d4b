// The event log's settings ([log]) and Kafka's ([kafka], cluster mode).
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

namespace herald::eventlog {

struct LogConfig {
  SyncMode sync = SyncMode::kProcess;
  std::uint64_t segment_mb = 64;
  std::uint64_t retention_mb = 1024;
  std::uint64_t retention_hours = 168;
  std::uint64_t retention_check_s = 60;
};

struct KafkaConfig {
  std::string brokers;  // empty: Kafka is off
  std::string topic = "herald.events";
  std::string group = "herald";
  std::string outcomes_topic = "herald.outcomes";
  std::uint64_t session_timeout_ms = 10000;
};

config::Section<LogConfig> LogConfigSection();
config::Section<KafkaConfig> KafkaConfigSection();

}  // namespace herald::eventlog
