// Golden bytes of an event log record (format.h) and of segment names.
#include "log/format.h"

#include <gtest/gtest.h>

namespace herald::eventlog::format {
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

TEST(LogFormatTest, RecordBytes) {
  std::string out;
  AppendRecord(&out, 258, 0x0102030405060708, "ab");
  // crc32c | len | offset | timestamp | payload, little-endian
  EXPECT_EQ(Hex(out).substr(8), "02000000" "0201000000000000" "0807060504030201" "6162");
  EXPECT_EQ(Hex(out).substr(0, 8), "f2af72c7");  // CRC-32C of bytes 4..
  EXPECT_TRUE(CrcMatches(out.data(), 2));
  std::string first;  // a record that another of the same append follows: the top bit of len
  AppendRecord(&first, 258, 0x0102030405060708, "ab", /*continues=*/true);
  EXPECT_EQ(Hex(first).substr(8, 8), "02000080");
  RecordHeader h = DecodeHeader(first.data());
  EXPECT_EQ(h.length, 2u);
  EXPECT_TRUE(h.continues);
  EXPECT_TRUE(CrcMatches(first.data(), 2));
  out[kHeaderSize] ^= 1;
  EXPECT_FALSE(CrcMatches(out.data(), 2));
}

TEST(LogFormatTest, SegmentNames) {
  EXPECT_EQ(SegmentFileName(1234), "00000000000000001234.log");
  std::uint64_t base = 0;
  EXPECT_TRUE(ParseSegmentFileName("00000000000000001234.log", &base));
  EXPECT_EQ(base, 1234u);
  EXPECT_FALSE(ParseSegmentFileName("1234.log", &base));
}

}  // namespace
}  // namespace herald::eventlog::format
