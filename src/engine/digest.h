// The daily digest of subscription accounts: the day's articles of the accounts a
// user follows, ranked by the CTR model's prediction for that user (not by time),
// in one push.
//
// Pure functions: safe from any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace herald::engine {

struct Article {
  std::string article_id, account_id, title, deep_link;
};

struct RankedArticle {
  const Article* article = nullptr;
  double pctr = 0;
};

// Best first by pCTR (ties: the order given), at most `max`.
void RankArticles(std::vector<RankedArticle>& articles, size_t max);

// The digest's MQTT payload (docs/payloads.md): {"id","campaign_id":null,
// "account_id","form":"digest","title","articles":[{"article_id","account_id",
// "title","deep_link"}],"expires_at"}.
std::string DigestPayload(std::string_view message_id, std::string_view account_id, std::string_view title,
                          std::span<const RankedArticle> articles, Micros expires_at);

}  // namespace herald::engine
