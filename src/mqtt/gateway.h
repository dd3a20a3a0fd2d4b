// Gateway: herald's MQTT 3.1.1 broker on the network — listeners for TCP,
// WebSocket and TLS, one event loop, and the Broker behind them.
//
// Start() recovers persisted sessions and binds every configured listener before
// it returns, so the caller can print the real ports. Deliver() is the engine's
// way to push to a user.
#pragma once

#include <memory>

#include "core/clock.h"
#include "core/config.h"
#include "mqtt/mqtt_config.h"
#include "core/status.h"
#include "mqtt/delivery.h"
#include "mqtt/devices.h"
#include "store/db.h"

namespace herald {
class MetricsRegistry;
}

namespace herald::mqtt {

struct GatewayOptions {
  MqttConfig config;
  store::Db* db = nullptr;                  // required; see GatewayColumnFamilies()
  const DeviceRegistry* devices = nullptr;  // required unless config.open_mode
  EventSink* events = nullptr;              // may be null
  const Clock* clock = nullptr;             // required
  MetricsRegistry* metrics = nullptr;       // required
  // Descriptors the WebSocket and TLS listeners leave free for MQTT over TCP.
  unsigned descriptor_reserve = 0;
};

// Column families the gateway needs in the store.
std::vector<std::string> GatewayColumnFamilies();

class Gateway {
 public:
  static Result<std::unique_ptr<Gateway>> Start(const GatewayOptions& options);
  virtual ~Gateway() = default;

  virtual Endpoint tcp_endpoint() const = 0;
  virtual Endpoint ws_endpoint() const = 0;   // empty when not configured
  virtual Endpoint tls_endpoint() const = 0;  // empty when not configured

  // Pushes `msg` to every session subscribed to "u/<user_id>" in its tenant at
  // QoS 1 and calls `done` once with the outcome, on the gateway's loop. Safe
  // from any thread. ResourceExhausted (and `done` is never called) when 100,000
  // deliveries already wait for the loop: the caller retries later.
  virtual Status Deliver(PushMessage msg, DeliveryCallback done) = 0;
  // Deliver() of every message of `msgs`, with no callback (the outcomes reach
  // the EventSink), handed to the loop at once. ResourceExhausted, and `msgs` is
  // left as it was, when they would not fit among the waiting deliveries.
  virtual Status DeliverBatch(std::vector<PushMessage>& msgs) = 0;

  // Closes the listeners and every connection, then joins the loop. Persisted
  // sessions and messages stay in the store. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace herald::mqtt
