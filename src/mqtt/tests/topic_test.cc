// Topic names, topic filters, matching (section 4.7) and level splitting.
#include "mqtt/topic.h"

#include <gtest/gtest.h>

#include <iterator>
#include <string>
#include <vector>

namespace herald::mqtt {
namespace {

std::vector<std::string_view> Levels(std::string_view topic) {
  std::vector<std::string_view> out;
  for (std::string_view level : TopicLevels(topic)) out.push_back(level);
  return out;
}

using LevelList = std::vector<std::string_view>;

TEST(TopicTest, LevelsSplitOnEverySlashKeepingEmptyLevels) {
  EXPECT_EQ(Levels("sport/tennis/player1"), (LevelList{"sport", "tennis", "player1"}));
  EXPECT_EQ(Levels("single"), (LevelList{"single"}));
  EXPECT_EQ(Levels("a//b"), (LevelList{"a", "", "b"}));
  EXPECT_EQ(Levels("/finance"), (LevelList{"", "finance"}));
  EXPECT_EQ(Levels("x/"), (LevelList{"x", ""}));
  EXPECT_EQ(Levels("/"), (LevelList{"", ""}));
  EXPECT_EQ(Levels(""), (LevelList{""}));
}

TEST(TopicTest, LevelsAreViewsIntoTheTopicAndKnowTheLastOne) {
  std::string topic = "a/bc/d";
  TopicLevels levels(topic);
  auto it = levels.begin();
  EXPECT_EQ((*it).data(), topic.data());
  EXPECT_FALSE(it.last());
  ++it;
  EXPECT_EQ((*it).data(), topic.data() + 2);
  EXPECT_EQ(*it, "bc");
  ++it;
  EXPECT_TRUE(it.last());
  EXPECT_EQ(std::distance(levels.begin(), levels.end()), 3);
}

TEST(TopicTest, ValidTopicNames) {
  for (std::string_view t : {"a", "/", "sport/tennis/player1", "//", "$SYS/uptime", "a b",
                             "caf\xC3\xA9/\xE2\x82\xAC"}) {
    EXPECT_TRUE(ValidTopicName(t)) << t;
  }
}

TEST(TopicTest, InvalidTopicNames) {
  for (std::string_view t : {"", "+", "#", "sport/+", "sport/#", "a+b", "a#", "bad\xFF"}) {
    EXPECT_FALSE(ValidTopicName(t)) << t;
  }
  EXPECT_FALSE(ValidTopicName(std::string_view("a\0b", 3)));
}

TEST(TopicTest, TopicNameLengthLimitIs65535Bytes) {
  EXPECT_TRUE(ValidTopicName(std::string(65535, 'a')));
  EXPECT_FALSE(ValidTopicName(std::string(65536, 'a')));
  EXPECT_TRUE(ValidTopicFilter(std::string(65533, 'a') + "/#"));
  EXPECT_FALSE(ValidTopicFilter(std::string(65534, 'a') + "/#"));
}

TEST(TopicTest, ValidTopicFilters) {
  for (std::string_view f : {"#", "+", "sport/#", "sport/tennis/#", "+/tennis/#", "sport/+/player1",
                             "/+", "+/+", "+/", "/#", "a//+", "$SYS/#", "a/b"}) {
    EXPECT_TRUE(ValidTopicFilter(f)) << f;
  }
}

TEST(TopicTest, InvalidTopicFilters) {
  for (std::string_view f : {"", "sport/tennis#", "sport/tennis/#/ranking", "sport+", "#/a",
                             "a/#b", "a/b#", "++", "a/+b/c", "+a", "#/", "a\xE2\x82"}) {
    EXPECT_FALSE(ValidTopicFilter(f)) << f;
  }
}

struct MatchCase {
  std::string_view filter;
  std::string_view topic;
  bool matches;
};

// The examples of section 4.7 and the edges between them.
constexpr MatchCase kMatchTable[] = {
    {"sport/tennis/player1/#", "sport/tennis/player1", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/tennis/player1/#", "sport/tennis/player2", false},
    {"sport/#", "sport", true},
    {"sport/#", "sport/", true},
    {"sport/#", "sports", false},
    {"#", "sport/tennis", true},
    {"#", "/", true},
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true},
    {"+/+", "/finance", true},
    {"/+", "/finance", true},
    {"+", "/finance", false},
    {"+", "a", true},
    {"+", "a/b", false},
    {"a/+/b", "a//b", true},
    {"+/b", "/b", true},
    {"+/+/+", "//", true},
    {"+/#", "a", true},
    {"a/b", "a/b", true},
    {"a/b", "a/b/c", false},
    {"a/b", "a", false},
    {"a/b/", "a/b", false},
    {"ACCOUNTS", "Accounts", false},
    {"#", "$SYS/monitor/Clients", false},
    {"#", "$SYS", false},
    {"+/monitor/Clients", "$SYS/monitor/Clients", false},
    {"+", "$", false},
    {"$SYS/#", "$SYS/monitor/Clients", true},
    {"$SYS/#", "$SYS", true},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
    {"a/+", "a/$b", true},
    {"a/#", "a/$b/c", true},
    {"caf\xC3\xA9/+", "caf\xC3\xA9/x", true},
};

TEST(TopicTest, MatchTable) {
  for (const MatchCase& c : kMatchTable) {
    ASSERT_TRUE(ValidTopicFilter(c.filter)) << c.filter;
    ASSERT_TRUE(ValidTopicName(c.topic)) << c.topic;
    EXPECT_EQ(TopicMatches(c.filter, c.topic), c.matches) << c.filter << " vs " << c.topic;
  }
}

TEST(TopicTest, EveryTopicNameMatchesItselfAsAFilter) {
  for (const MatchCase& c : kMatchTable) EXPECT_TRUE(TopicMatches(c.topic, c.topic)) << c.topic;
}

}  // namespace
}  // namespace herald::mqtt
