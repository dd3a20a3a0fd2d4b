// What one herald-mqtt-bench run does: the scenario and its parameters, as parsed
// from the command line by mqtt_bench.cc. Plain values, copied into every worker
// process by fork().
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mqtt/packet.h"

namespace herald::bench {

enum class Scenario : uint8_t {
  kConn,     // N idle connections held open; connection rate, broker RSS per connection
  kFanin,    // N publishers -> 1 subscriber on one topic (or a wildcard)
  kFanout,   // 1 publisher -> N subscribers, one topic u/<i> each, round-robin
  kLatency,  // 1 publisher at a fixed rate -> 1 subscriber; timestamps in the payload
};

std::string_view ScenarioName(Scenario s);

struct BenchOptions {
  Scenario scenario = Scenario::kFanout;
  sockaddr_in server{};  // resolved --host/--port
  std::string host;
  uint16_t port = 1883;
  std::optional<std::string> username;
  std::optional<std::string> password;
  mqtt::QoS qos = mqtt::QoS::kAtLeastOnce;      // of publishes
  mqtt::QoS sub_qos = mqtt::QoS::kAtLeastOnce;  // of subscriptions (default: qos)
  uint64_t clients = 0;    // conn: connections; fanin: publishers; fanout: subscribers
  uint64_t messages = 0;   // total PUBLISH packets the publishers send
  uint32_t payload = 100;  // bytes; at least kPayloadHeader
  double rate = 0;         // total msgs/s over all publishers; 0 = as fast as allowed
  double duration_s = 0;   // conn: hold time; latency: sending time; else a time limit
  double setup_timeout_s = 60;
  double drain_s = 3;       // stop once publishing is over and nothing arrived this long
  uint32_t window = 1000;   // QoS 1/2 publishes in flight per publisher
  uint64_t e2e_window = 0;  // published but not yet received, over all publishers; 0 = off
  uint16_t keep_alive_s = 60;
  std::string topic_prefix = "u/";
  std::string topic;                  // fanin/latency single topic
  bool wildcard = false;              // fanin: publisher i -> <prefix><i>, subscriber <prefix>+
  uint64_t client_offset = 0;         // first client index (ids and topics), for split runs
  uint32_t connect_concurrency = 50;  // per worker: connects awaiting CONNACK/SUBACK
  int procs = 1;
  long broker_pid = 0;  // conn: read this process's VmRSS before and after
  bool json = false;
  bool spread_sources = false;  // loopback target: use 127.0.0.k source addresses
  // fanout: no publisher of ours; the subscribers count every PUBLISH the broker
  // sends them (the broker's own pushes, e.g. a herald campaign) until this many
  // arrived. 0 = off.
  uint64_t external = 0;
  // Per-client CONNECT user name and password (client i: line i of --credentials),
  // for brokers that authenticate each device; empty = --username/--password.
  std::vector<std::pair<std::string, std::string>> credentials;
  std::string ready_file;  // written once every connection is set up
};

// Payload layout of every benchmark message (little-endian host order; both ends
// are this program on one host, so there is no compatibility to keep):
//   bytes 0..7   sequence number within its publisher, from 0
//   bytes 8..15  CLOCK_MONOTONIC send time in ns, taken when the packet is encoded
//   bytes 16..19 publisher index (0-based, over all workers)
//   the rest     filler ('x')
inline constexpr uint32_t kPayloadHeader = 20;

// The client indices [begin, end) of the N scenario clients that worker w of P owns.
struct ClientRange {
  uint64_t begin = 0;
  uint64_t end = 0;
};
ClientRange RangeOf(uint64_t clients, int worker, int workers);

}  // namespace herald::bench
