// Framing (fixed header, remaining length), dispatch, and the packets that are only
// a packet id or nothing at all. CONNECT, PUBLISH and SUBSCRIBE live in their own
// codec_*.cc files.
#include "mqtt/codec.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "mqtt/wire.h"

namespace herald::mqtt {
namespace {

using wire::Malformed;
using wire::MaybeError;

enum class FrameState : uint8_t { kComplete, kNeedMore, kError };

struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  size_t header_size = 0;  // byte 0 plus the varint
  size_t body_size = 0;    // the remaining length
};

// Checks byte 0 alone, so a bad type or flags fail before any length is known.
MaybeError CheckFirstByte(uint8_t byte0) {
  uint8_t type = byte0 >> 4;
  if (type == 0 || type == 15) return Malformed("MQTT-2.2.1: reserved packet type");
  auto t = static_cast<PacketType>(type);
  if (t == PacketType::kPublish) return std::nullopt;  // its flags are checked with it
  if (byte0 != wire::FirstByte(t)) return Malformed("MQTT-2.2.2-2: invalid fixed header flags");
  return std::nullopt;
}

// Parses the fixed header at the start of `in` into *frame.
FrameState ParseFrame(std::string_view in, const DecodeLimits& limits, Frame* frame,
                      DecodeError* error) {
  if (in.empty()) return FrameState::kNeedMore;
  auto byte0 = static_cast<uint8_t>(in[0]);
  if (MaybeError e = CheckFirstByte(byte0)) {
    *error = *e;
    return FrameState::kError;
  }
  frame->type = byte0 >> 4;
  frame->flags = byte0 & 0x0F;
  size_t length = 0;
  for (size_t i = 1;; ++i) {
    if (i >= in.size()) return FrameState::kNeedMore;  // varint split across reads
    auto b = static_cast<uint8_t>(in[i]);
    length |= static_cast<size_t>(b & 0x7F) << (7 * (i - 1));
    if ((b & 0x80) == 0) {
      frame->header_size = i + 1;
      break;
    }
    // Byte 4 is the last allowed, so its continuation bit is already an error: no
    // need to wait for a 5th byte that a hostile peer may never send.
    if (i == 4) {
      *error = Malformed("MQTT-2.2.3: remaining length longer than 4 bytes");
      return FrameState::kError;
    }
  }
  frame->body_size = length;
  // Checked before the body arrives, so the caller never buffers an oversized one.
  if (frame->header_size + length > limits.max_packet_size) {
    *error = {DecodeErrorKind::kTooLarge, ConnackCode::kAccepted,
              "packet larger than the configured maximum"};
    return FrameState::kError;
  }
  return FrameState::kComplete;
}

// PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: exactly a non-zero packet id.
template <typename Ack>
MaybeError DecodeAck(std::string_view body, Packet* out) {
  if (body.size() != 2) return Malformed("MQTT-2.2.3: acknowledgement length is not 2");
  wire::Reader r(body);
  Ack ack;
  r.U16(&ack.packet_id);
  if (ack.packet_id == 0) return Malformed("MQTT-2.3.1-1: packet identifier is 0");
  out->emplace<Ack>(ack);
  return std::nullopt;
}

template <typename Empty>
MaybeError DecodeEmpty(std::string_view body, Packet* out) {
  if (!body.empty()) return Malformed("MQTT-2.2.3: PINGREQ/PINGRESP/DISCONNECT length is not 0");
  out->emplace<Empty>();
  return std::nullopt;
}

MaybeError DecodeBody(const Frame& frame, std::string_view body, Packet* out) {
  switch (static_cast<PacketType>(frame.type)) {
    case PacketType::kConnect: return wire::DecodeConnect(body, out);
    case PacketType::kConnack: return wire::DecodeConnack(body, out);
    case PacketType::kPublish: return wire::DecodePublish(frame.flags, body, out);
    case PacketType::kPuback: return DecodeAck<Puback>(body, out);
    case PacketType::kPubrec: return DecodeAck<Pubrec>(body, out);
    case PacketType::kPubrel: return DecodeAck<Pubrel>(body, out);
    case PacketType::kPubcomp: return DecodeAck<Pubcomp>(body, out);
    case PacketType::kSubscribe: return wire::DecodeSubscribe(body, out);
    case PacketType::kSuback: return wire::DecodeSuback(body, out);
    case PacketType::kUnsubscribe: return wire::DecodeUnsubscribe(body, out);
    case PacketType::kUnsuback: return DecodeAck<Unsuback>(body, out);
    case PacketType::kPingreq: return DecodeEmpty<Pingreq>(body, out);
    case PacketType::kPingresp: return DecodeEmpty<Pingresp>(body, out);
    case PacketType::kDisconnect: return DecodeEmpty<Disconnect>(body, out);
  }
  return Malformed("MQTT-2.2.1: reserved packet type");  // unreachable: CheckFirstByte
}

// Fixed-size packets skip PutFixedHeader: their remaining length is one literal byte.
void EncodeId(PacketType type, uint16_t packet_id, std::string* out) {
  if (packet_id == 0) wire::EncodePreconditionFailed("packet identifier is 0");
  wire::PutU8(out, wire::FirstByte(type));
  wire::PutU8(out, 2);
  wire::PutU16(out, packet_id);
}

void EncodeEmpty(PacketType type, std::string* out) {
  wire::PutU8(out, wire::FirstByte(type));
  wire::PutU8(out, 0);
}

}  // namespace

namespace wire {

void EncodePreconditionFailed(const char* what) {
  std::fprintf(stderr, "herald mqtt encoder: precondition violated: %s\n", what);
  std::abort();
}

void PutFixedHeader(std::string* out, uint8_t first_byte, size_t remaining_length) {
  if (remaining_length > kMaxRemainingLength) {
    EncodePreconditionFailed("remaining length above 268435455");
  }
  // Grow geometrically ourselves: an exact reserve() per packet is quadratic on
  // standard libraries that do not round it up.
  size_t needed = out->size() + 1 + VarintSize(remaining_length) + remaining_length;
  if (needed > out->capacity()) out->reserve(std::max(needed, 2 * out->capacity()));
  PutU8(out, first_byte);
  do {
    auto digit = static_cast<uint8_t>(remaining_length & 0x7F);
    remaining_length >>= 7;
    PutU8(out, remaining_length > 0 ? digit | 0x80 : digit);
  } while (remaining_length > 0);
}

}  // namespace wire

Status DecodeError::ToStatus() const {
  std::string message(reason);
  switch (kind) {
    case DecodeErrorKind::kMalformed: return Status::InvalidArgument(std::move(message));
    case DecodeErrorKind::kTooLarge: return Status::ResourceExhausted(std::move(message));
    case DecodeErrorKind::kConnectRefused: break;
  }
  return Status::FailedPrecondition(std::move(message));
}

// Keeps no state between calls: re-parsing at most 5 header bytes per read is
// cheaper than a state machine and leaves nothing to get out of sync.
DecodeResult Decode(std::string_view input, const DecodeLimits& limits) {
  DecodeResult result;
  Frame frame;
  switch (ParseFrame(input, limits, &frame, &result.error)) {
    case FrameState::kNeedMore: return result;
    case FrameState::kError: result.outcome = DecodeOutcome::kError; return result;
    case FrameState::kComplete: break;
  }
  size_t frame_size = frame.header_size + frame.body_size;
  if (input.size() < frame_size) {
    result.frame_size = frame_size;
    return result;
  }
  std::string_view body = input.substr(frame.header_size, frame.body_size);
  if (MaybeError e = DecodeBody(frame, body, &result.packet)) {
    result.outcome = DecodeOutcome::kError;
    result.error = *e;
    return result;
  }
  result.outcome = DecodeOutcome::kPacket;
  result.consumed = frame_size;
  return result;
}

void Encode(const Puback& p, std::string* out) { EncodeId(PacketType::kPuback, p.packet_id, out); }
void Encode(const Pubrec& p, std::string* out) { EncodeId(PacketType::kPubrec, p.packet_id, out); }
void Encode(const Pubrel& p, std::string* out) { EncodeId(PacketType::kPubrel, p.packet_id, out); }
void Encode(const Pubcomp& p, std::string* out) {
  EncodeId(PacketType::kPubcomp, p.packet_id, out);
}
void Encode(const Unsuback& p, std::string* out) {
  EncodeId(PacketType::kUnsuback, p.packet_id, out);
}
void Encode(const Pingreq&, std::string* out) { EncodeEmpty(PacketType::kPingreq, out); }
void Encode(const Pingresp&, std::string* out) { EncodeEmpty(PacketType::kPingresp, out); }
void Encode(const Disconnect&, std::string* out) { EncodeEmpty(PacketType::kDisconnect, out); }

void Encode(const Packet& p, std::string* out) {
  std::visit([out](const auto& packet) { Encode(packet, out); }, p);
}

std::string_view PacketTypeName(PacketType type) {
  static constexpr std::string_view kNames[] = {
      "RESERVED", "CONNECT", "CONNACK",   "PUBLISH", "PUBACK",      "PUBREC",
      "PUBREL",   "PUBCOMP", "SUBSCRIBE", "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
      "PINGREQ",  "PINGRESP", "DISCONNECT"};
  auto i = static_cast<size_t>(type);
  return i < std::size(kNames) ? kNames[i] : "RESERVED";
}

bool SentByClient(PacketType type) {
  switch (type) {
    case PacketType::kConnack:
    case PacketType::kSuback:
    case PacketType::kUnsuback:
    case PacketType::kPingresp: return false;
    default: return true;
  }
}

}  // namespace herald::mqtt
