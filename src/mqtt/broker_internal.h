// Private state of the Broker, shared by its .cc files. Not part of the module's
// public interface.
#pragma once

#include <chrono>

#include "mqtt/broker.h"

namespace herald::mqtt {

using SteadyTime = std::chrono::steady_clock::time_point;

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
  std::deque<PendingAck> acks;
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
  std::deque<Outgoing> inflight;             // sent, not yet acknowledged
  std::deque<Outgoing> queue;                // waiting for a slot in the window
  std::unordered_set<std::uint16_t> awaiting_rel;  // inbound QoS 2 ids
  std::uint16_t next_packet_id = 1;
};

}  // namespace herald::mqtt
