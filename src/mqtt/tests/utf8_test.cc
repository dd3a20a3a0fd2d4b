// UTF-8 validation for MQTT strings (MQTT-1.5.3-1, MQTT-1.5.3-2).
#include <gtest/gtest.h>

#include <string>

#include "mqtt/topic.h"

namespace herald::mqtt {
namespace {

std::string S(std::string_view s) { return std::string(s); }

TEST(Utf8Test, WellFormedSequencesOfEveryLengthAreValid) {
  for (std::string_view s : {"", "plain ascii", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9D\x84\x9E",
                             "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xF0\x90\x80\x80"}) {
    EXPECT_TRUE(ValidUtf8String(s)) << s;
  }
}

// Section 1.5.3.1, figure 1.3: "A" then U+2A6D4.
TEST(Utf8Test, SpecExampleIsValid) { EXPECT_TRUE(ValidUtf8String("\x41\xF0\xAA\x9B\x94")); }

TEST(Utf8Test, CodePointsNextToTheForbiddenRangesAreValid) {
  EXPECT_TRUE(ValidUtf8String("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(ValidUtf8String("\xEE\x80\x80"));      // U+E000, just above them
  EXPECT_TRUE(ValidUtf8String("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the last code point
}

TEST(Utf8Test, DiscouragedButLegalCharactersAreAccepted) {
  EXPECT_TRUE(ValidUtf8String("\x01\x1F\x7F"));  // controls: SHOULD NOT, not MUST NOT
  EXPECT_TRUE(ValidUtf8String("\xC2\x9F"));      // U+009F
  EXPECT_TRUE(ValidUtf8String("\xEF\xBF\xBF"));  // U+FFFF, a non-character
  EXPECT_TRUE(ValidUtf8String("\xEF\xBB\xBFx"));  // U+FEFF is kept, not skipped (MQTT-1.5.3-3)
}

TEST(Utf8Test, NulIsRejectedAnywhere) {
  EXPECT_FALSE(ValidUtf8String(std::string_view("\0", 1)));
  EXPECT_FALSE(ValidUtf8String(std::string_view("ab\0", 3)));
  // Inside the 8-byte ASCII fast path, at each position.
  for (size_t i = 0; i < 16; ++i) {
    std::string s(16, 'a');
    s[i] = '\0';
    EXPECT_FALSE(ValidUtf8String(s)) << i;
  }
}

TEST(Utf8Test, OverlongEncodingsAreRejected) {
  for (std::string_view s : {"\xC0\x80", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xE0\x9F\xBF",
                             "\xF0\x80\x80\xAF", "\xF0\x8F\xBF\xBF"}) {
    EXPECT_FALSE(ValidUtf8String(s)) << ::testing::PrintToString(S(s));
  }
}

TEST(Utf8Test, SurrogatesAreRejected) {
  for (std::string_view s : {"\xED\xA0\x80", "\xED\xAF\xBF", "\xED\xB0\x80", "\xED\xBF\xBF",
                             "\xED\xA0\xBD\xED\xB8\x80"}) {  // the last is CESU-8 for U+1F600
    EXPECT_FALSE(ValidUtf8String(s)) << ::testing::PrintToString(S(s));
  }
}

TEST(Utf8Test, CodePointsAboveU10FFFFAreRejected) {
  for (std::string_view s : {"\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF7\xBF\xBF\xBF",
                             "\xF8\x88\x80\x80\x80", "\xFC\x84\x80\x80\x80\x80"}) {
    EXPECT_FALSE(ValidUtf8String(s)) << ::testing::PrintToString(S(s));
  }
}

TEST(Utf8Test, StrayAndTruncatedBytesAreRejected) {
  for (std::string_view s : {"\x80", "\xBF", "a\x80z", "\xFE", "\xFF", "\xC3", "\xE2\x82",
                             "\xF0\x9D\x84", "\xC3\x41", "\xE2\x28\xA1", "\xF0\x9D\x84\x41"}) {
    EXPECT_FALSE(ValidUtf8String(s)) << ::testing::PrintToString(S(s));
  }
}

TEST(Utf8Test, MultiByteAfterAsciiRunIsChecked) {
  std::string good = std::string(13, 'x') + "\xE2\x82\xAC";
  EXPECT_TRUE(ValidUtf8String(good));
  std::string truncated = std::string(13, 'x') + "\xE2\x82";
  EXPECT_FALSE(ValidUtf8String(truncated));
  std::string high_in_word = "abc\xC3\xA9" "defghij";  // a non-ASCII byte inside a word
  EXPECT_TRUE(ValidUtf8String(high_in_word));
}

}  // namespace
}  // namespace herald::mqtt
