// SUBSCRIBE, SUBACK and UNSUBSCRIBE (standard sections 3.8 to 3.10). UNSUBACK is a
// bare packet id and lives with the other acknowledgements in codec.cc.
#include "mqtt/codec.h"
#include "mqtt/topic.h"
#include "mqtt/wire.h"

namespace herald::mqtt {
namespace {

using wire::Malformed;
using wire::MaybeError;

// SUBSCRIBE requested-QoS byte: bits 7..2 reserved (MQTT-3.8.3-4).
constexpr uint8_t kRequestedQoSReserved = 0xFC;

MaybeError ReadPacketId(wire::Reader* r, uint16_t* id) {
  if (!r->U16(id)) return Malformed("MQTT-2.2.3: packet identifier truncated");
  if (*id == 0) return Malformed("MQTT-2.3.1-1: packet identifier is 0");
  return std::nullopt;
}

MaybeError ReadFilter(wire::Reader* r, std::string* out) {
  std::string_view filter;
  if (!r->Prefixed(&filter)) return Malformed("MQTT-2.2.3: topic filter truncated");
  if (!ValidTopicFilter(filter)) {
    // Find out why only on failure, so a good filter is scanned once.
    if (!ValidUtf8String(filter)) {
      return Malformed("MQTT-1.5.3-1/2: topic filter is not valid UTF-8");
    }
    return Malformed("MQTT-4.7.1-2/3, MQTT-4.7.3-1: topic filter is empty or misuses a wildcard");
  }
  out->assign(filter);
  return std::nullopt;
}

bool ValidSubackCode(uint8_t code) {
  return code <= 2 || code == static_cast<uint8_t>(SubackCode::kFailure);
}

}  // namespace

namespace wire {

MaybeError DecodeSubscribe(std::string_view body, Packet* out) {
  Reader r(body);
  Subscribe s;
  if (MaybeError e = ReadPacketId(&r, &s.packet_id)) return e;
  if (r.done()) return Malformed("MQTT-3.8.3-3: SUBSCRIBE without a topic filter");
  // Entries run to the end of the packet; there is no count (section 3.8.3).
  while (!r.done()) {
    Subscription& sub = s.subscriptions.emplace_back();
    if (MaybeError e = ReadFilter(&r, &sub.filter)) return e;
    uint8_t qos = 0;
    if (!r.U8(&qos)) return Malformed("MQTT-2.2.3: SUBSCRIBE requested QoS truncated");
    if (qos & kRequestedQoSReserved) {
      return Malformed("MQTT-3.8.3-4: requested QoS reserved bits set");
    }
    if (qos == 3) return Malformed("MQTT-3.8.3-4: requested QoS is 3");
    sub.qos = static_cast<QoS>(qos);
  }
  out->emplace<Subscribe>(std::move(s));
  return std::nullopt;
}

MaybeError DecodeSuback(std::string_view body, Packet* out) {
  Reader r(body);
  Suback s;
  if (MaybeError e = ReadPacketId(&r, &s.packet_id)) return e;
  if (r.done()) return Malformed("MQTT-3.9.3: SUBACK without a return code");
  s.codes.reserve(r.remaining());  // one byte per code
  for (uint8_t code = 0; r.U8(&code);) {
    if (!ValidSubackCode(code)) return Malformed("MQTT-3.9.3-2: reserved SUBACK return code");
    s.codes.push_back(SubackCode{code});
  }
  out->emplace<Suback>(std::move(s));
  return std::nullopt;
}

MaybeError DecodeUnsubscribe(std::string_view body, Packet* out) {
  Reader r(body);
  Unsubscribe u;
  if (MaybeError e = ReadPacketId(&r, &u.packet_id)) return e;
  if (r.done()) return Malformed("MQTT-3.10.3-2: UNSUBSCRIBE without a topic filter");
  while (!r.done()) {
    if (MaybeError e = ReadFilter(&r, &u.filters.emplace_back())) return e;
  }
  out->emplace<Unsubscribe>(std::move(u));
  return std::nullopt;
}

}  // namespace wire

void Encode(const Subscribe& s, std::string* out) {
  if (s.packet_id == 0) wire::EncodePreconditionFailed("SUBSCRIBE packet id 0");
  size_t length = 2;
  for (const Subscription& sub : s.subscriptions) length += 2 + sub.filter.size() + 1;
  wire::PutFixedHeader(out, wire::FirstByte(PacketType::kSubscribe), length);
  wire::PutU16(out, s.packet_id);
  for (const Subscription& sub : s.subscriptions) {
    wire::PutPrefixed(out, sub.filter);
    wire::PutU8(out, static_cast<uint8_t>(sub.qos));
  }
}

void Encode(const Suback& s, std::string* out) {
  if (s.packet_id == 0) wire::EncodePreconditionFailed("SUBACK packet id 0");
  wire::PutFixedHeader(out, wire::FirstByte(PacketType::kSuback), 2 + s.codes.size());
  wire::PutU16(out, s.packet_id);
  for (SubackCode code : s.codes) wire::PutU8(out, static_cast<uint8_t>(code));
}

void Encode(const Unsubscribe& u, std::string* out) {
  if (u.packet_id == 0) wire::EncodePreconditionFailed("UNSUBSCRIBE packet id 0");
  size_t length = 2;
  for (const std::string& filter : u.filters) length += 2 + filter.size();
  wire::PutFixedHeader(out, wire::FirstByte(PacketType::kUnsubscribe), length);
  wire::PutU16(out, u.packet_id);
  for (const std::string& filter : u.filters) wire::PutPrefixed(out, filter);
}

}  // namespace herald::mqtt
