// The WebSocket and TLS transports (each in its own file, to keep Beast and
// OpenSSL headers out of the rest of the module).
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>

#include "core/status.h"
#include "mqtt/link.h"

namespace herald::mqtt {

// MQTT over WebSocket: any path, binary frames, subprotocol "mqtt" echoed when
// the client offers it. Takes ownership of `sock`.
void StartWebSocketLink(Loop& loop, boost::asio::ip::tcp::socket sock);

struct TlsContext;
// Loads a PEM certificate chain and private key.
Result<std::shared_ptr<TlsContext>> MakeTlsContext(const std::string& cert_file,
                                                   const std::string& key_file);
// MQTT over TLS. Takes ownership of `sock`.
void StartTlsLink(Loop& loop, TlsContext& ctx, boost::asio::ip::tcp::socket sock);

}  // namespace herald::mqtt
