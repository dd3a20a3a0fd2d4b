// The engine's settings: [engine] (slot arbitration and the daily digest) and
// [ads] (the auction's prices and ad budgets), docs/ads.md.
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"
#include "engine/auction.h"

namespace herald::engine {

struct EngineConfig {
  // A candidate that lost a user's slot tries again this much later (while its
  // message lives).
  std::uint64_t slot_gap_s = 3600;
  // The daily digest of subscription accounts: sent once a day per user, at the
  // user's golden hour between digest_from and digest_to local time.
  std::string digest_from = "07:30";
  std::string digest_to = "22:00";
  std::uint64_t digest_max_articles = 10;
  std::string digest_title = "Today from the accounts you follow";
  std::uint64_t digest_ttl_s = 86400;
};

struct AdsConfig {
  double organic_value = AuctionConfig{}.organic_value;
  double reserve_price = AuctionConfig{}.reserve_price;
  double complaint_rate_scale = AuctionConfig{}.complaint_rate_scale;
  AuctionConfig Auction() const {
    AuctionConfig a;
    a.organic_value = organic_value;
    a.reserve_price = reserve_price;
    a.complaint_rate_scale = complaint_rate_scale;
    return a;
  }
  // The zone of an ad campaign's budget day.
  std::string budget_tz = "Asia/Shanghai";
};

config::Section<EngineConfig> EngineConfigSection();
config::Section<AdsConfig> AdsConfigSection();

}  // namespace herald::engine
