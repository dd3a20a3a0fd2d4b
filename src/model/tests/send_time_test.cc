// The send-time model: it finds planted best hours, separates weekdays from
// weekends, leans on the population for new users, and Thompson sampling
// explores while the evidence is thin.
#include "model/send_time.h"

#include <gtest/gtest.h>

#include <cctz/time_zone.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

namespace herald::model {
namespace {

int Distance(int a, int b) {
  const int d = std::abs(a - b) % 24;
  return std::min(d, 24 - d);
}

// A user active on most days around their own hour (±1, sometimes off by a few
// hours), plus random noise hours.
std::uint32_t Day(std::mt19937_64& rng, int best) {
  std::uint32_t hours = 0;
  if (rng() % 10 < 7) hours |= 1u << ((best + static_cast<int>(rng() % 3) + 23) % 24);
  for (int i = 0; i < 2; ++i) hours |= 1u << (rng() % 24);
  return hours;
}

TEST(SendTimeTest, FindsMostUsersPlantedHourWithinAnHour) {
  std::mt19937_64 rng(5);
  SendTimeModel model;
  std::vector<int> best(500);
  std::vector<SendTimeUser> users(500);
  for (auto& b : best) b = static_cast<int>(rng() % 24);
  for (int day = 0; day < 30; ++day) {
    for (size_t u = 0; u < users.size(); ++u) {
      const std::uint32_t hours = Day(rng, best[u]);
      model.AddDay(users[u], 0, hours);
      model.AddPopulationDay(0, hours);
    }
  }
  int found = 0;
  for (size_t u = 0; u < users.size(); ++u) found += Distance(model.BestHour(users[u], 0), best[u]) <= 1;
  EXPECT_GT(found, 450) << found << " of 500";
}

TEST(SendTimeTest, WeekdaysAndWeekendsHaveTheirOwnHours) {
  std::mt19937_64 rng(6);
  SendTimeModel model;
  SendTimeUser u;
  for (int day = 0; day < 60; ++day) {
    const int kind = day % 7 >= 5 ? 1 : 0;
    model.AddDay(u, kind, Day(rng, kind ? 11 : 20));
  }
  EXPECT_LE(Distance(model.BestHour(u, 0), 20), 1);
  EXPECT_LE(Distance(model.BestHour(u, 1), 11), 1);
}

TEST(SendTimeTest, ColdStartFollowsTheSourcesHourlyTable) {
  EXPECT_DOUBLE_EQ(SourceOpenRate(6), 0.032);
  EXPECT_DOUBLE_EQ(SourceOpenRate(8), 0.068);
  EXPECT_DOUBLE_EQ(SourceOpenRate(12), 0.051);
  EXPECT_DOUBLE_EQ(SourceOpenRate(19), 0.047);
  EXPECT_DOUBLE_EQ(SourceOpenRate(22), 0.021);
  EXPECT_LT(SourceOpenRate(3), SourceOpenRate(22));
  EXPECT_DOUBLE_EQ(SourceOpenRate(24 + 8), SourceOpenRate(8));
  // With no evidence at all, a user's best hour is the source's: 08:00.
  SendTimeModel empty;
  EXPECT_EQ(empty.BestHour(SendTimeUser{}, 0), 8);
  EXPECT_EQ(empty.PopulationBestHour(1), 8);
}

TEST(SendTimeTest, ANewUserGetsThePopulationsHour) {
  std::mt19937_64 rng(7);
  SendTimeModel model;
  for (int i = 0; i < 1000; ++i) model.AddPopulationDay(0, Day(rng, 8));
  EXPECT_LE(Distance(model.PopulationBestHour(0), 8), 1);
  EXPECT_EQ(model.BestHour(SendTimeUser{}, 0), model.PopulationBestHour(0));
}

TEST(SendTimeTest, ThompsonSamplingExploresThinEvidenceAndSettlesOnStrongEvidence) {
  std::mt19937_64 rng(8);
  SendTimeModel model;
  SendTimeUser thin, strong;
  model.AddDay(thin, 0, 1u << 9);
  for (int d = 0; d < 200; ++d) model.AddDay(strong, 0, 1u << 9);
  std::set<int> thin_hours;
  std::map<int, int> strong_hours;
  for (int i = 0; i < 500; ++i) {
    thin_hours.insert(model.SampleHour(thin, 0, 6, 22, rng));
    ++strong_hours[model.SampleHour(strong, 0, 6, 22, rng)];
  }
  EXPECT_GT(thin_hours.size(), 6u);  // explores hours it knows little about
  int near = 0;
  for (auto [h, n] : strong_hours) near += Distance(h, 9) <= 1 ? n : 0;
  EXPECT_GT(near, 480);
  // The window is respected, also when it wraps past midnight.
  for (int i = 0; i < 200; ++i) {
    const int h = model.SampleHour(thin, 0, 22, 2, rng);
    EXPECT_TRUE(h >= 22 || h <= 2) << h;
  }
}

TEST(SendTimeTest, TheBestTimeInAWindowIsTheUsersHourInTheirZone) {
  std::mt19937_64 rng(10);
  SendTimeModel model;
  SendTimeUser u;
  for (int d = 0; d < 120; ++d) model.AddDay(u, d % 7 >= 5 ? 1 : 0, 1u << 19);  // 19:00 local, every day
  cctz::time_zone sh;
  ASSERT_TRUE(cctz::load_time_zone("Asia/Shanghai", &sh));
  // A window of 2026-03-04 (a Wednesday) 08:00 to 23:00 in Shanghai.
  const Micros from = 1772582400LL * kMicrosPerSecond, to = from + 15 * 3600 * kMicrosPerSecond;
  int near19 = 0;  // 18:00, 19:00 or 20:00: each is within an hour of the user's 19:00
  for (int i = 0; i < 200; ++i) {
    const Micros t = BestTimeInWindow(model, u, from, to, sh, rng);
    EXPECT_GE(t, from);
    EXPECT_LT(t, to);
    near19 += t >= from + 10 * 3600 * kMicrosPerSecond && t <= from + 12 * 3600 * kMicrosPerSecond &&
              (t - from) % (3600 * kMicrosPerSecond) == 0;
  }
  EXPECT_GT(near19, 190);
  // A window of 20 minutes: its start.
  EXPECT_EQ(BestTimeInWindow(model, u, from + 600, from + 1200, sh, rng), from + 600);
}

TEST(SendTimeTest, EvalSendTimeBeatsBothBaselinesOnPlantedHoursAndNamesBadLines) {
  std::mt19937_64 rng(9);
  auto path = (std::filesystem::temp_directory_path() / "sendtime-eval.csv").string();
  {
    std::ofstream out(path);
    out << "user_id,ts,type,tz\n";
    const long start = 1772323200;  // 2026-03-01T00:00:00Z
    for (int u = 0; u < 300; ++u) {
      const int weekday = static_cast<int>(rng() % 24), weekend = static_cast<int>(rng() % 24);
      for (int day = 0; day < 45; ++day) {
        const long d0 = start + day * 86400L;
        const int kind = ((day + 6) % 7) >= 5 ? 1 : 0;  // 1 March 2026 is a Sunday
        std::uint32_t hours = Day(rng, kind ? weekend : weekday);
        for (int h = 0; h < 24; ++h) {
          if ((hours >> h) & 1) out << "u" << u << "," << d0 + h * 3600 + 120 << ",active,UTC\n";
        }
      }
    }
  }
  auto r = EvalSendTime(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::string last = r->substr(r->rfind("hit_rate"));
  double model = 0, global = 0, mode = 0;
  ASSERT_EQ(std::sscanf(last.c_str(), "hit_rate model=%lf global_best_hour=%lf user_mode=%lf", &model, &global, &mode), 3)
      << last;
  EXPECT_GT(model, global) << last;
  EXPECT_GT(model, mode) << last;
  std::ofstream(path) << "user_id,ts,type\nu1,1772323200,active\nu1,1772323200,jumped\n";
  auto bad = EvalSendTime(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(":3: type must be sent, opened or active"), std::string::npos)
      << bad.status().message();
  std::ofstream(path) << "user,when\n";
  EXPECT_NE(EvalSendTime(path).status().message().find(":1: the header"), std::string::npos);
  std::ofstream(path) << "";
  EXPECT_FALSE(EvalSendTime(path).ok());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace herald::model
