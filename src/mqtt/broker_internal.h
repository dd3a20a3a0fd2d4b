// Private state of the Broker, shared by its .cc files. Not part of the module's
// public interface.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

#include "mqtt/broker.h"

namespace herald::mqtt {

using SteadyTime = std::chrono::steady_clock::time_point;

// A FIFO on a vector: unlike std::deque it allocates nothing while empty, which
// matters with a million mostly idle sessions.
template <typename T>
class Fifo {
 public:
  bool empty() const { return head_ == v_.size(); }
  size_t size() const { return v_.size() - head_; }
  T& front() { return v_[head_]; }
  const T& front() const { return v_[head_]; }
  void push_back(T t) { v_.push_back(std::move(t)); }
  void pop_front() {
    v_[head_++] = T();
    if (head_ == v_.size()) {
      v_.clear();
      head_ = 0;
      if (v_.capacity() > 1024) std::vector<T>().swap(v_);
    } else if (head_ > 64 && head_ * 2 > v_.size()) {
      v_.erase(v_.begin(), v_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  typename std::vector<T>::iterator begin() { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
  typename std::vector<T>::iterator end() { return v_.end(); }
  typename std::vector<T>::const_iterator begin() const {
    return v_.begin() + static_cast<std::ptrdiff_t>(head_);
  }
  typename std::vector<T>::const_iterator end() const { return v_.end(); }
  // Removes every element for which pred(element) is true, keeping order.
  template <typename Pred>
  void RemoveIf(Pred pred) {
    auto first = begin();
    auto kept = std::remove_if(first, v_.end(), pred);
    v_.erase(kept, v_.end());
    if (head_ == v_.size()) {
      v_.clear();
      head_ = 0;
    }
  }

 private:
  std::vector<T> v_;
  size_t head_ = 0;
};

// A Deliver() call waiting for its outcome. Each session copy holds a reference;
// the outcome is reported once.
struct DeliveryTracker {
  std::string tenant, user_id, message_id;
  DeliveryCallback done;
  SteadyTime started;
  bool resolved = false;
  int pending = 0;  // session copies neither acknowledged nor dropped
  int online = 0;   // copies handed to a connected session

  void Resolve(DeliveryOutcome o) {
    if (resolved) return;
    resolved = true;
    if (done) done(o);
    done = nullptr;
  }
};

// A PUBACK/PUBREC owed to a publisher. Acknowledgements leave in the order the
// PUBLISHes arrived (MQTT-4.6.0-2), so one waiting for a store commit holds back
// the ones behind it.
struct PendingAck {
  std::uint16_t packet_id;
  bool qos2;
  bool ready;
};

// Per-connection state, from accept to close.
struct ConnState {
  std::uint64_t id = 0;
  Link* link = nullptr;
  bool connected = false;  // CONNACK 0 sent
  bool graceful = false;   // DISCONNECT received, or taken over: no will
  SessionId session = 0;
  std::string mount;  // "" in open mode, "<tenant>/" for a device
  std::optional<DeviceIdentity> identity;
  std::optional<Will> will;
  std::uint16_t keep_alive = 0;
  SteadyTime opened, last_packet;
  Fifo<PendingAck> acks;
};

struct Broker::Outgoing {
  MessagePtr msg;
  std::uint8_t qos = 0;
  std::uint16_t packet_id = 0;
  bool pubrec = false;    // QoS 2: PUBREC received, PUBREL sent
  std::uint64_t seq = 0;  // store sequence when persisted, else 0
};

struct Broker::Session {
  SessionId id = 0;
  std::string key;  // mount + client id
  std::string client_id;
  std::string mount;
  bool clean = true;
  std::string tenant, user_id, device_id;  // empty in open mode
  Link* link = nullptr;                    // null while offline
  std::map<std::string, std::uint8_t> subs;  // internal filter -> granted QoS
  std::vector<Outgoing> inflight;  // sent, not yet acknowledged (at most max_inflight)
  Fifo<Outgoing> queue;            // waiting for a slot in the window
  std::unordered_set<std::uint16_t> awaiting_rel;  // inbound QoS 2 ids
  std::uint16_t next_packet_id = 1;
};

}  // namespace herald::mqtt
