// CRC-32C: a slicing-by-8 table implementation and an SSE4.2 one, picked once at
// start-up by CPUID.
#include "log/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace herald::eventlog::crc32c {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

// kTables[k][b] is the CRC of byte b followed by k zero bytes, so eight table
// look-ups advance the CRC by eight input bytes at once.
using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
    t[0][b] = c;
  }
  for (std::uint32_t b = 0; b < 256; ++b) {
    for (int k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  }
  return t;
}

constexpr Tables kTables = MakeTables();

std::uint64_t LoadLe64(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);  // herald targets little-endian hosts (see format.h)
  return v;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t ExtendSse42(std::uint32_t init, const char* p,
                                                            std::size_t n) {
  // The instruction works on the CRC register directly: pre- and post-invert as
  // the table version does, and feed it eight bytes at a time.
  std::uint64_t c = ~init;
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, LoadLe64(p));
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = _mm_crc32_u8(c32, static_cast<std::uint8_t>(*p));
  return ~c32;
}

bool DetectSse42() {
  return __builtin_cpu_supports("sse4.2");
}
#else
std::uint32_t ExtendSse42(std::uint32_t init, const char* p, std::size_t n) {
  return ExtendPortable(init, p, n);
}
bool DetectSse42() {
  return false;
}
#endif

const bool kAccelerated = DetectSse42();

}  // namespace

std::uint32_t ExtendPortable(std::uint32_t init, const char* p, std::size_t n) {
  std::uint32_t c = ~init;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t v = LoadLe64(p) ^ c;
    c = kTables[7][v & 0xff] ^ kTables[6][(v >> 8) & 0xff] ^ kTables[5][(v >> 16) & 0xff] ^
        kTables[4][(v >> 24) & 0xff] ^ kTables[3][(v >> 32) & 0xff] ^ kTables[2][(v >> 40) & 0xff] ^
        kTables[1][(v >> 48) & 0xff] ^ kTables[0][v >> 56];
  }
  for (; n > 0; ++p, --n) c = (c >> 8) ^ kTables[0][(c ^ static_cast<std::uint8_t>(*p)) & 0xff];
  return ~c;
}

std::uint32_t Extend(std::uint32_t init, const char* data, std::size_t n) {
  return kAccelerated ? ExtendSse42(init, data, n) : ExtendPortable(init, data, n);
}

bool IsAccelerated() {
  return kAccelerated;
}

}  // namespace herald::eventlog::crc32c
