// Config: every setting of herald, with its default.
//
// The defaults live in config/herald.toml, which is compiled into the binary
// (EmbeddedDefaultConfig()) and documented key by key in docs/configuration.md.
// A Config is immutable once built; components take the sections they need by
// const reference at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace herald {

// "host:port" or "[v6]:port". Port 0 asks the OS for a free port.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;

  std::string ToString() const;
  bool empty() const { return host.empty(); }
  // True for 127.0.0.0/8, ::1 and "localhost".
  bool IsLoopback() const;
};
Result<Endpoint> ParseEndpoint(std::string_view text);

enum class SyncMode { kProcess, kFsync };

struct ServerConfig {
  std::string data_dir = "./data";
  unsigned shards = 0;
  unsigned partitions = 64;
  std::string log_level = "info";
  bool virtual_clock = false;
  std::string virtual_clock_start = "2026-01-05T00:00:00Z";
};

struct HttpConfig {
  Endpoint listen{"127.0.0.1", 8080};
  unsigned threads = 1;
  std::uint64_t max_body_bytes = 16 << 20;
  std::uint64_t max_header_bytes = 16 << 10;
  unsigned idle_timeout_s = 60;
};

struct MqttConfig {
  Endpoint listen{"127.0.0.1", 1883};
  Endpoint ws_listen{"127.0.0.1", 8083};
  Endpoint tls_listen;  // empty: no TLS listener
  std::string tls_cert;
  std::string tls_key;
  bool open_mode = false;
  unsigned event_loops = 1;
  std::uint64_t max_packet_bytes = 1 << 20;
  unsigned max_inflight = 64;
  std::uint64_t max_queued_messages = 10000;
  std::uint64_t message_ttl_s = 7 * 24 * 3600;
};

struct StoreConfig {
  SyncMode sync = SyncMode::kProcess;
  std::uint64_t block_cache_mb = 256;
  std::uint64_t write_buffer_mb = 64;
  unsigned max_batch_ops = 4096;
};

struct EventsConfig {
  SyncMode log_sync = SyncMode::kProcess;
  std::uint64_t segment_mb = 64;
  std::uint64_t retention_mb = 1024;
  std::uint64_t retention_hours = 168;
  std::uint64_t allowed_lateness_s = 600;
  std::uint64_t max_batch_events = 100000;
  std::uint64_t checkpoint_interval_ms = 10000;
  std::string kafka_brokers;
  std::string kafka_topic = "herald.events";
  std::string kafka_group = "herald";
  std::string kafka_outcomes_topic = "herald.outcomes";
  std::uint64_t kafka_session_timeout_ms = 10000;
};

struct PolicyConfig {
  unsigned new_follower_days = 3;
  unsigned new_follower_max_messages = 5;
  unsigned established_after_days = 7;
  unsigned established_max_per_day = 1;
  unsigned silence_after_unopened = 3;
  unsigned silence_hours = 48;
  unsigned downgrade_after_unopened = 5;
  unsigned downgrade_max_per_week = 2;
  unsigned service_max_per_month = 4;
  double not_interested_weight = 0.5;
  double not_interested_throttle_rate = 0.05;
};

struct AdsConfig {
  double complaint_factor = 0.85;
  double acceleration_min = 3.0;
  double acceleration_max = 5.0;
};

struct PrivacyConfig {
  unsigned geo_cell_m = 500;
};

struct TimingConfig {
  std::vector<double> cold_start_open_rate;  // 24 entries, by local hour
  std::vector<std::string> golden_windows;   // "HH:MM-HH:MM"
};

struct Config {
  ServerConfig server;
  HttpConfig http;
  MqttConfig mqtt;
  StoreConfig store;
  EventsConfig events;
  PolicyConfig policy;
  AdsConfig ads;
  PrivacyConfig privacy;
  TimingConfig timing;

  // The embedded defaults (config/herald.toml).
  static Config Defaults();
  // Defaults overlaid with the TOML text. Unknown sections or keys, wrong types and
  // out-of-range values are InvalidArgument naming the key ("http.threads: ...").
  static Result<Config> FromToml(std::string_view toml_text, std::string_view source_name);
  static Result<Config> FromFile(const std::string& path);

  // Checks cross-field rules (e.g. TLS listener needs a certificate, the virtual
  // clock needs loopback listeners). Run after flags are applied.
  Status Validate() const;
};

// The text of config/herald.toml as compiled into the binary.
std::string_view EmbeddedDefaultConfig();

}  // namespace herald
