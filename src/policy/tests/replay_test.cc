// What-if replay: the same history under two configs gives the counts each
// config's rules imply, deferred pushes are decided again when they are due,
// and suppressed pushes take their later events with them.
#include "policy/replay.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <cstdio>
#include <fstream>

namespace herald::policy {
namespace {

std::string Line(const char* type, const char* user, long ts, const char* msg) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "{\"user_id\":\"%s\",\"type\":\"%s\",\"ts\":%ld,\"account_id\":\"a1\",\"message_id\":\"%s\"}\n", user,
                type, ts, msg);
  return buf;
}

TEST(ReplayTest, TwoConfigsCountWhatTheirRulesImply) {
  const long day = 1772366400;  // 2026-03-01T12:00:00Z
  std::string nd;
  for (int i = 0; i < 5; ++i) nd += Line("sent", "u1", day + i * 60, i == 0 ? "m0" : i == 1 ? "m1" : i == 2 ? "m2" : i == 3 ? "m3" : "m4");
  // A push at 23:00 UTC waits for the end of quiet hours (07:30) and is then allowed.
  nd += Line("sent", "u2", day + 11 * 3600, "q1");
  nd += "{\"user_id\":\"u3\",\"type\":\"bogus\",\"ts\":1}\n";  // rejected
  nd += Line("opened", "u1", day + 600, "m4");               // gone under the alternative
  auto path = std::filesystem::temp_directory_path() / ("replay-" + std::to_string(::getpid()) + ".ndjson");
  std::ofstream(path) << nd;

  PolicyConfig current, strict;
  strict.daily_cap = 2;
  ASSERT_TRUE(current.Resolve().ok());
  ASSERT_TRUE(strict.Resolve().ok());
  Replay replay({current, strict}, "default", {});
  ASSERT_TRUE(ReplayFrom(path.string(), replay).ok());
  auto totals = replay.Finish();
  std::filesystem::remove(path);
  ASSERT_EQ(totals.size(), 2u);
  EXPECT_EQ(replay.events(), 7u);
  EXPECT_EQ(replay.rejected(), 1u);
  for (const auto& t : totals) {
    EXPECT_EQ(t.candidates, 6u);
    EXPECT_EQ(t.deferred, 1u);
    EXPECT_EQ(t.deferred_then_allowed, 1u);
  }
  EXPECT_EQ(totals[0].allowed, 5u);
  EXPECT_EQ(totals[0].suppressed[static_cast<size_t>(Rule::kDailyCap)], 0u);
  EXPECT_EQ(totals[1].allowed, 2u);
  EXPECT_EQ(totals[1].suppressed[static_cast<size_t>(Rule::kDailyCap)], 3u);
  EXPECT_EQ(totals[0].max_per_user_day, 5u);
  EXPECT_EQ(totals[1].max_per_user_day, 2u);
  EXPECT_NE(FormatReplay({"current", "strict"}, totals, replay, 1.0).find("suppressed: daily_cap"),
            std::string::npos);
}

TEST(ReplayTest, AMissingFileIsAClearError) {
  Replay replay({PolicyConfig{}}, "default", {});
  Status s = ReplayFrom("/nonexistent/events.ndjson", replay);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace herald::policy
