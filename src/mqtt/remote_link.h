// Connections served by a loop other than the broker's. Private to the mqtt module.
//
// With mqtt.event_loops = N, the broker and its state live on loop 0, and every
// loop (loop 0 too) owns a share of the connections: their sockets, reads,
// writes and the TLS and WebSocket framing. A connection stays on its loop for
// its life. For one on loop k > 0 the broker sees a ProxyLink: bytes read on
// loop k reach it through a queue to loop 0 (RemoteHandler), and what the broker
// writes goes back in one batch per loop per turn (ProxyHub), so system calls,
// TLS and framing run on every core while the broker takes no locks.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mqtt/broker.h"
#include "mqtt/link.h"

namespace herald::mqtt {

class ProxyHub;

// The broker's view of a connection on another loop. Lives on the broker's loop.
class ProxyLink final : public Link, public std::enable_shared_from_this<ProxyLink> {
 public:
  ProxyLink(ProxyHub& hub, Loop& io, std::weak_ptr<LinkBase> transport, std::string remote)
      : hub_(hub), io_(io), transport_(std::move(transport)), remote_(std::move(remote)) {}

  void Flush() override;
  void Close() override;
  std::string Remote() const override { return remote_; }
  void PauseInput() override;
  void ResumeInput() override;
  size_t pending_output() const override {
    return out.size() + backlog->posted.load() + backlog->unwritten.load();
  }

  // From the connection's loop, in order: bytes read, then its end.
  void Input(std::string bytes);
  void TransportClosed();

  Loop& io() { return io_; }
  const std::weak_ptr<LinkBase>& transport() const { return transport_; }
  std::shared_ptr<OutputBacklog> backlog = std::make_shared<OutputBacklog>();
  bool dirty = false;
  bool close_after_flush = false;

 private:
  void Consume();

  ProxyHub& hub_;
  Loop& io_;
  std::weak_ptr<LinkBase> transport_;
  std::string remote_;
  std::string in_;  // bytes not yet taken by the broker (a partial packet, or paused)
  bool closing_ = false;
  bool closed_ = false;
};

// Sends the proxies' output to their loops, one task per loop per turn. Lives on
// the broker's loop.
class ProxyHub {
 public:
  ProxyHub(Loop& broker_loop, Broker& broker) : loop_(broker_loop), broker_(broker) {}
  Broker& broker() { return broker_; }
  Loop& loop() { return loop_; }
  void MarkDirty(std::shared_ptr<ProxyLink> p);

 private:
  void FlushAll();

  Loop& loop_;
  Broker& broker_;
  std::vector<std::shared_ptr<ProxyLink>> dirty_;
  bool posted_ = false;
};

// What the transports of an I/O-only loop report to: it forwards everything to
// the broker's loop. Lives on its I/O loop.
class RemoteHandler final : public LinkHandler {
 public:
  RemoteHandler(Loop& io, ProxyHub& hub) : io_(io), hub_(hub) {}
  void OnOpen(Link* link) override;
  size_t OnInput(Link* link, std::string_view input) override;
  void OnClosed(Link* link) override;

 private:
  Loop& io_;
  ProxyHub& hub_;
  std::unordered_map<Link*, std::shared_ptr<ProxyLink>> proxies_;
};

}  // namespace herald::mqtt
