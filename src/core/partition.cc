#include "core/partition.h"

#include <cstring>

namespace herald {

std::uint32_t KafkaMurmur2(std::string_view data) {
  constexpr std::uint32_t kSeed = 0x9747b28c;
  constexpr std::uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const std::uint32_t len = static_cast<std::uint32_t>(data.size());
  std::uint32_t h = kSeed ^ len;
  const std::uint32_t blocks = len / 4;
  for (std::uint32_t i = 0; i < blocks; ++i) {
    // Little-endian word, as Kafka reads it.
    std::uint32_t k = static_cast<std::uint32_t>(p[4 * i]) |
                      static_cast<std::uint32_t>(p[4 * i + 1]) << 8 |
                      static_cast<std::uint32_t>(p[4 * i + 2]) << 16 |
                      static_cast<std::uint32_t>(p[4 * i + 3]) << 24;
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const unsigned char* tail = p + 4 * blocks;
  switch (len & 3) {
    case 3: h ^= static_cast<std::uint32_t>(tail[2]) << 16; [[fallthrough]];
    case 2: h ^= static_cast<std::uint32_t>(tail[1]) << 8; [[fallthrough]];
    case 1:
      h ^= tail[0];
      h *= kM;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return h;
}

}  // namespace herald
