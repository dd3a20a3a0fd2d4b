// One MQTT 3.1.1 client connection of the load generator: a non-blocking TCP socket
// registered edge-triggered with its worker's epoll, a read path that decodes with
// herald's codec, and a write buffer that the worker flushes once per wakeup.
//
// The connection speaks the protocol by itself: it sends CONNECT, checks CONNACK,
// answers QoS 1/2 deliveries (PUBACK, PUBREC/PUBCOMP), completes its own QoS 1/2
// publishes (PUBACK, PUBREC -> PUBREL -> PUBCOMP) within a window of packet ids, and
// sends PINGREQ when asked. What the messages mean is left to a ConnectionSink.
//
// Lives on one worker thread; nothing in it is thread-safe.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mqtt/packet.h"

namespace herald::bench {

class Connection;

// What a connection reports to its owner. Called from Connection::OnEvents on the
// worker thread; a callback may Close() the connection, which ends the read loop.
class ConnectionSink {
 public:
  virtual ~ConnectionSink() = default;
  virtual void OnConnack(Connection& c, int64_t now_ns) = 0;  // accepted
  virtual void OnSuback(Connection& c, const mqtt::Suback& s, int64_t now_ns) = 0;
  // A delivery; `p` views the read buffer and is valid only during the call. The
  // acknowledgement is queued after the call returns.
  virtual void OnMessage(Connection& c, const mqtt::Publish& p, int64_t now_ns) = 0;
  // One of this connection's own QoS 1/2 publishes finished its handshake.
  virtual void OnPublishDone(Connection& c) = 0;
  // The connection is closed; it will not call again. `reason` says why.
  virtual void OnClosed(Connection& c, std::string_view reason) = 0;
  // The connection has bytes to write: flush it at the end of this wakeup.
  virtual void MarkDirty(Connection& c) = 0;
};

class Connection {
 public:
  enum class State : uint8_t { kIdle, kConnecting, kAwaitConnack, kOpen, kClosed };

  // `index` is the owner's handle for this connection, stored in the epoll data.
  Connection(uint32_t index, ConnectionSink* sink) : index_(index), sink_(sink) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts a non-blocking connect to `server` (from `source` when its address is
  // not INADDR_ANY), registers with `epoll_fd` and queues `connect`. On failure the
  // connection is closed through OnClosed and false is returned.
  bool Start(int epoll_fd, const sockaddr_in& server, const sockaddr_in& source,
             const mqtt::Connect& connect, int64_t now_ns);

  // Handles epoll readiness. `scratch` is the worker's large read buffer.
  void OnEvents(uint32_t events, std::string* scratch, int64_t now_ns);

  // Writes the buffered bytes until done or the socket is full. Call once per
  // wakeup for each connection that MarkDirty named.
  void Flush(int64_t now_ns);

  // Queue packets; they go out at the next Flush.
  void Subscribe(std::string filter, mqtt::QoS qos);
  void Ping();
  void Disconnect();
  // Queues a PUBLISH; for QoS 1/2 takes a free packet id. Requires CanPublish().
  void Publish(std::string_view topic, std::string_view payload, mqtt::QoS qos);

  // True when another publish fits in the in-flight `window` and the write buffer
  // is below `max_buffered` bytes (so TCP back-pressure reaches the publisher).
  bool CanPublish(uint32_t window, size_t max_buffered) const;
  // True when the socket accepted everything so far (no EAGAIN outstanding).
  bool writable() const { return writable_; }

  void Close(std::string_view reason);

  uint32_t index() const { return index_; }
  State state() const { return state_; }
  uint32_t inflight() const { return inflight_; }
  size_t buffered() const { return out_.size() - out_offset_; }
  int64_t last_send_ns() const { return last_send_ns_; }

 private:
  void ReadAll(std::string* scratch, bool hangup, int64_t now_ns);
  // Decodes every complete packet in `input`; returns the bytes used, or
  // std::string::npos after the connection was closed.
  size_t DecodeAll(std::string_view input, int64_t now_ns);
  void HandlePacket(mqtt::Packet& packet, int64_t now_ns);
  void HandleDelivery(const mqtt::Publish& p, int64_t now_ns);
  void CompletePublish(uint16_t packet_id, uint8_t expected_state, std::string_view what);
  void OnConnected(int64_t now_ns);
  void Queued();

  // Packet id states for our own QoS 1/2 publishes (id_state_).
  static constexpr uint8_t kIdFree = 0, kAwaitPuback = 1, kAwaitPubrec = 2, kAwaitPubcomp = 3;

  uint32_t index_;
  ConnectionSink* sink_;
  int fd_ = -1;
  State state_ = State::kIdle;
  bool writable_ = false;
  bool dirty_ = false;
  std::string in_;   // an incomplete packet carried over between reads
  std::string out_;  // bytes not yet written, from out_offset_
  size_t out_offset_ = 0;
  int64_t last_send_ns_ = 0;
  uint16_t next_id_ = 1;
  uint32_t inflight_ = 0;
  std::vector<uint8_t> id_state_;  // 65536 entries once this connection publishes QoS>0
};

}  // namespace herald::bench
