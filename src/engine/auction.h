// The auction for a user's push slot: who wins when several candidates want
// it, and what a winning ad pays.
//
// Each candidate has a value on one scale, in money per thousand pushes:
//   ad       rank = eCPM × quality × 0.85^complaints, eCPM = bid × pCTR × 1000
//   organic  rank = pCTR × 1000 × organic_value × account weight
// and either is multiplied by its account's acceleration pack factor (1 without
// one, 3–5 with). `organic_value` is what an operator counts an organic open
// worth, in the currency of the bids (AuctionConfig). The highest rank wins; a
// tie goes to the earlier candidate.
//
// Pricing is generalized second price: an ad that wins pays, per click, the
// lowest bid that would still have won, that is the runner-up's rank divided by
// the winner's rank per unit of bid, never more than its own bid and never less
// than the reserve price; alone, it pays the reserve. Charged per delivered
// push, that is price × pCTR (the push's expected cost).
//
// Complaints: `complaints` is the user's own complaints against the advertiser
// plus the advertiser's complaint rate (complaints per push over the reputation
// window) times `complaint_rate_scale`, so a single user's complaint costs 15%
// and an advertiser with one complaint in a hundred pushes (scale 100) costs the
// same everywhere.
//
// Pure functions: safe from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/clock.h"
#include "core/status.h"

namespace herald::engine {

struct AuctionConfig {
  double organic_value = 1.0;        // an organic open, in bid currency per click
  double reserve_price = 0.01;       // the least an ad pays per click
  double complaint_factor = 0.85;    // per complaint
  double complaint_rate_scale = 100;  // complaints counted per unit of complaint rate
};

struct Candidate {
  bool ad = false;
  double pctr = 0;           // the CTR model's score, in [0, 1]
  double bid = 0;            // ads: per click
  double quality = 1;        // ads: the account's quality, in [0, 1]
  double own_complaints = 0;  // ads: the user's complaints against the advertiser
  double complaint_rate = 0;  // ads: the advertiser's complaints per push
  double weight = 1;         // organic: the account's weight for the user (policy)
  double pack = 1;           // the account's acceleration factor at the time
};

// The candidate's rank (see above).
double Rank(const Candidate& c, const AuctionConfig& cfg);

struct AuctionResult {
  int winner = -1;          // index into the candidates; -1 when there were none
  int runner_up = -1;       // the best of the others, -1 when alone
  double rank = 0;          // the winner's
  double price = 0;         // an ad winner's price per click (0 for organic)
  double charge = 0;        // an ad winner's charge per delivered push: price × pCTR
};

// Ranks the candidates and prices the winner.
AuctionResult RunAuction(std::span<const Candidate> candidates, const AuctionConfig& cfg);

// Spreads a daily budget over the day: every minute, the share of the budget
// that should be spent by now (even over the local day) is compared with what
// was spent, and the chance that a campaign's ad enters an auction is moved
// toward it. Spend never passes the budget: a charge that would is refused.
struct Pacer {
  double budget = 0;     // per local day
  double spent = 0;      // today
  double throttle = 1;   // chance to enter an auction, in [0.01, 1]
  Micros updated = 0;    // last Update()

  // Moves the throttle at `now`, `day_fraction` of the local day gone (0..1).
  void Update(Micros now, double day_fraction);
  // True when `charge` fits in what is left; then it is spent.
  bool Charge(double charge);
  double left() const { return budget > spent ? budget - spent : 0; }
};

// Checks an ad campaign's bid and budget: InvalidArgument naming the field.
Status CheckAdTerms(double bid, double budget);

}  // namespace herald::engine
