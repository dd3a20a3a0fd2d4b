#include "engine/auction.h"

#include <algorithm>
#include <cmath>

namespace herald::engine {

namespace {

// An ad's rank per unit of bid: pCTR × 1000 × quality × 0.85^complaints × pack.
double AdRankPerBid(const Candidate& c, const AuctionConfig& cfg) {
  const double complaints = c.own_complaints + c.complaint_rate * cfg.complaint_rate_scale;
  return c.pctr * 1000 * c.quality * std::pow(cfg.complaint_factor, complaints) * c.pack;
}

}  // namespace

double Rank(const Candidate& c, const AuctionConfig& cfg) {
  if (c.ad) return c.bid * AdRankPerBid(c, cfg);
  return c.pctr * 1000 * cfg.organic_value * c.weight * c.pack;
}

AuctionResult RunAuction(std::span<const Candidate> candidates, const AuctionConfig& cfg) {
  AuctionResult r;
  double best = -1, second = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const double v = Rank(candidates[i], cfg);
    if (v > best) {
      second = best;
      r.runner_up = r.winner;
      best = v;
      r.winner = static_cast<int>(i);
    } else if (v > second) {
      second = v;
      r.runner_up = static_cast<int>(i);
    }
  }
  if (r.winner < 0) return r;
  r.rank = best;
  const Candidate& w = candidates[static_cast<size_t>(r.winner)];
  if (!w.ad) return r;
  // The lowest bid that still wins: the runner-up's rank over the winner's rank
  // per unit of bid; alone, the reserve.
  const double per_bid = AdRankPerBid(w, cfg);
  double price = cfg.reserve_price;
  if (r.runner_up >= 0 && per_bid > 0) price = std::max(price, second / per_bid);
  r.price = std::min(price, w.bid);
  r.charge = r.price * w.pctr;
  return r;
}

void Pacer::Update(Micros now, double day_fraction) {
  updated = now;
  if (budget <= 0) {
    throttle = 0;
    return;
  }
  // What should be spent by the end of the next minute, evenly over the day.
  const double target = budget * std::clamp(day_fraction + 1.0 / 1440, 0.0, 1.0);
  if (spent >= target) {
    throttle = std::max(0.01, throttle * 0.7);
  } else if (spent < target * 0.95) {
    throttle = std::min(1.0, throttle * 1.3);
  }
}

bool Pacer::Charge(double charge) {
  if (charge < 0 || spent + charge > budget) return false;
  spent += charge;
  return true;
}

Status CheckAdTerms(double bid, double budget) {
  if (!std::isfinite(bid) || bid <= 0) return Status::InvalidArgument("bid: must be a positive number");
  if (!std::isfinite(budget) || budget <= 0) return Status::InvalidArgument("budget: must be a positive number");
  return Status::Ok();
}

}  // namespace herald::engine
