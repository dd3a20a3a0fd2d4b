// Gateway: the MQTT listeners devices connect to (TCP, WebSocket, TLS).
//
// Owns its Asio event loops. Start() binds every configured listener before it
// returns, so the caller can print the real ports.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/status.h"

namespace herald {
class MetricsRegistry;
}

namespace herald::mqtt {

struct GatewayOptions {
  MqttConfig config;
  MetricsRegistry* metrics = nullptr;  // may be null
};

class Gateway {
 public:
  static Result<std::unique_ptr<Gateway>> Start(const GatewayOptions& options);
  virtual ~Gateway() = default;

  virtual Endpoint tcp_endpoint() const = 0;
  virtual Endpoint ws_endpoint() const = 0;   // empty when not configured
  virtual Endpoint tls_endpoint() const = 0;  // empty when not configured

  // Closes the listeners and every connection, then joins the loops. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace herald::mqtt
