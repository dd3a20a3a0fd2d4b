// The model registry and incremental training: versions survive a restart,
// promote and rollback switch what is served, a damaged snapshot is refused and
// the version in service stays, and training promotes only what is not worse.
#include "model/registry.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "model/push_features.h"
#include "model/send_time.h"
#include "model/train.h"

namespace herald::model {
namespace {

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("registry-" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<Learner> Trained(int seed) {
    LearnerConfig c;
    c.bits = 12;
    auto m = MakeLearner(c).value();
    std::mt19937 rng(seed);
    for (int i = 0; i < 500; ++i) {
      std::vector<Feature> x = {{static_cast<std::uint32_t>(rng() % 100), 1}};
      m->Update(x, x[0].index < 30);
    }
    return m;
  }
  std::string dir_;
  VirtualClock clock_{1'772'323'200'000'000};
};

TEST_F(RegistryTest, VersionsSurviveARestartAndPromoteAndRollbackSwitchWhatIsServed) {
  std::vector<Feature> probe = {{5, 1}};
  double p1, p2;
  {
    auto r = ModelRegistry::Open(dir_, "ctr", &clock_).value();
    EXPECT_EQ(r->Current(), nullptr);
    auto a = Trained(1), b = Trained(2);
    p1 = a->Predict(probe);
    p2 = b->Predict(probe);
    ASSERT_NE(p1, p2);
    EXPECT_EQ(r->Publish(*a, 500, 0.5, 0.7, true).value().version, 1u);
    auto held = r->Current();  // a reader keeps its snapshot across a publish
    EXPECT_EQ(r->Publish(*b, 500, 0.4, 0.8, true).value().version, 2u);
    EXPECT_EQ(held->Predict(probe), p1);
    EXPECT_EQ(r->Current()->Predict(probe), p2);
    ASSERT_TRUE(r->Rollback().ok());
    EXPECT_EQ(r->Current()->Predict(probe), p1);
    EXPECT_EQ(r->current_version(), 1u);
    EXPECT_FALSE(r->Rollback().ok());  // nothing before version 1
    ASSERT_TRUE(r->Promote(2).ok());
    EXPECT_FALSE(r->Promote(9).ok());
  }
  auto r = ModelRegistry::Open(dir_, "ctr", &clock_).value();
  EXPECT_EQ(r->current_version(), 2u);
  EXPECT_EQ(r->Current()->Predict(probe), p2);
  ASSERT_EQ(r->List().size(), 2u);
  EXPECT_DOUBLE_EQ(r->List()[1].holdout_auc, 0.8);
}

TEST_F(RegistryTest, ADamagedSnapshotIsRefusedAndThePreviousVersionStaysInService) {
  std::vector<Feature> probe = {{5, 1}};
  auto r = ModelRegistry::Open(dir_, "ctr", &clock_).value();
  auto a = Trained(1);
  ASSERT_TRUE(r->Publish(*a, 1, 0.5, 0.7, true).ok());
  ASSERT_TRUE(r->Publish(*Trained(2), 1, 0.5, 0.7, false).ok());
  // Version 2's file is cut short on disk.
  const std::string v2 = dir_ + "/ctr/v000002.hmdl";
  std::filesystem::resize_file(v2, std::filesystem::file_size(v2) / 2);
  Status s = r->Promote(2);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("checksum"), std::string::npos) << s.message();
  EXPECT_EQ(r->current_version(), 1u);
  EXPECT_EQ(r->Current()->Predict(probe), a->Predict(probe));
  // Promoted anyway by hand in the manifest: a restart serves the newest version that loads.
  r.reset();
  {
    std::ifstream in(dir_ + "/ctr/manifest.json");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    auto at = text.find("\"promoted\": [\n    1\n  ]");
    ASSERT_NE(at, std::string::npos) << text;
    text.replace(at, std::string("\"promoted\": [\n    1\n  ]").size(), "\"promoted\": [1, 2]");
    std::ofstream(dir_ + "/ctr/manifest.json") << text;
  }
  auto again = ModelRegistry::Open(dir_, "ctr", &clock_).value();
  EXPECT_EQ(again->current_version(), 1u);
  EXPECT_NE(again->open_warning().find("version 2"), std::string::npos) << again->open_warning();
}

TEST_F(RegistryTest, TrainingPromotesOnlyWhatIsNotWorseOnTheHoldout) {
  auto r = ModelRegistry::Open(dir_, "ctr", &clock_).value();
  LearnerConfig c;
  c.bits = 12;
  auto make = [](int seed, bool flip) {
    Dataset d;
    std::mt19937 rng(seed);
    for (int i = 0; i < 4000; ++i) {
      const std::uint32_t f = rng() % 100;
      d.features.push_back({f, 1});
      d.offsets.push_back(static_cast<std::uint32_t>(d.features.size()));
      const bool y = (f < 30) != flip ? rng() % 10 < 8 : rng() % 10 < 2;
      d.labels.push_back(y);
    }
    return d;
  };
  auto first = TrainIncremental(*r, make(1, false), c).value();
  EXPECT_TRUE(first.promoted);
  EXPECT_GT(first.holdout.auc, 0.7);
  auto second = TrainIncremental(*r, make(2, false), c).value();
  EXPECT_TRUE(second.promoted) << second.holdout.logloss << " vs " << second.previous_logloss;
  // A day whose labels are the opposite, with a holdout of the usual kind: the new
  // version is worse on it and is not promoted.
  Dataset bad = make(3, true);
  Dataset usual = make(4, false);
  for (size_t i = 3600; i < 4000; ++i) bad.labels[i] = usual.labels[i], bad.features[i] = usual.features[i];
  auto third = TrainIncremental(*r, bad, c).value();
  EXPECT_FALSE(third.promoted) << third.holdout.logloss << " vs " << third.previous_logloss;
  EXPECT_EQ(r->current_version(), second.version.version);
  EXPECT_EQ(r->List().size(), 3u);
}

// A digest's articles are scored for the user as single pushes would be, by the
// model in service: the same features and pCTR as ScorePush, so the ranking is
// the CTR model's.
TEST_F(RegistryTest, ScoreMessagesScoresEachMessageAsScorePushWould) {
  PushContext user;
  user.user_class = "student";
  user.local_hour = 20;
  user.weekday = 2;
  user.device = "ios";
  LearnerConfig lc;
  lc.bits = 16;
  auto m = MakeLearner(lc).value();
  std::mt19937 rng(3);
  for (int i = 0; i < 3000; ++i) {
    PushContext c = user;
    c.account_id = i % 2 ? "food" : "tech";
    c.form = "text";
    c.title = "story";
    m->Update(PushFeatures(c, lc.bits), c.account_id == "food" ? rng() % 3 == 0 : rng() % 30 == 0);
  }
  std::vector<MessageTraits> traits = {{"tech", "text", "story"}, {"food", "text", "story"}};
  std::vector<PushScore> cold;
  ScoreMessages(nullptr, user, traits, 12, &cold);  // no model: the source's rate at 20:00
  ASSERT_EQ(cold.size(), 2u);
  EXPECT_EQ(cold[0].pctr, SourceOpenRate(20));
  EXPECT_EQ(cold[0].version, 0u);

  auto r = ModelRegistry::Open(dir_, "ctr", &clock_).value();
  ASSERT_TRUE(r->Publish(*m, 3000, 0.5, 0.7, true).ok());
  std::vector<PushScore> scores;
  ScoreMessages(r.get(), user, traits, 12, &scores);
  ASSERT_EQ(scores.size(), 2u);
  for (size_t i = 0; i < traits.size(); ++i) {
    PushContext c = user;
    c.account_id = std::string(traits[i].account_id);
    c.form = std::string(traits[i].form);
    c.title = std::string(traits[i].title);
    const PushScore one = ScorePush(r.get(), c, 12);
    EXPECT_DOUBLE_EQ(scores[i].pctr, one.pctr);
    EXPECT_EQ(scores[i].version, 1u);
    ASSERT_EQ(scores[i].features.size(), one.features.size());
    for (size_t k = 0; k < one.features.size(); ++k) EXPECT_EQ(scores[i].features[k].index, one.features[k].index);
  }
  EXPECT_GT(scores[1].pctr, 2 * scores[0].pctr);  // food's pushes were opened ten times as often
}

}  // namespace
}  // namespace herald::model
