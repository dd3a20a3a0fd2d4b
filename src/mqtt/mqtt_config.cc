#include "mqtt/mqtt_config.h"

namespace herald::mqtt {

config::Section<MqttConfig> MqttConfigSection() {
  using C = MqttConfig;
  config::Section<C> s("mqtt", "The MQTT 3.1.1 gateway devices connect to.");
  s.Address("listen", &C::listen, false, "MQTT over TCP, HOST:PORT (--mqtt-listen).");
  s.Address("ws_listen", &C::ws_listen, true,
            "MQTT over WebSocket (subprotocol \"mqtt\"), any path; empty disables it (--ws-listen).");
  s.Address("tls_listen", &C::tls_listen, true,
            "MQTT over TLS; empty disables it. Needs tls_cert and tls_key (PEM files).");
  s.String("tls_cert", &C::tls_cert, "");
  s.String("tls_key", &C::tls_key, "");
  s.Bool("open_mode", &C::open_mode,
         "Open mode: anonymous clients and no ACL, a general-purpose broker (--mqtt-open).");
  s.Uint("event_loops", &C::event_loops, 1, 256,
         "Event loops serving MQTT connections. Each connection stays on one loop for its\n"
         "life (its socket, reads, writes, TLS and WebSocket framing); loop 0 also runs the\n"
         "broker, which owns all sessions without locks, and the other loops reach it through\n"
         "a queue each. More loops spread the system calls and framing over more cores.");
  s.Uint("max_packet_bytes", &C::max_packet_bytes, 64, 268435455 + 5,
         "Largest MQTT packet accepted, in bytes.");
  s.Uint("max_inflight", &C::max_inflight, 1, 65535,
         "Unacknowledged QoS 1/2 messages in flight per session.");
  s.Uint("max_queued_messages", &C::max_queued_messages, 1, 100'000'000,
         "Messages queued per persistent session before new ones are dropped (and counted).");
  s.Uint("session_window", &C::session_window, 1, 1'000'000,
         "Queued messages of a connected persistent session kept in memory; the rest, and\n"
         "every message of an offline session, stay on disk and are read in as it drains.");
  s.Uint("flow_high_water", &C::flow_high_water, 1, 100'000'000,
         "QoS 1/2 messages queued for a connected session above which the connections\n"
         "publishing to it stop being read (TCP pushes back on them) until the queue is\n"
         "below half of this: fast publishers slow to the rate the subscriber takes.");
  s.Uint("max_output_bytes", &C::max_output_bytes, 4096, 1ull << 32,
         "Bytes waiting to be written to one connection above which QoS 0 messages to\n"
         "it are dropped (and counted); QoS 1/2 wait in its session's window and queue.");
  s.Uint("max_browser_connections", &C::max_browser_connections, 1, 100'000'000,
         "WebSocket and TLS connections served at once; past it (or past the descriptors\n"
         "kept for MQTT over TCP, server.descriptor_reserve) a new one is closed at once.");
  s.Uint("message_ttl_s", &C::message_ttl_s, 1, 365ull * 86400,
         "Expiry of a queued message when the publisher sets none, in seconds.");
  s.Uint("expiry_scan_s", &C::expiry_scan_s, 1, 86400,
         "Seconds between passes over the store that drop expired messages of offline\n"
         "sessions (reported as expired outcomes); a connected session drops them as it\n"
         "reads them.");
  s.Check([](const C& c) {
    if (!c.tls_listen.empty() && (c.tls_cert.empty() || c.tls_key.empty())) {
      return Status::InvalidArgument("mqtt.tls_listen needs mqtt.tls_cert and mqtt.tls_key");
    }
    if (c.flow_high_water + c.max_inflight >= c.max_queued_messages) {
      // Publishers are held at the high-water mark; the room above it is what keeps an
      // online subscriber's queue from refusing what they were acknowledged for.
      return Status::InvalidArgument(
          "mqtt.flow_high_water + mqtt.max_inflight must be below mqtt.max_queued_messages");
    }
    return Status::Ok();
  });
  return s;
}

}  // namespace herald::mqtt
