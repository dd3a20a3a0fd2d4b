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
  T& back() { return v_.back(); }
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
  std::string tenant, user_id, message_id, account_id, campaign_id;
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
  enum Kind : std::uint8_t { kPuback, kPubrec, kPubcomp };
  std::uint16_t packet_id;
  Kind kind;
  bool ready;
};

inline const std::string kNoMount;

// Who a device is, shared by its connection and its session. Absent in open mode.
struct Principal {
  std::string tenant, user_id, device_id;
  std::string mount;  // "<tenant>/": the tenant's topic namespace
};
using PrincipalPtr = std::shared_ptr<const Principal>;

// Why a connection's input is paused (ConnState::paused is a set of these).
inline constexpr std::uint8_t kPauseSink = 1;   // the event sink is above its high-water mark
inline constexpr std::uint8_t kPauseFlow = 2;   // a subscriber it feeds is backed up
inline constexpr std::uint8_t kPauseStore = 4;  // an acknowledgement waits for a commit
inline constexpr std::uint8_t kPauseOutput = 8; // its answers are not being read (past max_output_bytes)

// Per-connection state, from accept to close. Kept small: a node may hold a
// million idle connections.
struct ConnState {
  std::uint64_t id = 0;
  Link* link = nullptr;
  SessionId session = 0;
  PrincipalPtr principal;      // null in open mode
  std::unique_ptr<Will> will;  // null when none
  SteadyTime last_packet;
  Fifo<PendingAck> acks;
  std::uint16_t keep_alive = 0;
  std::uint32_t flow_blocks = 0;  // backed-up subscribers this publisher feeds
  std::uint8_t paused = 0;        // kPause* reasons holding its input
  bool connected = false;  // CONNACK 0 sent
  bool graceful = false;   // DISCONNECT received, or taken over: no will

  const std::string& mount() const { return principal ? principal->mount : kNoMount; }
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
  PrincipalPtr principal;  // null in open mode
  Link* link = nullptr;    // null while offline
  std::vector<std::pair<std::string, std::uint8_t>> subs;  // internal filter, granted QoS
  std::vector<Outgoing> inflight;  // sent, not yet acknowledged (at most max_inflight)
  Fifo<Outgoing> queue;            // waiting for a slot in the window
  std::vector<std::uint16_t> awaiting_rel;  // inbound QoS 2 ids, until PUBREL
  std::vector<std::uint64_t> blocked;       // publishers paused by this session's queue
  // The tail of a persistent session's queue that is on disk only: messages with
  // seq >= spill_seq, in order, after everything in `inflight` and `queue`.
  std::uint64_t spilled = 0;
  std::uint64_t spill_seq = 0;
  bool refilling = false;  // a read of the spilled tail is under way
  bool refill_waits = false;  // a read came back short: again after the next commit
  bool expiring = false;      // expired messages on disk are being erased
  size_t queued() const { return inflight.size() + queue.size() + spilled; }
  std::uint16_t mount_len = 0;
  std::uint16_t next_packet_id = 1;
  bool clean = true;

  std::string_view mount() const { return std::string_view(key).substr(0, mount_len); }
  std::string_view client_id() const { return std::string_view(key).substr(mount_len); }
  const std::string& tenant() const { return principal ? principal->tenant : kNoMount; }
  const std::string& user_id() const { return principal ? principal->user_id : kNoMount; }
  const std::string& device_id() const { return principal ? principal->device_id : kNoMount; }

  // Adds or replaces a subscription; returns false when it replaced one.
  bool SetSub(const std::string& filter, std::uint8_t qos) {
    for (auto& [f, q] : subs) {
      if (f == filter) {
        q = qos;
        return false;
      }
    }
    subs.emplace_back(filter, qos);
    return true;
  }
  bool EraseSub(const std::string& filter) {
    for (size_t i = 0; i < subs.size(); ++i) {
      if (subs[i].first == filter) {
        subs[i] = std::move(subs.back());
        subs.pop_back();
        return true;
      }
    }
    return false;
  }
  bool AwaitingRel(std::uint16_t id) const {
    return std::find(awaiting_rel.begin(), awaiting_rel.end(), id) != awaiting_rel.end();
  }
  void AddAwaitingRel(std::uint16_t id) {
    if (!AwaitingRel(id)) awaiting_rel.push_back(id);
  }
  void EraseAwaitingRel(std::uint16_t id) {
    auto it = std::find(awaiting_rel.begin(), awaiting_rel.end(), id);
    if (it != awaiting_rel.end()) awaiting_rel.erase(it);
  }
};

}  // namespace herald::mqtt
