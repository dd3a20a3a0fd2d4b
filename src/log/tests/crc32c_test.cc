// CRC-32C against published check values, and the two implementations against each other.
#include "log/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace herald::eventlog::crc32c {
namespace {

TEST(Crc32cTest, MatchesRfc3720CheckValues) {
  // RFC 3720 B.4 and the standard "123456789" check value.
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Value(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Value(ascending), 0x46DD794Eu);
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
  EXPECT_EQ(Value(""), 0u);
}

TEST(Crc32cTest, ExtendEqualsValueOfConcatenation) {
  std::string a = "hello, ", b = "world: a longer tail that spans several words";
  EXPECT_EQ(Extend(Value(a), b.data(), b.size()), Value(a + b));
}

TEST(Crc32cTest, PortableAndAcceleratedAgreeOnAllLengthsAndAlignments) {
  std::mt19937 rng(7);
  std::string data(4096, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (std::size_t start = 0; start < 9; ++start) {
    for (std::size_t n = 0; n < 300; n += 7) {
      ASSERT_EQ(ExtendPortable(0x1234, data.data() + start, n),
                Extend(0x1234, data.data() + start, n))
          << start << " " << n;
    }
  }
  EXPECT_EQ(ExtendPortable(0, data.data(), data.size()), Value(data));
}

TEST(Crc32cTest, DetectsSingleBitFlips) {
  std::string data = "an event record payload";
  const std::uint32_t crc = Value(data);
  for (std::size_t i = 0; i < data.size() * 8; ++i) {
    std::string flipped = data;
    flipped[i / 8] = static_cast<char>(flipped[i / 8] ^ (1 << (i % 8)));
    EXPECT_NE(Value(flipped), crc) << "bit " << i;
  }
}

}  // namespace
}  // namespace herald::eventlog::crc32c
