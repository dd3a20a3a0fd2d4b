// The gateway: the event loop, the TCP transport and the listeners.
#include "mqtt/gateway.h"

#include "core/descriptors.h"
#include "core/worker_pool.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <thread>

#include "core/log.h"
#include "core/metrics.h"
#include "mqtt/link.h"
#include "mqtt/tcp_poller.h"
#include "mqtt/transports.h"

namespace herald::mqtt {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Result<tcp::endpoint> Resolve(const Endpoint& ep) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(ep.host == "localhost" ? "127.0.0.1" : ep.host, ec);
  if (ec) return Status::InvalidArgument("listen host " + ep.host + " is not an IP address");
  return tcp::endpoint(addr, ep.port);
}

class GatewayImpl final : public Gateway {
 public:
  explicit GatewayImpl(const GatewayOptions& o) : options_(o) {}
  ~GatewayImpl() override {
    Stop();
    // Connections die with the loop's pending handlers; then the broker.
    acceptors_.clear();
    tick_.reset();
    poller_.reset();
    loop_.reset();
    broker_.reset();
  }

  Status Init() {
    loop_ = std::make_unique<Loop>();
    store_reads_ = std::make_unique<WorkerPool>(1, "mqtt-store");
    BrokerOptions bo{options_.config, options_.db,    options_.devices,
                     options_.events, options_.clock, options_.metrics,
                     [l = loop_.get()](std::function<void()> fn) { asio::post(l->ioc, std::move(fn)); },
                     [w = store_reads_.get()](std::function<void()> fn) { w->Post(std::move(fn)); }};
    broker_ = std::make_unique<Broker>(std::move(bo));
    loop_->broker = broker_.get();
    HERALD_RETURN_IF_ERROR(broker_->Recover());
    poller_ = std::make_unique<TcpPoller>(*loop_);
    HERALD_RETURN_IF_ERROR(poller_->Init());

    const MqttConfig& c = options_.config;
    HERALD_RETURN_IF_ERROR(Listen(c.listen, Transport::kTcp, &tcp_));
    if (!c.ws_listen.empty()) HERALD_RETURN_IF_ERROR(Listen(c.ws_listen, Transport::kWebSocket, &ws_));
    if (!c.tls_listen.empty()) {
      auto tls = MakeTlsContext(c.tls_cert, c.tls_key);
      if (!tls.ok()) return tls.status();
      tls_context_ = std::move(*tls);
      HERALD_RETURN_IF_ERROR(Listen(c.tls_listen, Transport::kTls, &tls_));
    }
    tick_ = std::make_unique<asio::steady_timer>(loop_->ioc);
    m_refused_ = &options_.metrics->GetCounter(
        "herald_mqtt_browser_connections_refused_total",
        "WebSocket and TLS connections closed at accept: over mqtt.max_browser_connections, or "
        "into the descriptors kept for MQTT over TCP.");
    ScheduleTick();
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "mqtt-loop");
      loop_->ioc.run();
    });
    return Status::Ok();
  }

  Endpoint tcp_endpoint() const override { return tcp_; }
  Endpoint ws_endpoint() const override { return ws_; }
  Endpoint tls_endpoint() const override { return tls_; }

  Status Deliver(PushMessage msg, DeliveryCallback done) override {
    if (pending_deliveries_.fetch_add(1) >= kMaxPendingDeliveries) {
      pending_deliveries_.fetch_sub(1);
      return Status::ResourceExhausted("the gateway has " + std::to_string(kMaxPendingDeliveries) +
                                       " deliveries waiting for its loop; retry shortly");
    }
    asio::post(loop_->ioc, [this, msg = std::move(msg), done = std::move(done)]() mutable {
      pending_deliveries_.fetch_sub(1);
      broker_->Deliver(std::move(msg), std::move(done));
    });
    return Status::Ok();
  }

  void Stop() override {
    if (stopped_.exchange(true) || !loop_) return;
    asio::post(loop_->ioc, [this] {
      for (auto& a : acceptors_) {
        boost::system::error_code ec;
        a->close(ec);
      }
      if (tick_) tick_->cancel();
    });
    // Give queued writes (CONNACKs, PUBACKs) a moment, then stop the loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    loop_->ioc.stop();
    if (thread_.joinable()) thread_.join();
    if (store_reads_) store_reads_->Stop();  // its answers go to a stopped loop, never run
  }

 private:
  enum class Transport { kTcp, kWebSocket, kTls };

  Status Listen(const Endpoint& ep, Transport kind, Endpoint* bound) {
    auto tep = Resolve(ep);
    if (!tep.ok()) return tep.status();
    auto acc = std::make_unique<tcp::acceptor>(loop_->ioc);
    boost::system::error_code ec;
    acc->open(tep->protocol(), ec);
    if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc->bind(*tep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::IoError("cannot listen for mqtt on " + ep.ToString() + ": " + ec.message());
    auto local = acc->local_endpoint();
    *bound = {local.address().to_string(), local.port()};
    Accept(acc.get(), kind);
    acceptors_.push_back(std::move(acc));
    return Status::Ok();
  }

  void Accept(tcp::acceptor* acc, Transport kind) {
    acc->async_accept([this, acc, kind](boost::system::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acc->is_open()) return;
      if (ec) {
        // Typically out of descriptors: keep the acceptor alive and retry shortly.
        log::Warn("mqtt accept failed", {{"error", ec.message()}});
        auto t = std::make_shared<asio::steady_timer>(loop_->ioc, std::chrono::milliseconds(50));
        t->async_wait([this, acc, kind, t](boost::system::error_code) { Accept(acc, kind); });
        return;
      }
      if (kind != Transport::kTcp &&
          (loop_->browser_links >= options_.config.max_browser_connections ||
           InDescriptorReserve(s.native_handle(), options_.descriptor_reserve, descriptor_limit_))) {
        // A browser connection past its cap, or into the descriptors kept for devices.
        m_refused_->Inc();
        boost::system::error_code cec;
        s.close(cec);
        Accept(acc, kind);
        return;
      }
      switch (kind) {
        case Transport::kTcp: poller_->Adopt(s.release()); break;
        case Transport::kWebSocket: StartWebSocketLink(*loop_, std::move(s)); break;
        case Transport::kTls: StartTlsLink(*loop_, *tls_context_, std::move(s)); break;
      }
      Accept(acc, kind);
    });
  }

  void ScheduleTick() {
    tick_->expires_after(std::chrono::milliseconds(250));
    tick_->async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      broker_->Tick();
      ScheduleTick();
    });
  }

  GatewayOptions options_;
  std::unique_ptr<Loop> loop_;
  std::unique_ptr<Broker> broker_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::unique_ptr<asio::steady_timer> tick_;
  long descriptor_limit_ = DescriptorLimit();
  std::unique_ptr<WorkerPool> store_reads_;  // reads of queues on disk, off the loop
  static constexpr int kMaxPendingDeliveries = 100000;
  std::atomic<int> pending_deliveries_{0};
  Counter* m_refused_ = nullptr;
  std::unique_ptr<TcpPoller> poller_;
  std::shared_ptr<TlsContext> tls_context_;
  Endpoint tcp_, ws_, tls_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

std::vector<std::string> GatewayColumnFamilies() {
  return {kSessionsFamily, kMessagesFamily, kRetainedFamily, kDevicesFamily};
}

Result<std::unique_ptr<Gateway>> Gateway::Start(const GatewayOptions& options) {
  if (!options.db || !options.clock || !options.metrics ||
      (!options.config.open_mode && !options.devices)) {
    return Status::InvalidArgument("gateway needs a store, a clock, metrics and a device registry");
  }
  auto gw = std::make_unique<GatewayImpl>(options);
  HERALD_RETURN_IF_ERROR(gw->Init());
  return std::unique_ptr<Gateway>(std::move(gw));
}

}  // namespace herald::mqtt
