// The slot auction on examples worked by hand (docs/ads.md): ranking, GSP
// prices, ties, a single bidder, a complaint-heavy advertiser, organic pushes
// and acceleration packs; the pacer over a day on a steady stream of auctions.
#include "engine/auction.h"

#include <gtest/gtest.h>

#include <vector>

namespace herald::engine {
namespace {

Candidate Ad(double bid, double pctr, double quality = 1) {
  Candidate c;
  c.ad = true;
  c.bid = bid;
  c.pctr = pctr;
  c.quality = quality;
  return c;
}

Candidate Organic(double pctr, double weight = 1) {
  Candidate c;
  c.pctr = pctr;
  c.weight = weight;
  return c;
}

const AuctionConfig kCfg;

TEST(AuctionTest, TheHighestRankWinsAndPaysTheLowestBidThatStillWins) {
  // A: 2.00 x 0.05 x 1000 = 100; B: 3.00 x 0.02 x 1000 = 60. A pays 60 / 50 = 1.20 a
  // click, 1.20 x 0.05 = 0.06 a delivered push.
  std::vector<Candidate> c = {Ad(2.0, 0.05), Ad(3.0, 0.02)};
  auto r = RunAuction(c, kCfg);
  EXPECT_EQ(r.winner, 0);
  EXPECT_EQ(r.runner_up, 1);
  EXPECT_DOUBLE_EQ(r.rank, 100);
  EXPECT_DOUBLE_EQ(r.price, 1.2);
  EXPECT_DOUBLE_EQ(r.charge, 0.06);
  // Quality scales the rank: at quality 0.5 A ranks 50 and B wins, paying 50 / 20.
  c[0].quality = 0.5;
  r = RunAuction(c, kCfg);
  EXPECT_EQ(r.winner, 1);
  EXPECT_DOUBLE_EQ(r.price, 2.5);
}

TEST(AuctionTest, ATieGoesToTheEarlierCandidateWhichPaysItsOwnBid) {
  // 1.00 x 0.05 x 1000 = 50 = 2.50 x 0.02 x 1000.
  std::vector<Candidate> c = {Ad(1.0, 0.05), Ad(2.5, 0.02)};
  auto r = RunAuction(c, kCfg);
  EXPECT_EQ(r.winner, 0);
  EXPECT_DOUBLE_EQ(r.price, 1.0);
}

TEST(AuctionTest, ASingleBidderPaysTheReservePrice) {
  std::vector<Candidate> c = {Ad(2.0, 0.05)};
  auto r = RunAuction(c, kCfg);
  EXPECT_EQ(r.winner, 0);
  EXPECT_EQ(r.runner_up, -1);
  EXPECT_DOUBLE_EQ(r.price, 0.01);
  EXPECT_DOUBLE_EQ(r.charge, 0.0005);
  EXPECT_EQ(RunAuction({}, kCfg).winner, -1);
  // Never more than its own bid, even under the reserve.
  c[0].bid = 0.005;
  EXPECT_DOUBLE_EQ(RunAuction(c, kCfg).price, 0.005);
}

TEST(AuctionTest, AComplaintHeavyAdvertiserLosesDespiteTheHighestBid) {
  // A bids 5.00 but has 2 complaints from this user and a rate of 0.03 (3 more at
  // scale 100): 5 x 50 x 0.85^5 = 110.93. B bids 3.00 cleanly: 150, and pays
  // 110.93 / 50 = 2.2185 a click.
  Candidate a = Ad(5.0, 0.05);
  a.own_complaints = 2;
  a.complaint_rate = 0.03;
  std::vector<Candidate> c = {a, Ad(3.0, 0.05)};
  auto r = RunAuction(c, kCfg);
  EXPECT_EQ(r.winner, 1);
  EXPECT_NEAR(Rank(a, kCfg), 110.926328125, 1e-9);
  EXPECT_NEAR(r.price, 2.2185265625, 1e-9);
}

TEST(AuctionTest, OrganicPushesCompeteOnTheSameScaleAndPacksChangeTheWinner) {
  // Organic: 0.08 x 1000 x 1 = 80 beats an ad at 1.00 x 0.05 x 1000 = 50, and pays nothing.
  std::vector<Candidate> c = {Organic(0.08), Ad(1.0, 0.05)};
  auto r = RunAuction(c, kCfg);
  EXPECT_EQ(r.winner, 0);
  EXPECT_EQ(r.price, 0);
  // The ad's account with a 3x pack: 150, paying 80 / 150 a click.
  c[1].pack = 3;
  r = RunAuction(c, kCfg);
  EXPECT_EQ(r.winner, 1);
  EXPECT_NEAR(r.price, 80.0 / 150, 1e-12);
  // A creator's organic push with a 4x pack wins back: 320.
  c[0].pack = 4;
  EXPECT_EQ(RunAuction(c, kCfg).winner, 0);
  // The user's weight for an account (not interested marks) lowers its rank.
  c[0].weight = 0.1;
  EXPECT_EQ(RunAuction(c, kCfg).winner, 1);
}

TEST(AuctionTest, APacedBudgetLastsTheDayAndIsNeverExceeded) {
  // Steady traffic: 100 auctions a minute, each won for 0.06; unthrottled that is 6 a
  // minute, and a budget of 1,000 would be gone before 03:00.
  Pacer p;
  p.budget = 1000;
  double at_18 = 0;
  for (int minute = 0; minute < 1440; ++minute) {
    p.Update(minute * kMicrosPerMinute, minute / 1440.0);
    const int entered = static_cast<int>(100 * p.throttle + 0.5);
    for (int i = 0; i < entered; ++i) p.Charge(0.06);
    EXPECT_LE(p.spent, p.budget);
    if (minute == 18 * 60) at_18 = p.spent;
  }
  EXPECT_LT(at_18, 0.8 * p.budget);  // not spent before 18:00
  EXPECT_GT(at_18, 0.6 * p.budget);
  EXPECT_GT(p.spent, 0.95 * p.budget);  // and spent by the end of the day
  EXPECT_FALSE(p.Charge(p.left() + 0.01));  // the hard stop
}

TEST(AuctionTest, BadTermsNameTheField) {
  EXPECT_NE(CheckAdTerms(-1, 10).message().find("bid"), std::string::npos);
  EXPECT_NE(CheckAdTerms(1, 0).message().find("budget"), std::string::npos);
  EXPECT_TRUE(CheckAdTerms(0.5, 100).ok());
}

}  // namespace
}  // namespace herald::engine
