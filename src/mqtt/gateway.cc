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
#include "mqtt/remote_link.h"
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

// One event loop and the connections it serves. Loop 0 also runs the broker;
// the others hand their connections' bytes to it (remote_link.h).
struct LoopUnit {
  std::unique_ptr<Loop> loop = std::make_unique<Loop>();
  std::unique_ptr<TcpPoller> poller;
  std::unique_ptr<RemoteHandler> remote;  // loops other than 0
  std::thread thread;
};

class GatewayImpl final : public Gateway {
 public:
  explicit GatewayImpl(const GatewayOptions& o) : options_(o) {}
  ~GatewayImpl() override {
    Stop();
    // Connections die with the loops' pending handlers; then the broker.
    acceptors_.clear();
    tick_.reset();
    for (auto& u : units_) {
      u->poller.reset();
      u->remote.reset();
    }
    hub_.reset();
    units_.clear();
    broker_.reset();
  }

  Status Init() {
    const MqttConfig& c = options_.config;
    unsigned n = std::max(1u, c.event_loops);
    for (unsigned i = 0; i < n; ++i) units_.push_back(std::make_unique<LoopUnit>());
    Loop& main = *units_[0]->loop;
    for (auto& u : units_) u->loop->browser_links = main.browser_links;  // one cap for all
    store_reads_ = std::make_unique<WorkerPool>(1, "mqtt-store");
    BrokerOptions bo{options_.config, options_.db,    options_.devices,
                     options_.events, options_.clock, options_.metrics,
                     [l = &main](std::function<void()> fn) { asio::post(l->ioc, std::move(fn)); },
                     [w = store_reads_.get()](std::function<void()> fn) { w->Post(std::move(fn)); }};
    broker_ = std::make_unique<Broker>(std::move(bo));
    main.handler = broker_.get();
    HERALD_RETURN_IF_ERROR(broker_->Recover());
    if (n > 1) hub_ = std::make_unique<ProxyHub>(main, *broker_);
    for (unsigned i = 0; i < n; ++i) {
      LoopUnit& u = *units_[i];
      if (i > 0) {
        u.remote = std::make_unique<RemoteHandler>(*u.loop, *hub_);
        u.loop->handler = u.remote.get();
      }
      u.poller = std::make_unique<TcpPoller>(*u.loop);
      HERALD_RETURN_IF_ERROR(u.poller->Init());
    }
    HERALD_RETURN_IF_ERROR(Listen(c.listen, Transport::kTcp, &tcp_));
    if (!c.ws_listen.empty()) HERALD_RETURN_IF_ERROR(Listen(c.ws_listen, Transport::kWebSocket, &ws_));
    if (!c.tls_listen.empty()) {
      auto tls = MakeTlsContext(c.tls_cert, c.tls_key);
      if (!tls.ok()) return tls.status();
      tls_context_ = std::move(*tls);
      HERALD_RETURN_IF_ERROR(Listen(c.tls_listen, Transport::kTls, &tls_));
    }
    tick_ = std::make_unique<asio::steady_timer>(main.ioc);
    m_refused_ = &options_.metrics->GetCounter(
        "herald_mqtt_browser_connections_refused_total",
        "WebSocket and TLS connections closed at accept: over mqtt.max_browser_connections, or "
        "into the descriptors kept for MQTT over TCP.");
    options_.metrics->GetGauge("herald_mqtt_event_loops", "Event loops serving MQTT connections.")
        .Set(static_cast<std::int64_t>(n));
    ScheduleTick();
    for (unsigned i = 0; i < n; ++i) {
      Loop* l = units_[i]->loop.get();
      units_[i]->thread = std::thread([l, i] {
        std::string name = "mqtt-loop-" + std::to_string(i);
        pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
        l->ioc.run();
      });
    }
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
    asio::post(units_[0]->loop->ioc, [this, msg = std::move(msg), done = std::move(done)]() mutable {
      pending_deliveries_.fetch_sub(1);
      broker_->Deliver(std::move(msg), std::move(done));
    });
    return Status::Ok();
  }

  Status DeliverBatch(std::vector<PushMessage>& msgs) override {
    const int n = static_cast<int>(msgs.size());
    if (n == 0) return Status::Ok();
    // Refused past the bound, except into an empty queue (a batch larger than the
    // bound still goes, alone).
    const int before = pending_deliveries_.fetch_add(n);
    if (before > 0 && before + n > kMaxPendingDeliveries) {
      pending_deliveries_.fetch_sub(n);
      return Status::ResourceExhausted("the gateway has too many deliveries waiting for its loop; retry shortly");
    }
    asio::post(units_[0]->loop->ioc, [this, batch = std::move(msgs), n]() mutable {
      pending_deliveries_.fetch_sub(n);
      for (auto& m : batch) broker_->Deliver(std::move(m), [](DeliveryOutcome) {});
    });
    msgs.clear();
    return Status::Ok();
  }

  void Stop() override {
    if (stopped_.exchange(true) || units_.empty()) return;
    asio::post(units_[0]->loop->ioc, [this] {
      for (auto& a : acceptors_) {
        boost::system::error_code ec;
        a->close(ec);
      }
      if (tick_) tick_->cancel();
    });
    // Give queued writes (CONNACKs, PUBACKs) a moment, then stop the loops.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (auto& u : units_) u->loop->ioc.stop();
    for (auto& u : units_) {
      if (u->thread.joinable()) u->thread.join();
    }
    if (store_reads_) store_reads_->Stop();  // its answers go to a stopped loop, never run
  }

 private:
  enum class Transport { kTcp, kWebSocket, kTls };

  Status Listen(const Endpoint& ep, Transport kind, Endpoint* bound) {
    auto tep = Resolve(ep);
    if (!tep.ok()) return tep.status();
    auto acc = std::make_unique<tcp::acceptor>(units_[0]->loop->ioc);
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

  // Each accepted connection goes to the next loop in turn, for its whole life.
  void Accept(tcp::acceptor* acc, Transport kind) {
    unsigned k = next_loop_++ % static_cast<unsigned>(units_.size());
    LoopUnit& u = *units_[k];
    acc->async_accept(u.loop->ioc, [this, acc, kind, &u](boost::system::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acc->is_open()) return;
      if (ec) {
        // Typically out of descriptors: keep the acceptor alive and retry shortly.
        log::Warn("mqtt accept failed", {{"error", ec.message()}});
        auto t = std::make_shared<asio::steady_timer>(units_[0]->loop->ioc, std::chrono::milliseconds(50));
        t->async_wait([this, acc, kind, t](boost::system::error_code) { Accept(acc, kind); });
        return;
      }
      if (kind != Transport::kTcp &&
          (*u.loop->browser_links >= options_.config.max_browser_connections ||
           InDescriptorReserve(s.native_handle(), options_.descriptor_reserve, descriptor_limit_))) {
        // A browser connection past its cap, or into the descriptors kept for devices.
        m_refused_->Inc();
        boost::system::error_code cec;
        s.close(cec);
        Accept(acc, kind);
        return;
      }
      // Start the connection on its loop's own thread.
      asio::post(u.loop->ioc, [this, kind, &u, s = std::move(s)]() mutable {
        switch (kind) {
          case Transport::kTcp: u.poller->Adopt(s.release()); break;
          case Transport::kWebSocket: StartWebSocketLink(*u.loop, std::move(s)); break;
          case Transport::kTls: StartTlsLink(*u.loop, *tls_context_, std::move(s)); break;
        }
      });
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
  std::vector<std::unique_ptr<LoopUnit>> units_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<ProxyHub> hub_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::unique_ptr<asio::steady_timer> tick_;
  long descriptor_limit_ = DescriptorLimit();
  std::unique_ptr<WorkerPool> store_reads_;  // reads of queues on disk, off the loops
  static constexpr int kMaxPendingDeliveries = 100000;
  std::atomic<int> pending_deliveries_{0};
  unsigned next_loop_ = 0;  // on loop 0 (the acceptors' loop)
  Counter* m_refused_ = nullptr;
  std::shared_ptr<TlsContext> tls_context_;
  Endpoint tcp_, ws_, tls_;
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
