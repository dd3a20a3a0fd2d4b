// The JSON text helpers: escaping, and reading a flat object's members as the
// hot paths read attrs (nested values, escapes and malformed text).
#include "stream/json_text.h"

#include <gtest/gtest.h>

#include <map>

namespace herald::stream::json {
namespace {

std::map<std::string, std::string> Members(std::string_view text, bool* ok = nullptr) {
  std::map<std::string, std::string> out;
  MemberReader r(text);
  std::string_view k, v;
  while (r.Next(&k, &v)) out[std::string(k)] = std::string(v);
  if (ok) *ok = r.ok();
  return out;
}

TEST(JsonTextTest, ReadsMembersWithNestedValuesAndStringsThatLookLikeKeys) {
  bool ok = false;
  auto m = Members(R"( {"a":1, "b" : "x\",\"c\":2", "n":{"c":[1,{"d":"}"}]},"t":true,"e":-1.5e3 } )", &ok);
  EXPECT_TRUE(ok);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m["a"], "1");
  EXPECT_EQ(m["b"], R"("x\",\"c\":2")");
  EXPECT_EQ(m["n"], R"({"c":[1,{"d":"}"}]})");
  EXPECT_EQ(m["t"], "true");
  double v = 0;
  EXPECT_TRUE(NumberValue(m["e"], &v));
  EXPECT_EQ(v, -1500);
  std::string s;
  EXPECT_TRUE(StringValue(m["b"], &s));
  EXPECT_EQ(s, R"(x","c":2)");
  EXPECT_TRUE(Members("", &ok).empty());
  EXPECT_TRUE(ok);
  EXPECT_TRUE(Members("{}", &ok).empty());
  EXPECT_TRUE(ok);
}

TEST(JsonTextTest, MalformedObjectsStopTheReader) {
  for (const char* bad : {"[1]", R"({"a":1 "b":2})", R"({"a")", R"({"a":)", R"({"a":"x)", "{a:1}"}) {
    bool ok = true;
    Members(bad, &ok);
    EXPECT_FALSE(ok) << bad;
  }
}

TEST(JsonTextTest, StringValuesUnescapeAndNumbersAreStrict) {
  std::string s;
  EXPECT_TRUE(StringValue(R"("a\nb\t\\\/\u00e9\ud83d\ude00")", &s));
  EXPECT_EQ(s, "a\nb\t\\/\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_FALSE(StringValue("12", &s));
  EXPECT_FALSE(StringValue(R"("\q")", &s));
  std::string round;
  AppendString(&round, "q\"\\\x01");
  EXPECT_TRUE(StringValue(round, &s));
  EXPECT_EQ(s, "q\"\\\x01");
  double v = 0;
  EXPECT_FALSE(NumberValue("\"1\"", &v));
  EXPECT_FALSE(NumberValue("1x", &v));
  EXPECT_FALSE(NumberValue("+1", &v));
  EXPECT_TRUE(NumberValue("1700000000", &v));
  EXPECT_EQ(v, 1700000000);
}

}  // namespace
}  // namespace herald::stream::json
