#include "engine/engine_config.h"

#include <cctz/time_zone.h>

#include "policy/policy_config.h"

namespace herald::engine {

config::Section<EngineConfig> EngineConfigSection() {
  using C = EngineConfig;
  config::Section<C> s("engine", "Slot arbitration and the daily digest (docs/ads.md).");
  s.Uint("slot_gap_s", &C::slot_gap_s, 60, 7 * 86400,
         "Seconds after which a push that lost a user's slot to one of higher value\n"
         "tries again, while its message lives; an ad held back by its pacing tries\n"
         "again within this time.");
  s.String("digest_from", &C::digest_from,
           "Local time \"HH:MM\" from which a user's daily digest may be sent; the\n"
           "send-time model picks the user's golden hour between digest_from and digest_to.");
  s.String("digest_to", &C::digest_to, "Local time \"HH:MM\" by which the daily digest is sent.");
  s.Uint("digest_max_articles", &C::digest_max_articles, 1, 50,
         "Articles listed in one digest, best first by predicted CTR; the rest wait for the next.");
  s.String("digest_title", &C::digest_title, "The digest push's title.");
  s.Uint("digest_ttl_s", &C::digest_ttl_s, 3600, 7 * 86400, "How long a digest push lives.");
  s.Check([](const C& c) {
    auto from = policy::ParseClockTime(c.digest_from);
    if (!from.ok()) return Status::InvalidArgument("engine.digest_from: " + from.status().message());
    auto to = policy::ParseClockTime(c.digest_to);
    if (!to.ok()) return Status::InvalidArgument("engine.digest_to: " + to.status().message());
    if (*to <= *from) return Status::InvalidArgument("engine.digest_to: must be after digest_from");
    if (c.digest_title.empty()) return Status::InvalidArgument("engine.digest_title: must not be empty");
    return Status::Ok();
  });
  return s;
}

config::Section<AdsConfig> AdsConfigSection() {
  using C = AdsConfig;
  config::Section<C> s("ads", "The slot auction's prices and ad budgets (docs/ads.md).");
  s.Double("organic_value", &C::organic_value, 0, 1e6,
           "What an organic open is worth, in the currency of the bids per click: an\n"
           "organic push's value in the auction is pCTR x 1000 x organic_value x weight.");
  s.Double("reserve_price", &C::reserve_price, 1e-6, 1e6, "The least an ad pays per click (what a single bidder pays).");
  s.Double("complaint_rate_scale", &C::complaint_rate_scale, 0, 1e4,
           "Complaints counted per unit of an advertiser's complaint rate: an ad's rank\n"
           "is multiplied by 0.85^(the user's own complaints + rate x scale).");
  s.String("budget_tz", &C::budget_tz, "The time zone of ad campaigns' budget days.");
  s.Check([](const C& c) {
    cctz::time_zone tz;
    if (!cctz::load_time_zone(c.budget_tz, &tz)) {
      return Status::InvalidArgument("ads.budget_tz: unknown time zone " + c.budget_tz);
    }
    return Status::Ok();
  });
  return s;
}

}  // namespace herald::engine
