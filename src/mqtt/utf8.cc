// UTF-8 validation for MQTT strings (standard section 1.5.3, RFC 3629).
#include <cstdint>
#include <cstring>

#include "mqtt/topic.h"

namespace herald::mqtt {
namespace {

// The length of the sequence a lead byte starts and the payload bits it carries,
// or 0 for a byte that cannot start one (a continuation byte, 0xF8..0xFF).
struct Lead {
  size_t length;
  uint32_t bits;
  uint32_t min;  // the smallest code point of that length; below it is overlong
};

Lead DecodeLead(unsigned char c) {
  if ((c & 0xE0) == 0xC0) return {2, c & 0x1Fu, 0x80};
  if ((c & 0xF0) == 0xE0) return {3, c & 0x0Fu, 0x800};
  if ((c & 0xF8) == 0xF0) return {4, c & 0x07u, 0x10000};
  return {0, 0, 0};
}

// Validates the multi-byte sequence at s[0..n) and returns its length, or 0.
size_t MultiByteLength(const unsigned char* s, size_t n) {
  Lead lead = DecodeLead(s[0]);
  if (lead.length == 0 || n < lead.length) return 0;
  uint32_t cp = lead.bits;
  for (size_t k = 1; k < lead.length; ++k) {
    if ((s[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[k] & 0x3Fu);
  }
  if (cp < lead.min || cp > 0x10FFFF) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;  // surrogates are not characters
  return lead.length;
}

// True when the 8 bytes at p are all ASCII and none is NUL.
bool PlainAsciiWord(const unsigned char* p) {
  uint64_t w = 0;
  std::memcpy(&w, p, sizeof w);
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  bool has_zero = ((w - kOnes) & ~w & kHigh) != 0;
  return (w & kHigh) == 0 && !has_zero;
}

}  // namespace

bool ValidUtf8String(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // Topics and client ids are nearly always ASCII: skip it a word at a time.
    if (n - i >= 8 && PlainAsciiWord(p + i)) {
      i += 8;
      continue;
    }
    if (p[i] < 0x80) {
      if (p[i] == 0) return false;  // MQTT-1.5.3-2
      ++i;
      continue;
    }
    size_t len = MultiByteLength(p + i, n - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

}  // namespace herald::mqtt
