// The simulated population and its behaviour: the classes' shares, the open rate
// by hour calibrated to the source's table, the content effects, fatigue, and a
// population that is a function of its seed.
#include "sim/population.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/send_time.h"
#include "sim/report.h"

namespace herald::sim {
namespace {

TEST(PopulationTest, TheClassesShareThePopulationAndTheHourlyRateIsTheSources) {
  double shares = 0;
  for (const auto& c : Classes()) shares += c.share;
  EXPECT_NEAR(shares, 1, 1e-9);
  for (int h = 0; h < 24; ++h) {
    double avg = 0, activity = 0;
    for (size_t c = 0; c < kClasses; ++c) avg += Classes()[c].share * BaseOpen(c, h);
    EXPECT_NEAR(avg, model::SourceOpenRate(h), 1e-12) << h;
    for (int k = 0; k < 24; ++k) activity += ActivityShare(h % kClasses, k);
    EXPECT_NEAR(activity, 1, 1e-12);
  }
  // Night owls open at night, students in the evening, more than average.
  EXPECT_GT(BaseOpen(9, 1), model::SourceOpenRate(1));
  EXPECT_GT(BaseOpen(6, 20), model::SourceOpenRate(20));
}

TEST(PopulationTest, APopulationIsAFunctionOfItsSeed) {
  const auto a = MakePopulation(20000, 7, DefaultZones()), b = MakePopulation(20000, 7, DefaultZones());
  const auto c = MakePopulation(20000, 8, DefaultZones());
  size_t same = 0, shanghai = 0;
  std::array<size_t, kClasses> by_class{};
  for (size_t i = 0; i < a.users.size(); ++i) {
    EXPECT_EQ(a.users[i].cls, b.users[i].cls);
    EXPECT_EQ(a.users[i].follows, b.users[i].follows);
    same += a.users[i].cls == c.users[i].cls;
    shanghai += a.zones[a.users[i].zone].zone == "Asia/Shanghai";
    ++by_class[a.users[i].cls];
  }
  EXPECT_LT(same, a.users.size());  // another seed, another population
  EXPECT_NEAR(static_cast<double>(shanghai) / 20000, 0.85, 0.02);
  for (size_t k = 0; k < kClasses; ++k) {
    EXPECT_NEAR(static_cast<double>(by_class[k]) / 20000, Classes()[k].share, 0.01) << Classes()[k].name;
  }
}

TEST(PopulationTest, ZonesParseAndBadOnesAreNamed) {
  auto z = ParseZones("Asia/Shanghai=3,Europe/London=1");
  ASSERT_TRUE(z.ok());
  EXPECT_DOUBLE_EQ((*z)[0].share, 0.75);
  EXPECT_NE(ParseZones("Mars/Olympus=1").status().message().find("unknown time zone"), std::string::npos);
  EXPECT_NE(ParseZones("Asia/Shanghai=-1").status().message().find("positive"), std::string::npos);
  EXPECT_NE(ParseZones("Asia/Shanghai").status().message().find("ZONE=SHARE"), std::string::npos);
}

// The rate of an outcome over many draws.
template <typename F>
double RateOf(F outcome, int n = 200000) {
  int k = 0;
  for (int i = 0; i < n; ++i) k += outcome(Mix(99, static_cast<std::uint64_t>(i)));
  return static_cast<double>(k) / n;
}

TEST(PopulationTest, ContentAndFatigueMoveTheOutcomesAsTheSourceSays) {
  SimUser u;
  u.cls = 11;  // low_frequency: a tolerance of 2 pushes a day
  SimAccount plain{"a", "A", "business", 0, "Today's picks", "image_text", 1, 1};
  SimAccount digits = plain, emoji = plain, video = plain;
  digits.title = "5 picks today";
  emoji.title = "Today's picks \xF0\x9F\x94\xA5";
  video.form = "video";
  const double open = RateOf([&](std::uint64_t d) { return Respond(u, plain, 1, 8, 0, false, d).opened; });
  EXPECT_NEAR(open, BaseOpen(11, 8), 0.002);
  const double open_digits = RateOf([&](std::uint64_t d) { return Respond(u, digits, 1, 8, 0, false, d).opened; });
  EXPECT_NEAR(open_digits / open, 1.19, 0.06);
  // Clicks and conversions, per open (ten times as many draws at a high rate).
  u.cls = 10;
  auto ctr = [&](const SimAccount& a) {
    int opened = 0, clicked = 0, converted = 0;
    for (int i = 0; i < 400000; ++i) {
      const auto o = Respond(u, a, 8, 8, 0, false, Mix(5, static_cast<std::uint64_t>(i)));
      opened += o.opened;
      clicked += o.clicked;
      converted += o.converted;
    }
    return std::pair<double, double>{static_cast<double>(clicked) / opened, static_cast<double>(converted) / clicked};
  };
  EXPECT_NEAR(ctr(emoji).first / ctr(plain).first, 1.27, 0.05);
  EXPECT_NEAR(ctr(video).second / ctr(plain).second, 1.41, 0.15);
  // Fatigue: two pushes past the tolerance cut opens by 36%, and bring marks.
  u.cls = 11;
  const double tired = RateOf([&](std::uint64_t d) { return Respond(u, plain, 1, 8, 3, false, d).opened; });
  EXPECT_NEAR(tired / open, 0.64, 0.05);
  EXPECT_EQ(RateOf([&](std::uint64_t d) { return Respond(u, plain, 1, 8, 0, false, d).uninstall; }), 0);
  EXPECT_GT(RateOf([&](std::uint64_t d) { return Respond(u, plain, 1, 8, 6, true, d).uninstall; }), 0.005);
}

TEST(ReportTest, WilsonIntervals) {
  auto [lo, hi] = Wilson(50, 1000);
  EXPECT_NEAR(lo, 0.0382, 0.0005);
  EXPECT_NEAR(hi, 0.0653, 0.0005);
  EXPECT_EQ(Wilson(0, 0), std::make_pair(0.0, 0.0));
}

}  // namespace
}  // namespace herald::sim
