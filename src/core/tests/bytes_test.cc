// The encodings of core/bytes.h, byte for byte: every durable record builds on them.
#include "core/bytes.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

TEST(BytesTest, GoldenEncodings) {
  std::string out;
  ByteWriter w(&out);
  w.Varint(0);
  w.Varint(127);
  w.Varint(128);
  w.Varint(300);
  EXPECT_EQ(Hex(out), "007f8001ac02");
  out.clear();
  w.Zigzag(0);
  w.Zigzag(-1);
  w.Zigzag(1);
  w.Zigzag(-64);
  EXPECT_EQ(Hex(out), "0001027f");
  out.clear();
  w.Fixed<std::uint16_t>(0x1234);
  w.Fixed<std::int64_t>(-2);
  EXPECT_EQ(Hex(out), "3412feffffffffffffff");
  out.clear();
  w.FixedBE<std::uint16_t>(0x1234);
  w.FixedBE<std::uint64_t>(1);
  EXPECT_EQ(Hex(out), "12340000000000000001");
  out.clear();
  w.String("ab");
  w.Fixed(1.0);
  EXPECT_EQ(Hex(out), "026162000000000000f03f");
}

TEST(BytesTest, RoundTripsExtremes) {
  std::string out;
  ByteWriter w(&out);
  w.Varint(~0ull);
  w.Zigzag(INT64_MIN);
  w.Zigzag(INT64_MAX);
  w.FixedBE<std::uint32_t>(0xdeadbeef);
  w.String(std::string(300, 'x'));
  ByteReader r(out);
  std::uint64_t u;
  std::int64_t a, b;
  std::uint32_t be;
  std::string_view s;
  ASSERT_TRUE(r.Varint(&u) && r.Zigzag(&a) && r.Zigzag(&b) && r.FixedBE(&be) && r.String(&s));
  EXPECT_EQ(u, ~0ull);
  EXPECT_EQ(a, INT64_MIN);
  EXPECT_EQ(b, INT64_MAX);
  EXPECT_EQ(be, 0xdeadbeefu);
  EXPECT_EQ(s.size(), 300u);
  EXPECT_TRUE(r.done());
}

TEST(BytesTest, MalformedInputFailsAndStaysFailed) {
  // Truncated varint, an 11-byte varint, a string longer than the input, a value
  // too large for its type.
  for (std::string bad : {std::string("\x80"), std::string(11, '\x80'), std::string("\x05" "ab")}) {
    ByteReader r(bad);
    std::string_view s;
    EXPECT_FALSE(r.String(&s)) << Hex(bad);
    EXPECT_FALSE(r.ok());
    std::uint8_t b;
    EXPECT_FALSE(r.Byte(&b));
    EXPECT_FALSE(r.done());
  }
  std::string big;
  ByteWriter(&big).Varint(256);
  std::uint8_t small;
  EXPECT_FALSE(ByteReader(big).Uint(&small));
  std::string neg;
  ByteWriter(&neg).Zigzag(-129);
  std::int8_t i8;
  EXPECT_FALSE(ByteReader(neg).Zigzag(&i8));
}

}  // namespace
}  // namespace herald
