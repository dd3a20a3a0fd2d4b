// The digest: articles ranked by pCTR (not by time), at most the limit, and a
// payload that parses with every article's ids.
#include "engine/digest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace herald::engine {
namespace {

TEST(DigestTest, ArticlesAreRankedByPredictedCtrAndTheirPayloadCarriesTheIds) {
  const std::vector<Article> day = {{"a1", "tech", "Chips \"now\"", "app://a1"},
                                    {"a2", "food", "Noodles", "app://a2"},
                                    {"a3", "tech", "Phones", "app://a3"},
                                    {"a4", "news", "Rain", "app://a4"}};
  std::vector<RankedArticle> r = {{&day[0], 0.02}, {&day[1], 0.09}, {&day[2], 0.05}, {&day[3], 0.05}};
  RankArticles(r, 3);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].article->article_id, "a2");
  EXPECT_EQ(r[1].article->article_id, "a3");  // a tie keeps the order given
  EXPECT_EQ(r[2].article->article_id, "a4");
  const auto j = nlohmann::json::parse(DigestPayload("m-1", "digest", "Today's picks", r, 1'700'000'000'000'000));
  EXPECT_EQ(j["form"], "digest");
  EXPECT_EQ(j["id"], "m-1");
  ASSERT_EQ(j["articles"].size(), 3u);
  EXPECT_EQ(j["articles"][0]["id"], "a2");
  EXPECT_EQ(j["articles"][0]["account_id"], "food");
  EXPECT_EQ(j["articles"][0]["deep_link"], "app://a2");
  EXPECT_TRUE(j["campaign_id"].is_null());
  std::vector<RankedArticle> none;
  RankArticles(none, 10);
  EXPECT_EQ(nlohmann::json::parse(DigestPayload("m-2", "digest", "t", none, 0))["articles"].size(), 0u);
}

}  // namespace
}  // namespace herald::engine
