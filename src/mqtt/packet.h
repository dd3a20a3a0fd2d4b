// MQTT 3.1.1 control packets as plain values (OASIS Standard, 29 October 2014).
//
// These are what the codec (mqtt/codec.h) decodes from and encodes to the wire. A
// struct holds exactly what its packet carries on the wire, so a decoded packet
// encodes back to the same bytes (apart from a non-minimal remaining length).
// Values are plain data: no thread affinity, copy and move freely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace herald::mqtt {

// Wire format shared by every control packet (standard section 2.2):
//
//   byte 0       bits 7..4: packet type (below); bits 3..0: flags, fixed per type
//                except PUBLISH (bit 3 DUP, bits 2..1 QoS, bit 0 RETAIN)
//   bytes 1..4   remaining length: base-128 varint, low 7 bits first, bit 7 set
//                when another byte follows; at most 4 bytes
//   then         variable header and payload: exactly `remaining length` bytes
//
// Integers are big-endian uint16. Strings and binary data are a uint16 length and
// then that many bytes (section 1.5.3). The layout is fixed by the standard; herald
// speaks protocol level 4 (3.1.1) only, so there is nothing to version here.
enum class PacketType : uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
};

inline constexpr uint32_t kMaxRemainingLength = 268'435'455;  // 4 varint bytes
inline constexpr size_t kMaxFixedHeaderSize = 5;
inline constexpr size_t kMaxPacketSize = kMaxRemainingLength + kMaxFixedHeaderSize;
inline constexpr size_t kMaxStringSize = 65'535;  // uint16 length prefix
inline constexpr uint8_t kProtocolLevel = 4;      // "MQTT" level 4 is 3.1.1

// Returns the upper-case wire name, e.g. "PUBLISH".
std::string_view PacketTypeName(PacketType type);

// True for the packets a client may send to a server (CONNECT, PUBLISH, the QoS
// acknowledgements, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT). The codec decodes
// both directions; the broker rejects the others itself.
bool SentByClient(PacketType type);

enum class QoS : uint8_t {
  kAtMostOnce = 0,
  kAtLeastOnce = 1,
  kExactlyOnce = 2,
};

// CONNACK return codes (section 3.2.2.3). 6..255 are reserved.
enum class ConnackCode : uint8_t {
  kAccepted = 0x00,
  kUnacceptableProtocolVersion = 0x01,
  kIdentifierRejected = 0x02,
  kServerUnavailable = 0x03,
  kBadUsernameOrPassword = 0x04,
  kNotAuthorized = 0x05,
};

// SUBACK return codes (section 3.9.3). All other values are reserved.
enum class SubackCode : uint8_t {
  kGrantedQoS0 = 0x00,
  kGrantedQoS1 = 0x01,
  kGrantedQoS2 = 0x02,
  kFailure = 0x80,
};

// The message a server publishes for a client that goes away without DISCONNECT.
struct Will {
  std::string topic;    // a valid topic name (no wildcards)
  std::string payload;  // binary, may be empty
  QoS qos = QoS::kAtMostOnce;
  bool retain = false;
  bool operator==(const Will&) const = default;
};

// CONNECT always carries protocol name "MQTT" and level 4; the decoder refuses others.
// The broker decides CONNACK 0x04/0x05 from `username` and `password`.
struct Connect {
  std::string client_id;  // UTF-8; empty asks the server to assign one
  bool clean_session = true;
  uint16_t keep_alive = 0;  // seconds; 0 turns keep-alive off
  std::optional<Will> will;
  std::optional<std::string> username;  // UTF-8
  std::optional<std::string> password;  // binary; present only with a username
  bool operator==(const Connect&) const = default;
};

struct Connack {
  bool session_present = false;  // must be false unless code is kAccepted
  ConnackCode code = ConnackCode::kAccepted;
  bool operator==(const Connack&) const = default;
};

// A PUBLISH whose topic and payload are views, not copies. Decode() points them into
// the caller's input buffer: they are valid only while that buffer is alive and
// unchanged. Use OwnedPublish to keep a message beyond that.
struct Publish {
  bool dup = false;  // must be false for QoS 0
  QoS qos = QoS::kAtMostOnce;
  bool retain = false;
  uint16_t packet_id = 0;  // non-zero for QoS 1 and 2; 0 (and not sent) for QoS 0
  std::string_view topic;
  std::string_view payload;
  bool operator==(const Publish&) const = default;
};

// A PUBLISH that owns its topic and payload: one copy of each.
struct OwnedPublish {
  bool dup = false;
  QoS qos = QoS::kAtMostOnce;
  bool retain = false;
  uint16_t packet_id = 0;
  std::string topic;
  std::string payload;

  static OwnedPublish CopyOf(const Publish& p);
  // Views into *this: valid while *this is alive and its strings are unmodified.
  Publish view() const;
  bool operator==(const OwnedPublish&) const = default;
};

// The four QoS acknowledgements and UNSUBACK carry only a non-zero packet id.
struct Puback {
  uint16_t packet_id = 0;
  bool operator==(const Puback&) const = default;
};
struct Pubrec {
  uint16_t packet_id = 0;
  bool operator==(const Pubrec&) const = default;
};
struct Pubrel {
  uint16_t packet_id = 0;
  bool operator==(const Pubrel&) const = default;
};
struct Pubcomp {
  uint16_t packet_id = 0;
  bool operator==(const Pubcomp&) const = default;
};

struct Subscription {
  std::string filter;  // a valid topic filter
  QoS qos = QoS::kAtMostOnce;
  bool operator==(const Subscription&) const = default;
};

struct Subscribe {
  uint16_t packet_id = 0;
  std::vector<Subscription> subscriptions;  // at least one
  bool operator==(const Subscribe&) const = default;
};

struct Suback {
  uint16_t packet_id = 0;
  std::vector<SubackCode> codes;  // one per requested filter, in order; at least one
  bool operator==(const Suback&) const = default;
};

struct Unsubscribe {
  uint16_t packet_id = 0;
  std::vector<std::string> filters;  // at least one
  bool operator==(const Unsubscribe&) const = default;
};

struct Unsuback {
  uint16_t packet_id = 0;
  bool operator==(const Unsuback&) const = default;
};

struct Pingreq {
  bool operator==(const Pingreq&) const = default;
};
struct Pingresp {
  bool operator==(const Pingresp&) const = default;
};
struct Disconnect {
  bool operator==(const Disconnect&) const = default;
};

// Any control packet. Alternative i is packet type i + 1, so TypeOf() is an index.
using Packet = std::variant<Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp,
                            Subscribe, Suback, Unsubscribe, Unsuback, Pingreq, Pingresp,
                            Disconnect>;

inline PacketType TypeOf(const Packet& packet) {
  return static_cast<PacketType>(packet.index() + 1);
}

}  // namespace herald::mqtt
