// PUBLISH (standard section 3.3): the hot path. Decoding copies nothing; the topic
// and payload are views into the caller's buffer.
#include "mqtt/codec.h"
#include "mqtt/topic.h"
#include "mqtt/wire.h"

namespace herald::mqtt {
namespace {

using wire::Malformed;
using wire::MaybeError;

// PUBLISH fixed-header flags (section 3.3.1).
constexpr uint8_t kDupFlag = 0x08;
constexpr uint8_t kQoSShift = 1;
constexpr uint8_t kQoSMask = 0x06;
constexpr uint8_t kRetainFlag = 0x01;

// The topic checks of ValidTopicName(), each naming the rule it enforces.
MaybeError CheckTopicName(std::string_view topic) {
  if (topic.empty()) return Malformed("MQTT-4.7.3-1: PUBLISH topic name is empty");
  if (topic.find_first_of("+#") != std::string_view::npos) {
    return Malformed("MQTT-3.3.2-2: PUBLISH topic name contains a wildcard");
  }
  if (!ValidUtf8String(topic)) return Malformed("MQTT-1.5.3-1/2: PUBLISH topic is not valid UTF-8");
  return std::nullopt;
}

size_t RemainingLength(const Publish& p) {
  return 2 + p.topic.size() + (p.qos == QoS::kAtMostOnce ? 0 : 2) + p.payload.size();
}

}  // namespace

namespace wire {

MaybeError DecodePublish(uint8_t flags, std::string_view body, Packet* out) {
  Publish p;
  uint8_t qos = (flags & kQoSMask) >> kQoSShift;
  if (qos == 3) return Malformed("MQTT-3.3.1-4: PUBLISH QoS is 3");
  p.qos = static_cast<QoS>(qos);
  p.dup = (flags & kDupFlag) != 0;
  p.retain = (flags & kRetainFlag) != 0;
  if (p.dup && p.qos == QoS::kAtMostOnce) return Malformed("MQTT-3.3.1-2: DUP set on QoS 0");
  Reader r(body);
  if (!r.Prefixed(&p.topic)) return Malformed("MQTT-2.2.3: PUBLISH topic truncated");
  if (MaybeError e = CheckTopicName(p.topic)) return e;
  // QoS 0 carries no packet id at all (section 3.3.2.2).
  if (p.qos != QoS::kAtMostOnce) {
    if (!r.U16(&p.packet_id)) return Malformed("MQTT-2.2.3: PUBLISH packet id truncated");
    if (p.packet_id == 0) return Malformed("MQTT-2.3.1-1: packet identifier is 0");
  }
  p.payload = r.Rest();  // everything left is payload, possibly empty
  out->emplace<Publish>(p);
  return std::nullopt;
}

}  // namespace wire

void Encode(const Publish& p, std::string* out) {
  if (static_cast<uint8_t>(p.qos) > 2) wire::EncodePreconditionFailed("PUBLISH QoS above 2");
  // A forwarded QoS 1/2 message keeps no DUP at QoS 0 (MQTT-3.3.1-2/3).
  if (p.dup && p.qos == QoS::kAtMostOnce) wire::EncodePreconditionFailed("PUBLISH DUP at QoS 0");
  uint8_t first = static_cast<uint8_t>(PacketType::kPublish) << 4;
  first |= static_cast<uint8_t>(static_cast<uint8_t>(p.qos) << kQoSShift);
  if (p.dup) first |= kDupFlag;
  if (p.retain) first |= kRetainFlag;
  wire::PutFixedHeader(out, first, RemainingLength(p));
  wire::PutPrefixed(out, p.topic);
  if (p.qos != QoS::kAtMostOnce) {
    if (p.packet_id == 0) wire::EncodePreconditionFailed("PUBLISH QoS > 0 with packet id 0");
    wire::PutU16(out, p.packet_id);
  }
  out->append(p.payload);
}

size_t EncodedSize(const Publish& p) {
  size_t length = RemainingLength(p);
  return 1 + wire::VarintSize(length) + length;
}

OwnedPublish OwnedPublish::CopyOf(const Publish& p) {
  return OwnedPublish{p.dup,
                      p.qos,
                      p.retain,
                      p.packet_id,
                      std::string(p.topic),
                      std::string(p.payload)};
}

Publish OwnedPublish::view() const { return Publish{dup, qos, retain, packet_id, topic, payload}; }

}  // namespace herald::mqtt
