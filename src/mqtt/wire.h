// The MQTT primitive data types (standard section 1.5) and the pieces every packet
// codec shares. Private to the mqtt module.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mqtt/codec.h"

namespace herald::mqtt::wire {

// Reads one packet's variable header and payload. Never reads past the body: a read
// that does not fit returns false and leaves the reader where it was.
class Reader {
 public:
  explicit Reader(std::string_view body) : in_(body) {}

  bool U8(uint8_t* v) {
    if (remaining() < 1) return false;
    *v = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool U16(uint16_t* v) {
    if (remaining() < 2) return false;
    *v = static_cast<uint16_t>(static_cast<uint8_t>(in_[pos_]) << 8 |
                               static_cast<uint8_t>(in_[pos_ + 1]));
    pos_ += 2;
    return true;
  }
  // A uint16 length and that many bytes, unvalidated (binary data or a string).
  bool Prefixed(std::string_view* v) {
    uint16_t n = 0;
    if (remaining() < 2) return false;
    size_t start = pos_;
    U16(&n);
    if (remaining() < n) {
      pos_ = start;
      return false;
    }
    *v = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // Everything not yet read; the reader is then done.
  std::string_view Rest() {
    std::string_view rest = in_.substr(pos_);
    pos_ = in_.size();
    return rest;
  }
  size_t remaining() const { return in_.size() - pos_; }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

// Fixed-header byte 0 for every type but PUBLISH: the type and its required flags
// (MQTT-2.2.2-1). PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010.
inline constexpr uint8_t FirstByte(PacketType type) {
  uint8_t flags = (type == PacketType::kPubrel || type == PacketType::kSubscribe ||
                   type == PacketType::kUnsubscribe)
                      ? 0b0010
                      : 0;
  return static_cast<uint8_t>(static_cast<uint8_t>(type) << 4 | flags);
}

// Bytes the remaining-length varint takes for `n`.
inline size_t VarintSize(size_t n) {
  return n < 128 ? 1 : n < 16'384 ? 2 : n < 2'097'152 ? 3 : 4;
}

// Aborts with `what` on stderr: an encoder was handed a packet it cannot encode.
[[noreturn]] void EncodePreconditionFailed(const char* what);

inline void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
inline void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xFF));
}
inline void PutPrefixed(std::string* out, std::string_view v) {
  if (v.size() > kMaxStringSize) EncodePreconditionFailed("string longer than 65535 bytes");
  PutU16(out, static_cast<uint16_t>(v.size()));
  out->append(v);
}
// Appends byte 0 and the remaining length, and reserves room for the body.
void PutFixedHeader(std::string* out, uint8_t first_byte, size_t remaining_length);

// Decode errors carry static reason strings; these build them.
inline DecodeError Malformed(std::string_view reason) {
  return {DecodeErrorKind::kMalformed, ConnackCode::kAccepted, reason};
}
inline DecodeError Refused(ConnackCode code, std::string_view reason) {
  return {DecodeErrorKind::kConnectRefused, code, reason};
}

// A body decoder's outcome: nullopt when *out holds the packet.
using MaybeError = std::optional<DecodeError>;

// Body decoders, one per packet family. Each receives exactly the remaining-length
// bytes of one packet whose fixed-header flags are already checked (except PUBLISH,
// whose flags are its own), and rejects bytes left over after the packet's fields.
MaybeError DecodeConnect(std::string_view body, Packet* out);
MaybeError DecodeConnack(std::string_view body, Packet* out);
MaybeError DecodePublish(uint8_t flags, std::string_view body, Packet* out);
MaybeError DecodeSubscribe(std::string_view body, Packet* out);
MaybeError DecodeSuback(std::string_view body, Packet* out);
MaybeError DecodeUnsubscribe(std::string_view body, Packet* out);

}  // namespace herald::mqtt::wire
