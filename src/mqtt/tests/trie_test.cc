#include "mqtt/trie.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace herald::mqtt {
namespace {

std::vector<std::pair<SessionId, int>> MatchAll(const SubscriptionTrie& t, std::string_view topic) {
  std::vector<std::pair<SessionId, int>> out;
  t.Match(topic, [&](SessionId s, std::uint8_t q) { out.emplace_back(s, q); });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(TrieTest, ExactPlusAndHashFilters) {
  SubscriptionTrie t;
  t.Insert("sport/tennis/player1", 1, 0);
  t.Insert("sport/+/player1", 2, 1);
  t.Insert("sport/#", 3, 2);
  t.Insert("+/+/+", 4, 0);
  t.Insert("#", 5, 1);
  using V = std::vector<std::pair<SessionId, int>>;
  EXPECT_EQ(MatchAll(t, "sport/tennis/player1"), (V{{1, 0}, {2, 1}, {3, 2}, {4, 0}, {5, 1}}));
  EXPECT_EQ(MatchAll(t, "sport"), (V{{3, 2}, {5, 1}}));  // "sport/#" matches its parent
  EXPECT_EQ(MatchAll(t, "sport/tennis"), (V{{3, 2}, {5, 1}}));
  EXPECT_EQ(MatchAll(t, "news/a/b"), (V{{4, 0}, {5, 1}}));
  EXPECT_EQ(MatchAll(t, "sport//player1"), (V{{2, 1}, {3, 2}, {4, 0}, {5, 1}}));  // '+' matches ""
}

TEST(TrieTest, DollarTopicsAreNotMatchedByLeadingWildcards) {
  SubscriptionTrie t;
  t.Insert("#", 1, 0);
  t.Insert("+/info", 2, 0);
  t.Insert("$SYS/#", 3, 0);
  t.Insert("$SYS/+", 4, 0);
  using V = std::vector<std::pair<SessionId, int>>;
  EXPECT_EQ(MatchAll(t, "$SYS/info"), (V{{3, 0}, {4, 0}}));
  EXPECT_EQ(MatchAll(t, "a/info"), (V{{1, 0}, {2, 0}}));
}

TEST(TrieTest, ReplaceRemoveAndPrune) {
  SubscriptionTrie t;
  EXPECT_TRUE(t.Insert("u/1", 7, 0));
  EXPECT_FALSE(t.Insert("u/1", 7, 2));  // same session and filter: replaced
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(MatchAll(t, "u/1"), (std::vector<std::pair<SessionId, int>>{{7, 2}}));
  EXPECT_FALSE(t.Remove("u/2", 7));
  EXPECT_FALSE(t.Remove("u/1", 8));
  EXPECT_TRUE(t.Remove("u/1", 7));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(MatchAll(t, "u/1").empty());
}

TEST(TrieTest, OneTopicPerDeviceScalesToManySubscriptions) {
  SubscriptionTrie t;
  for (SessionId i = 0; i < 200000; ++i) t.Insert("u/" + std::to_string(i), i, 1);
  EXPECT_EQ(t.size(), 200000u);
  for (SessionId i = 0; i < 200000; i += 9973) {
    auto m = MatchAll(t, "u/" + std::to_string(i));
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].first, i);
  }
}

}  // namespace
}  // namespace herald::mqtt
