#include "engine/digest.h"

#include <algorithm>

#include "core/time_format.h"
#include "stream/json_text.h"

namespace herald::engine {

void RankArticles(std::vector<RankedArticle>& articles, size_t max) {
  std::stable_sort(articles.begin(), articles.end(),
                   [](const RankedArticle& a, const RankedArticle& b) { return a.pctr > b.pctr; });
  if (articles.size() > max) articles.resize(max);
}

std::string DigestPayload(std::string_view message_id, std::string_view account_id, std::string_view title,
                          std::span<const RankedArticle> articles, Micros expires_at) {
  using stream::json::AppendString;
  std::string out;
  out.reserve(128 + articles.size() * 96);
  out += "{\"id\":";
  AppendString(&out, message_id);
  out += ",\"campaign_id\":null,\"account_id\":";
  AppendString(&out, account_id);
  out += ",\"form\":\"digest\",\"title\":";
  AppendString(&out, title);
  out += ",\"articles\":[";
  for (size_t i = 0; i < articles.size(); ++i) {
    const Article& a = *articles[i].article;
    if (i) out.push_back(',');
    out += "{\"article_id\":";
    AppendString(&out, a.article_id);
    out += ",\"account_id\":";
    AppendString(&out, a.account_id);
    out += ",\"title\":";
    AppendString(&out, a.title);
    out += ",\"deep_link\":";
    AppendString(&out, a.deep_link);
    out.push_back('}');
  }
  out += "],\"expires_at\":";
  AppendString(&out, FormatIsoTime(expires_at));
  out.push_back('}');
  return out;
}

}  // namespace herald::engine
