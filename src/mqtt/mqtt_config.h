// The MQTT gateway's settings: [mqtt].
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

namespace herald::mqtt {

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
  std::uint64_t session_window = 256;
  std::uint64_t flow_high_water = 1000;
  std::uint64_t max_output_bytes = 4 << 20;
  std::uint64_t max_browser_connections = 65536;
  std::uint64_t message_ttl_s = 7 * 24 * 3600;
  std::uint64_t expiry_scan_s = 300;
};

config::Section<MqttConfig> MqttConfigSection();

}  // namespace herald::mqtt
