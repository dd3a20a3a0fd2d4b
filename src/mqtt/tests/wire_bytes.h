// Hand-built wire bytes for the codec tests. Independent of the codec's own writer,
// so an encoder bug cannot hide behind a matching test-side bug.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "mqtt/codec.h"

namespace herald::mqtt::testing {

// Bytes({0x10, 0x0D}) -> "\x10\x0D".
inline std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

// A uint16 length prefix and then `s` (an MQTT string or binary field).
inline std::string Str(std::string_view s) {
  std::string out = Bytes({static_cast<int>(s.size() >> 8), static_cast<int>(s.size() & 0xFF)});
  out.append(s);
  return out;
}

// A whole packet: byte 0, the minimal remaining-length varint, then `body`.
inline std::string Frame(int byte0, std::string_view body) {
  std::string out = Bytes({byte0});
  size_t n = body.size();
  do {
    int digit = static_cast<int>(n & 0x7F);
    n >>= 7;
    out.push_back(static_cast<char>(n > 0 ? digit | 0x80 : digit));
  } while (n > 0);
  out.append(body);
  return out;
}

// A CONNECT variable header for protocol "MQTT" level 4.
inline std::string ConnectHeader(int flags, int keep_alive = 60) {
  return Str("MQTT") + Bytes({4, flags, keep_alive >> 8, keep_alive & 0xFF});
}

inline std::string EncodeToString(const Packet& p) {
  std::string out;
  Encode(p, &out);
  return out;
}

}  // namespace herald::mqtt::testing
