// The CTR learners: gradients agree with finite differences, a planted signal is
// learned (and a pairwise interaction only by the FM), predictions are
// calibrated, snapshots round-trip and damaged ones are refused.
#include "model/learner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model/ctr_eval.h"

namespace herald::model {
namespace {

LearnerConfig Config(const char* kind) {
  LearnerConfig c;
  c.kind = kind;
  c.bits = 16;
  c.l1 = 0;  // gradient checks: no flat region
  return c;
}

double Loss(const Learner& m, Sample x, int y) {
  const double p = m.Predict(x);
  return y ? -std::log(p) : -std::log(1 - p);
}

TEST(LearnerTest, GradientsAgreeWithFiniteDifferences) {
  for (const char* kind : {"lr", "fm"}) {
    auto m = MakeLearner(Config(kind)).value();
    std::vector<Feature> x = {{3, 1.0f}, {17, 0.5f}, {40, 2.0f}};
    // Train a little so that the weights are not at their starting point.
    for (int i = 0; i < 20; ++i) m->Update(x, i % 3 == 0);
    for (int y : {0, 1}) {
      auto probe = m->ProbeGradient(x, y);
      ASSERT_GT(probe.gradient.size(), 3u);
      for (size_t i = 0; i < probe.gradient.size(); ++i) {
        const double eps = 1e-3;
        probe.perturb(i, eps);
        const double up = Loss(*m, x, y);
        probe.perturb(i, -2 * eps);
        const double down = Loss(*m, x, y);
        probe.perturb(i, eps);
        const double numeric = (up - down) / (2 * eps);
        EXPECT_NEAR(numeric, probe.gradient[i], 2e-3 + 0.02 * std::fabs(numeric)) << kind << " param " << i;
      }
    }
  }
}

// Synthetic clicks: field a (10 values) and b (10 values) each shift the odds;
// with `interaction`, only the pair (a even, b even) clicks, which no sum of
// per-feature weights can express.
struct Synthetic {
  std::vector<std::vector<Feature>> x;
  std::vector<std::uint8_t> y;
};
Synthetic Make(size_t n, bool interaction, unsigned seed, unsigned bits) {
  std::mt19937 rng(seed);
  Synthetic s;
  for (size_t i = 0; i < n; ++i) {
    const int a = static_cast<int>(rng() % 10), b = static_cast<int>(rng() % 10), c = static_cast<int>(rng() % 50);
    double logit;
    if (interaction) {
      logit = ((a % 2) == (b % 2)) ? 2.0 : -2.0;
    } else {
      logit = -1.5 + 1.0 * (a - 4.5) + 0.6 * (b - 4.5);
    }
    const double p = 1 / (1 + std::exp(-logit));
    s.y.push_back(std::uniform_real_distribution<double>(0, 1)(rng) < p);
    s.x.push_back({{HashFeature("a=" + std::to_string(a), bits), 1}, {HashFeature("b=" + std::to_string(b), bits), 1},
                   {HashFeature("c=" + std::to_string(c), bits), 1}});
  }
  return s;
}

Quality TrainAndTest(const char* kind, bool interaction, int epochs = 3) {
  auto m = MakeLearner(Config(kind)).value();
  auto train = Make(40000, interaction, 1, 16), test = Make(20000, interaction, 2, 16);
  for (int e = 0; e < epochs; ++e) {
    for (size_t i = 0; i < train.x.size(); ++i) m->Update(train.x[i], train.y[i]);
  }
  std::vector<double> p;
  for (const auto& x : test.x) p.push_back(m->Predict(x));
  return Measure(p, test.y);
}

TEST(LearnerTest, BothLearnAPlantedSignalAndAreCalibrated) {
  for (const char* kind : {"lr", "fm"}) {
    Quality q = TrainAndTest(kind, false);
    EXPECT_GT(q.auc, 0.9) << kind;
    EXPECT_NEAR(q.mean_prediction, q.positive_rate, 0.01) << kind;
    for (int d = 0; d < 10; ++d) {
      EXPECT_NEAR(q.predicted[d], q.observed[d], 0.05) << kind << " decile " << d;
    }
  }
}

TEST(LearnerTest, OnlyTheFactorizationMachineLearnsAPairwiseInteraction) {
  Quality lr = TrainAndTest("lr", true), fm = TrainAndTest("fm", true, 5);
  EXPECT_LT(lr.auc, 0.6);
  EXPECT_GT(fm.auc, 0.8);
}

TEST(LearnerTest, SnapshotsRoundTripAndDamagedOnesAreRefused) {
  for (const char* kind : {"lr", "fm"}) {
    auto m = MakeLearner(Config(kind)).value();
    auto data = Make(2000, false, 3, 16);
    for (size_t i = 0; i < data.x.size(); ++i) m->Update(data.x[i], data.y[i]);
    const std::string bytes = m->Serialize();
    auto back = DeserializeLearner(bytes).value();
    for (size_t i = 0; i < 50; ++i) EXPECT_EQ(back->Predict(data.x[i]), m->Predict(data.x[i])) << kind;
    EXPECT_EQ(back->config().kind, kind);
    auto cut = DeserializeLearner(bytes.substr(0, bytes.size() - 10));
    ASSERT_FALSE(cut.ok());
    EXPECT_NE(cut.status().message().find("checksum"), std::string::npos) << cut.status().message();
    std::string flipped = bytes;
    flipped[bytes.size() / 2] ^= 1;
    EXPECT_FALSE(DeserializeLearner(flipped).ok());
    EXPECT_NE(DeserializeLearner("garbage!!").status().message().find("magic"), std::string::npos);
  }
}

TEST(LearnerTest, ImpossibleConfigsAreRefused) {
  LearnerConfig c;
  c.kind = "tree";
  EXPECT_FALSE(MakeLearner(c).ok());
  c = LearnerConfig{};
  c.bits = 40;
  EXPECT_FALSE(MakeLearner(c).ok());
}

}  // namespace
}  // namespace herald::model
