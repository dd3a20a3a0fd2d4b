#include "engine/digest.h"

#include <algorithm>

#include "core/bytes.h"
#include "core/time_format.h"
#include "stream/json_text.h"

namespace herald::engine {

std::string ArticleUserPrefix(std::string_view tenant, std::string_view user_id) {
  std::string k(tenant);
  k.push_back('\0');
  k.append(user_id);
  k.push_back('\0');
  return k;
}

std::string ArticleKey(std::string_view tenant, std::string_view user_id, std::string_view campaign_id) {
  std::string k = ArticleUserPrefix(tenant, user_id);
  k.append(campaign_id);
  return k;
}

std::string EncodeArticle(const StoredArticle& a) {
  std::string v;
  ByteWriter w(&v);
  w.Byte(1);
  w.String(a.article.article_id);
  w.String(a.article.account_id);
  w.String(a.article.title);
  w.String(a.article.deep_link);
  w.String(a.form);
  w.Zigzag(a.created_at);
  w.Zigzag(a.expires_at);
  return v;
}

bool DecodeArticle(std::string_view bytes, StoredArticle* a) {
  ByteReader r(bytes);
  std::uint8_t v = 0;
  return r.Byte(&v) && v == 1 && r.String(&a->article.article_id) && r.String(&a->article.account_id) &&
         r.String(&a->article.title) && r.String(&a->article.deep_link) && r.String(&a->form) &&
         r.Zigzag(&a->created_at) &&
         r.Zigzag(&a->expires_at) && r.done();
}

std::string DigestMessageId(std::string_view tenant, std::string_view user_id, std::int64_t day) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a over tenant \0 user \0 day
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0;
    h *= 1099511628211ull;
  };
  mix(tenant);
  mix(user_id);
  mix(std::to_string(day));
  static const char* kHex = "0123456789abcdef";
  std::string id("m-d");
  for (int i = 15; i >= 0; --i) id.push_back(kHex[(h >> (i * 4)) & 15]);
  return id;
}

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
    out += "{\"id\":";
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
