// CONNECT and CONNACK (standard sections 3.1 and 3.2).
#include "mqtt/codec.h"
#include "mqtt/topic.h"
#include "mqtt/wire.h"

namespace herald::mqtt {
namespace {

using wire::Malformed;
using wire::MaybeError;
using wire::Refused;

// CONNECT variable header: protocol name "MQTT", level 4, connect flags, keep alive.
constexpr std::string_view kProtocolName = "MQTT";
constexpr std::string_view kMqtt31ProtocolName = "MQIsdp";  // MQTT 3.1, level 3
constexpr size_t kConnectHeaderSize = 2 + kProtocolName.size() + 1 + 1 + 2;

// Connect flags byte (section 3.1.2.3).
constexpr uint8_t kReservedFlag = 0x01;
constexpr uint8_t kCleanSessionFlag = 0x02;
constexpr uint8_t kWillFlag = 0x04;
constexpr uint8_t kWillQoSShift = 3;
constexpr uint8_t kWillQoSMask = 0x18;
constexpr uint8_t kWillRetainFlag = 0x20;
constexpr uint8_t kPasswordFlag = 0x40;
constexpr uint8_t kUsernameFlag = 0x80;

// CONNACK: acknowledge flags (bit 0 session present, bits 7..1 reserved) and code.
constexpr uint8_t kSessionPresentFlag = 0x01;
constexpr uint8_t kMaxConnackCode = 0x05;

MaybeError CheckConnectFlags(uint8_t flags) {
  if (flags & kReservedFlag) return Malformed("MQTT-3.1.2-3: CONNECT reserved flag is set");
  uint8_t will_qos = (flags & kWillQoSMask) >> kWillQoSShift;
  if (!(flags & kWillFlag) && (will_qos != 0 || (flags & kWillRetainFlag))) {
    return Malformed("MQTT-3.1.2-11/13/15: will QoS or retain set without will flag");
  }
  if (will_qos == 3) return Malformed("MQTT-3.1.2-14: will QoS is 3");
  if ((flags & kPasswordFlag) && !(flags & kUsernameFlag)) {
    return Malformed("MQTT-3.1.2-22: password flag set without username flag");
  }
  return std::nullopt;
}

// Reads a length-prefixed UTF-8 string into *out.
MaybeError ReadString(wire::Reader* r, std::string* out) {
  std::string_view s;
  if (!r->Prefixed(&s)) return Malformed("MQTT-2.2.3: CONNECT payload truncated");
  if (!ValidUtf8String(s)) return Malformed("MQTT-1.5.3-1/2: CONNECT string is not valid UTF-8");
  out->assign(s);
  return std::nullopt;
}

MaybeError ReadBinary(wire::Reader* r, std::string* out) {
  std::string_view s;
  if (!r->Prefixed(&s)) return Malformed("MQTT-2.2.3: CONNECT payload truncated");
  out->assign(s);
  return std::nullopt;
}

// The payload: client id, will topic and message, username, password, in that order
// and each present only when its flag says so (MQTT-3.1.3-1).
MaybeError ReadConnectPayload(wire::Reader* r, uint8_t flags, Connect* c) {
  if (MaybeError e = ReadString(r, &c->client_id)) return e;
  if (flags & kWillFlag) {
    Will& will = c->will.emplace();
    will.qos = static_cast<QoS>((flags & kWillQoSMask) >> kWillQoSShift);
    will.retain = (flags & kWillRetainFlag) != 0;
    if (MaybeError e = ReadString(r, &will.topic)) return e;
    // The will is published later, so its topic must be a PUBLISH topic name.
    if (!ValidTopicName(will.topic)) {
      return Malformed("MQTT-3.1.3-10: will topic is not a topic name");
    }
    if (MaybeError e = ReadBinary(r, &will.payload)) return e;
  }
  if (flags & kUsernameFlag) {
    if (MaybeError e = ReadString(r, &c->username.emplace())) return e;
  }
  if (flags & kPasswordFlag) {
    if (MaybeError e = ReadBinary(r, &c->password.emplace())) return e;
  }
  if (!r->done()) return Malformed("MQTT-2.2.3: bytes after CONNECT payload");
  return std::nullopt;
}

uint8_t ConnectFlags(const Connect& c) {
  uint8_t flags = c.clean_session ? kCleanSessionFlag : 0;
  if (c.will) {
    flags |= kWillFlag | static_cast<uint8_t>(static_cast<uint8_t>(c.will->qos) << kWillQoSShift);
    if (c.will->retain) flags |= kWillRetainFlag;
  }
  if (c.username) flags |= kUsernameFlag;
  if (c.password) flags |= kPasswordFlag;
  return flags;
}

}  // namespace

namespace wire {

MaybeError DecodeConnect(std::string_view body, Packet* out) {
  Reader r(body);
  std::string_view name;
  if (!r.Prefixed(&name)) return Malformed("MQTT-2.2.3: CONNECT protocol name truncated");
  // A 3.1 client understands CONNACK 0x01 and may retry with 3.1.1.
  if (name == kMqtt31ProtocolName) {
    return Refused(ConnackCode::kUnacceptableProtocolVersion, "MQTT 3.1 (MQIsdp) unsupported");
  }
  if (name != kProtocolName) return Malformed("MQTT-3.1.2-1: protocol name is not \"MQTT\"");
  uint8_t level = 0;
  if (!r.U8(&level)) return Malformed("MQTT-2.2.3: CONNECT protocol level truncated");
  // Checked before the flags: another level may lay out the rest differently.
  if (level != kProtocolLevel) {
    return Refused(ConnackCode::kUnacceptableProtocolVersion, "MQTT-3.1.2-2: level is not 4");
  }
  uint8_t flags = 0;
  Connect c;
  if (!r.U8(&flags) || !r.U16(&c.keep_alive)) {
    return Malformed("MQTT-2.2.3: CONNECT variable header truncated");
  }
  if (MaybeError e = CheckConnectFlags(flags)) return e;
  c.clean_session = (flags & kCleanSessionFlag) != 0;
  if (MaybeError e = ReadConnectPayload(&r, flags, &c)) return e;
  // Refusals come after the whole packet parsed: a malformed packet gets no CONNACK.
  if (c.client_id.empty() && !c.clean_session) {
    return Refused(ConnackCode::kIdentifierRejected,
                   "MQTT-3.1.3-8: empty client id without clean session");
  }
  out->emplace<Connect>(std::move(c));
  return std::nullopt;
}

MaybeError DecodeConnack(std::string_view body, Packet* out) {
  if (body.size() != 2) return Malformed("MQTT-2.2.3: CONNACK length is not 2");
  Reader r(body);
  uint8_t ack_flags = 0;
  uint8_t code = 0;
  r.U8(&ack_flags);
  r.U8(&code);
  if (ack_flags & ~kSessionPresentFlag) return Malformed("MQTT-3.2.2: CONNACK reserved flags set");
  if (code > kMaxConnackCode) return Malformed("MQTT-3.2.2.3: reserved CONNACK return code");
  if (code != 0 && (ack_flags & kSessionPresentFlag)) {
    return Malformed("MQTT-3.2.2-4: session present with a refusal");
  }
  out->emplace<Connack>(Connack{(ack_flags & kSessionPresentFlag) != 0, ConnackCode{code}});
  return std::nullopt;
}

}  // namespace wire

void Encode(const Connect& c, std::string* out) {
  if (c.password && !c.username) {
    wire::EncodePreconditionFailed("CONNECT password without username");
  }
  size_t length = kConnectHeaderSize + 2 + c.client_id.size();
  if (c.will) length += 2 + c.will->topic.size() + 2 + c.will->payload.size();
  if (c.username) length += 2 + c.username->size();
  if (c.password) length += 2 + c.password->size();
  wire::PutFixedHeader(out, wire::FirstByte(PacketType::kConnect), length);
  wire::PutPrefixed(out, kProtocolName);
  wire::PutU8(out, kProtocolLevel);
  wire::PutU8(out, ConnectFlags(c));
  wire::PutU16(out, c.keep_alive);
  wire::PutPrefixed(out, c.client_id);
  if (c.will) {
    wire::PutPrefixed(out, c.will->topic);
    wire::PutPrefixed(out, c.will->payload);
  }
  if (c.username) wire::PutPrefixed(out, *c.username);
  if (c.password) wire::PutPrefixed(out, *c.password);
}

void Encode(const Connack& c, std::string* out) {
  wire::PutU8(out, wire::FirstByte(PacketType::kConnack));
  wire::PutU8(out, 2);
  wire::PutU8(out, c.session_present ? kSessionPresentFlag : 0);
  wire::PutU8(out, static_cast<uint8_t>(c.code));
}

}  // namespace herald::mqtt
