// Segment expressions: what parses, what each predicate means, errors with their
// position, limits, and counts against a brute-force reference on random users.
#include "profile/segment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

namespace herald::profile {
namespace {

constexpr Micros kDay = 86400 * kMicrosPerSecond;
constexpr Micros kNow = 1772323200LL * kMicrosPerSecond;

struct User final : ProfileView {
  std::string text[kFieldCount];
  double age = NAN;
  Micros last_active = 0, registered = 0;
  std::map<std::string, double> tags;
  std::set<std::string> follows;
  double lat = 0, lng = 0;
  bool located = false;

  std::string_view Text(int f) const override { return text[f]; }
  double Number(int f) const override { return f == kAge ? age : NAN; }
  Micros Time(int f) const override { return f == kLastActive ? last_active : registered; }
  double Tag(std::string_view t) const override {
    auto it = tags.find(std::string(t));
    return it == tags.end() ? 0 : it->second;
  }
  bool Follows(std::string_view a) const override { return follows.count(std::string(a)) > 0; }
  bool Member(std::string_view) const override { return false; }
  bool Near(double la, double ln, double m) const override {
    if (!located) return false;
    const double dy = (lat - la) * 111320, dx = (lng - ln) * 111320 * std::cos(la * M_PI / 180);
    return std::sqrt(dx * dx + dy * dy) <= m;
  }
};

bool Match(const std::string& expr, const User& u) {
  auto s = Segment::Compile(expr);
  EXPECT_TRUE(s.ok()) << expr << ": " << s.status().message();
  return s.ok() && s->Matches(u, kNow);
}

TEST(SegmentTest, TheExampleFromTheIssueMeansWhatItSays) {
  User u;
  u.text[kClass] = "student";
  u.text[kRegion] = "Guangdong";
  u.age = 19;
  u.tags["finance"] = 0.5;
  u.last_active = kNow - 2 * kDay;
  u.follows.insert("acct_42");
  const std::string e =
      "class in (student, new_user) and age >= 18 and region = \"Guangdong\" and tag(\"finance\") > 0.3 "
      "and last_active < 7d and follows(\"acct_42\")";
  EXPECT_TRUE(Match(e, u));
  u.age = 17;
  EXPECT_FALSE(Match(e, u));
  u.age = 19;
  u.last_active = kNow - 8 * kDay;
  EXPECT_FALSE(Match(e, u));
  u.last_active = 0;  // never active: no age to compare
  EXPECT_FALSE(Match("last_active < 7d", u));
  EXPECT_FALSE(Match("last_active > 7d", u));
}

TEST(SegmentTest, PrecedenceNotAndNear) {
  User u;
  u.text[kOs] = "android";
  u.located = true;
  u.lat = 31.24;
  u.lng = 121.48;
  EXPECT_TRUE(Match("near(31.23, 121.47, 3km)", u));
  EXPECT_FALSE(Match("near(31.23, 121.47, 1km)", u));
  EXPECT_TRUE(Match("not os = \"ios\"", u));
  EXPECT_TRUE(Match("os = \"ios\" or os = \"android\" and not follows(\"x\")", u));  // and binds tighter
  EXPECT_EQ(Segment::Compile("a_x = 1 or b").status().ok(), false);
  EXPECT_EQ(Segment::Compile("os = ios or os = android and age > 3").value().ToString(),
            "os = \"ios\" or os = \"android\" and age > 3");
  EXPECT_EQ(Segment::Compile("(os = ios or os = android) and not (age > 3 or age < 1)").value().ToString(),
            "(os = \"ios\" or os = \"android\") and not (age > 3 or age < 1)");
}

TEST(SegmentTest, ErrorsGiveThePositionAndWhatWasExpected) {
  struct Case {
    const char* expr;
    size_t pos;
    const char* want;
  } cases[] = {
      {"", 0, "expected a field"},
      {"age >= ", 7, "expected a number, got the end"},
      {"class in (student", 17, "expected ',' or ')'"},
      {"colour = \"red\"", 0, "unknown field \"colour\""},
      {"age = \"x\"", 6, "expected a number"},
      {"region > \"a\"", 7, "region is text"},
      {"last_active < 7", 14, "expected a duration"},
      {"tag(finance) > 1", 4, "expected a string"},
      {"near(95, 0, 1km)", 5, "latitude must be between -90 and 90"},
      {"near(31.2, 121.4, 500m)", 18, "between 1km and 1000km"},
      {"age > 3 age > 4", 8, "expected \"and\", \"or\" or the end"},
      {"(age > 3", 8, "expected ')'"},
      {"region = \"open", 9, "unterminated string"},
      {"age > 3 # x", 8, "unexpected character '#'"},
      {"last_active < 7w", 14, "unknown unit \"w\""},
  };
  for (const auto& c : cases) {
    size_t pos = 999;
    auto s = Segment::Compile(c.expr, &pos);
    ASSERT_FALSE(s.ok()) << c.expr;
    EXPECT_EQ(pos, c.pos) << c.expr << ": " << s.status().message();
    EXPECT_NE(s.status().message().find(c.want), std::string::npos) << c.expr << ": " << s.status().message();
  }
}

TEST(SegmentTest, HugeAndDeepExpressionsAreRefusedClearly) {
  std::string deep(10000, '(');
  deep += "age > 1";
  deep += std::string(10000, ')');
  size_t pos = 0;
  auto s = Segment::Compile(deep, &pos);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("nested deeper than 64"), std::string::npos);
  EXPECT_EQ(pos, 64u);
  std::string nots;
  for (int i = 0; i < 10000; ++i) nots += "not ";
  EXPECT_FALSE(Segment::Compile(nots + "age > 1").ok());
  std::string big = "age > 1";
  while (big.size() <= 100 * 1024) big += " or age > 1";
  auto b = Segment::Compile(big);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("longer than 65536 bytes"), std::string::npos);
  // A long chain within the limits compiles (or/and chains do not count as nesting),
  // up to 256 predicates.
  std::string chain = "age > 1";
  for (int i = 1; i < 256; ++i) chain += " or age > 1";
  EXPECT_TRUE(Segment::Compile(chain).ok());
  chain += " and age > 2";
  auto many = Segment::Compile(chain, &pos);
  ASSERT_FALSE(many.ok());
  EXPECT_NE(many.status().message().find("more than 256 predicates"), std::string::npos);
  EXPECT_EQ(pos, chain.size() - 7);
}

TEST(SegmentTest, CountsMatchABruteForceReferenceOnRandomUsers) {
  std::mt19937 rng(3);
  const char* classes[] = {"student", "new_user", "executive", "dormant"};
  const char* regions[] = {"Guangdong", "Beijing", "Shanghai"};
  std::vector<User> users(20000);
  for (auto& u : users) {
    u.text[kClass] = classes[rng() % 4];
    u.text[kRegion] = regions[rng() % 3];
    u.text[kOs] = rng() % 2 ? "ios" : "android";
    if (rng() % 10) u.age = static_cast<double>(12 + rng() % 60);
    if (rng() % 5) u.last_active = kNow - static_cast<Micros>(rng() % 30) * kDay - static_cast<Micros>(rng() % 86400) * kMicrosPerSecond;
    if (rng() % 2) u.tags["finance"] = (rng() % 100) / 100.0;
    if (rng() % 3 == 0) u.follows.insert("acct_42");
  }
  struct Case {
    const char* expr;
    std::function<bool(const User&)> ref;
  } cases[] = {
      {"class in (student, new_user) and age >= 18 and region = \"Guangdong\" and tag(\"finance\") > 0.3 and "
       "last_active < 7d",
       [](const User& u) {
         return (u.text[kClass] == "student" || u.text[kClass] == "new_user") && !std::isnan(u.age) && u.age >= 18 &&
                u.text[kRegion] == "Guangdong" && u.Tag("finance") > 0.3 && u.last_active &&
                kNow - u.last_active < 7 * kDay;
       }},
      {"not (os = \"ios\" or follows(\"acct_42\")) and age < 30",
       [](const User& u) {
         return !(u.text[kOs] == "ios" || u.Follows("acct_42")) && !std::isnan(u.age) && u.age < 30;
       }},
      {"region != \"Beijing\" or last_active > 20d",
       [](const User& u) { return u.text[kRegion] != "Beijing" || (u.last_active && kNow - u.last_active > 20 * kDay); }},
  };
  for (const auto& c : cases) {
    auto s = Segment::Compile(c.expr).value();
    size_t got = 0, want = 0;
    for (const auto& u : users) {
      got += s.Matches(u, kNow);
      want += c.ref(u);
    }
    EXPECT_EQ(got, want) << c.expr;
    EXPECT_GT(want, 0u) << c.expr;
  }
}

}  // namespace
}  // namespace herald::profile
