// The listener skeleton of the gateway: binds the MQTT, WebSocket and TLS
// addresses and accepts connections. Until the broker is attached, a connection is
// closed as soon as it is accepted (the client sees the server refuse service).
#include "mqtt/gateway.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "core/log.h"
#include "core/metrics.h"

namespace herald::mqtt {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class Acceptor {
 public:
  Acceptor(asio::io_context& ioc, std::string kind, Counter* refused)
      : acceptor_(ioc), kind_(std::move(kind)), refused_(refused) {}

  Status Listen(const Endpoint& ep) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(ep.host == "localhost" ? "127.0.0.1" : ep.host, ec);
    if (ec) return Status::InvalidArgument("mqtt " + kind_ + " listen host " + ep.host + " is not an IP address");
    tcp::endpoint tep(addr, ep.port);
    acceptor_.open(tep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(tep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::IoError("cannot listen for mqtt " + kind_ + " on " + ep.ToString() + ": " + ec.message());
    auto local = acceptor_.local_endpoint();
    local_ = {local.address().to_string(), local.port()};
    Accept();
    return Status::Ok();
  }

  Endpoint local() const { return local_; }
  void Close() {
    boost::system::error_code ec;
    acceptor_.close(ec);
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (!ec) {
        refused_->Inc();
        s.close(ec);
      }
      Accept();
    });
  }

  tcp::acceptor acceptor_;
  std::string kind_;
  Counter* refused_;
  Endpoint local_;
};

class ListenerGateway final : public Gateway {
 public:
  explicit ListenerGateway(const GatewayOptions& o) : options_(o) {}
  ~ListenerGateway() override { Stop(); }

  Status Listen() {
    static MetricsRegistry fallback;
    MetricsRegistry& m = options_.metrics ? *options_.metrics : fallback;
    Counter* refused = &m.GetCounter("herald_mqtt_connections_refused_total",
                                     "MQTT connections closed because no broker is attached.");
    tcp_ = std::make_unique<Acceptor>(ioc_, "tcp", refused);
    HERALD_RETURN_IF_ERROR(tcp_->Listen(options_.config.listen));
    if (!options_.config.ws_listen.empty()) {
      ws_ = std::make_unique<Acceptor>(ioc_, "ws", refused);
      HERALD_RETURN_IF_ERROR(ws_->Listen(options_.config.ws_listen));
    }
    if (!options_.config.tls_listen.empty()) {
      tls_ = std::make_unique<Acceptor>(ioc_, "tls", refused);
      HERALD_RETURN_IF_ERROR(tls_->Listen(options_.config.tls_listen));
    }
    thread_ = std::thread([this] { ioc_.run(); });
    return Status::Ok();
  }

  Endpoint tcp_endpoint() const override { return tcp_ ? tcp_->local() : Endpoint{}; }
  Endpoint ws_endpoint() const override { return ws_ ? ws_->local() : Endpoint{}; }
  Endpoint tls_endpoint() const override { return tls_ ? tls_->local() : Endpoint{}; }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  GatewayOptions options_;
  asio::io_context ioc_{1};
  std::unique_ptr<Acceptor> tcp_, ws_, tls_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

Result<std::unique_ptr<Gateway>> Gateway::Start(const GatewayOptions& options) {
  auto gw = std::make_unique<ListenerGateway>(options);
  HERALD_RETURN_IF_ERROR(gw->Listen());
  return std::unique_ptr<Gateway>(std::move(gw));
}

}  // namespace herald::mqtt
