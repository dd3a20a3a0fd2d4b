// The daily digest of subscription accounts: the day's articles of the accounts a
// user follows, ranked by the CTR model's prediction for that user (not by time),
// in one push.
//
// A campaign of a subscription account (schedule "digest") leaves its message as
// an article for each user it targets, and a schedule entry for the user's next
// digest at the user's golden hour (the send-time model, inside the configured
// window); the entry's message id is the same for every article of that day, so
// a user has one digest entry a day. When it fires, the user's articles are
// ranked and sent as one push that counts against the caps (Engine::Fire).
//
// Records, in the state family:
//   kEngineArticle  tenant \0 user_id \0 campaign_id -> EncodeArticle
//
// Pure functions: safe from any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include <cstdint>

namespace herald::engine {

struct Article {
  std::string article_id, account_id, title, deep_link;
};

// The account id a digest push is sent as: it counts against the user's caps
// like any push, and belongs to no account's quota.
inline constexpr const char* kDigestAccount = "digest";

// An article as stored for one user: the article, when it came and when its
// message expires.
struct StoredArticle {
  Article article;
  std::string form = "text";  // the message's form (a feature of its score)
  Micros created_at = 0, expires_at = 0;
};
std::string ArticleUserPrefix(std::string_view tenant, std::string_view user_id);  // key suffix
std::string ArticleKey(std::string_view tenant, std::string_view user_id, std::string_view campaign_id);
std::string EncodeArticle(const StoredArticle& a);
bool DecodeArticle(std::string_view bytes, StoredArticle* a);
// The digest's message id for the user's local day `day` (days since 1970).
std::string DigestMessageId(std::string_view tenant, std::string_view user_id, std::int64_t day);

struct RankedArticle {
  const Article* article = nullptr;
  double pctr = 0;
};

// Best first by pCTR (ties: the order given), at most `max`.
void RankArticles(std::vector<RankedArticle>& articles, size_t max);

// The digest's MQTT payload (docs/payloads.md): {"id","campaign_id":null,
// "account_id","form":"digest","title","articles":[{"id","account_id",
// "title","deep_link"}],"expires_at"}.
std::string DigestPayload(std::string_view message_id, std::string_view account_id, std::string_view title,
                          std::span<const RankedArticle> articles, Micros expires_at);

}  // namespace herald::engine
