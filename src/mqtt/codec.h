// The MQTT 3.1.1 codec: bytes to packets and back. Pure functions, no I/O, no state;
// any thread may call them.
//
// Decoding is streaming. The caller keeps its read buffer and calls Decode() on the
// unconsumed bytes after every read: Decode() says it needs more bytes, or decodes
// exactly one packet and says how many bytes it used, or reports a violation. It
// never reads past the input, and it rejects an oversized packet as soon as the
// fixed header declares its size, before the caller buffers the rest of it.
//
// Decoding enforces the normative statements of the standard that concern a single
// packet (reserved bits, QoS values, packet ids, UTF-8, topic syntax, exact lengths).
// Rules about sequences of packets (CONNECT first, packet direction, session state)
// belong to the broker.
//
// Encoders append to a caller-owned std::string, so a connection can batch many
// packets into one buffer and flush once.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"
#include "mqtt/packet.h"

namespace herald::mqtt {

struct DecodeLimits {
  // The largest packet accepted, in bytes including the fixed header.
  size_t max_packet_size = kMaxPacketSize;
};

enum class DecodeErrorKind : uint8_t {
  // A protocol violation or malformed packet: close the connection, send nothing.
  kMalformed,
  // The fixed header declares a packet above DecodeLimits::max_packet_size: close.
  kTooLarge,
  // A well-formed CONNECT the server must refuse: send CONNACK with `connack`, close.
  kConnectRefused,
};

struct DecodeError {
  DecodeErrorKind kind = DecodeErrorKind::kMalformed;
  ConnackCode connack = ConnackCode::kAccepted;  // set for kConnectRefused only
  // A static string naming the violated rule, e.g. "MQTT-3.3.1-4: PUBLISH QoS is 3".
  std::string_view reason;

  // kMalformed -> InvalidArgument, kTooLarge -> ResourceExhausted,
  // kConnectRefused -> FailedPrecondition; the message is `reason`.
  Status ToStatus() const;
};

enum class DecodeOutcome : uint8_t { kPacket, kNeedMore, kError };

struct DecodeResult {
  DecodeOutcome outcome = DecodeOutcome::kNeedMore;
  // kPacket: bytes of the input the packet used; the next packet starts there.
  size_t consumed = 0;
  // kNeedMore: the packet's total size once its fixed header is complete, else 0.
  // Lets the caller size its buffer or read exactly the rest.
  size_t frame_size = 0;
  Packet packet;      // valid when outcome == kPacket
  DecodeError error;  // valid when outcome == kError
};

// Decodes the first packet in `input`. Reads nothing beyond input.size(). A decoded
// Publish points into `input` (see Publish). After kError the connection's stream
// cannot be resynchronised; the caller should close it.
//
// Client identifiers: any well-formed UTF-8 string of 0..65535 bytes is accepted
// (beyond the 1..23 alphanumerics the standard guarantees). An empty one with
// clean_session = false is refused with 0x02 (MQTT-3.1.3-8). Protocol name "MQTT"
// with a level other than 4, and "MQIsdp" (MQTT 3.1), are refused with 0x01, which a
// 3.1 client understands; any other protocol name is kMalformed (MQTT-3.1.2-1).
DecodeResult Decode(std::string_view input, const DecodeLimits& limits = {});

// Encoders append one packet to *out. Preconditions: the packet is one Decode()
// would accept (the encoder does not re-validate UTF-8 or topic syntax), every string
// fits in 65535 bytes, the remaining length fits in kMaxRemainingLength, QoS > 0 has
// a non-zero packet id, a password has a username. A violated length or id
// precondition is a bug in the caller and aborts the process.
void Encode(const Connect& p, std::string* out);
void Encode(const Connack& p, std::string* out);
void Encode(const Publish& p, std::string* out);
void Encode(const Puback& p, std::string* out);
void Encode(const Pubrec& p, std::string* out);
void Encode(const Pubrel& p, std::string* out);
void Encode(const Pubcomp& p, std::string* out);
void Encode(const Subscribe& p, std::string* out);
void Encode(const Suback& p, std::string* out);
void Encode(const Unsubscribe& p, std::string* out);
void Encode(const Unsuback& p, std::string* out);
void Encode(const Pingreq& p, std::string* out);
void Encode(const Pingresp& p, std::string* out);
void Encode(const Disconnect& p, std::string* out);
void Encode(const Packet& p, std::string* out);

// The bytes Encode(p) would append, for checking a message against a limit before
// encoding it. May exceed kMaxPacketSize, in which case `p` cannot be encoded.
size_t EncodedSize(const Publish& p);

}  // namespace herald::mqtt
