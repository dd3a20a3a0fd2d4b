#include "core/base64.h"

namespace herald {

std::string Base64UrlEncode(const unsigned char* data, size_t n) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((n * 4 + 2) / 3);
  unsigned bits = 0, acc = 0;
  for (size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | data[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

}  // namespace herald
