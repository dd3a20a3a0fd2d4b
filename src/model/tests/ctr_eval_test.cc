// Reading CTR data: both formats, and bad input named with its line number.
#include "model/ctr_eval.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace herald::model {
namespace {

std::string Write(const std::string& name, const std::string& text) {
  auto p = std::filesystem::temp_directory_path() / name;
  std::ofstream(p) << text;
  return p.string();
}

TEST(CtrDataTest, ReadsLibfmAndCsv) {
  std::vector<std::string> cols;
  auto d = ReadDataset(Write("ctr-a.libfm", "1 3:1 5:0.5\n-1 2:1\n\n+1 7:2\n0 1:1\n"), DataFormat::kLibfm, 16, &cols);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->size(), 4u);
  EXPECT_EQ(d->labels, (std::vector<std::uint8_t>{1, 0, 1, 0}));
  EXPECT_EQ(d->at(0).size(), 2u);
  EXPECT_FLOAT_EQ(d->at(0)[1].value, 0.5f);
  auto c = ReadDataset(Write("ctr-a.csv", "id,click,site,app\n1,0,s1,a1\n2,1,s2,a1\n"), DataFormat::kCsv, 16, &cols);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->size(), 2u);
  EXPECT_EQ(c->at(1).size(), 3u);  // id, site, app
  EXPECT_EQ(c->at(0)[2].index, HashFeature("app=a1", 16));
}

TEST(CtrDataTest, HashedSamplesKeepTheirIndices) {
  // herald's own samples carry the indices the model scored: they are not hashed again.
  std::vector<std::string> cols;
  auto d = ReadDataset(Write("ctr-a.hsv", "1 3:1 65535:1\n0 7:1\n"), DataFormat::kHashed, 16, &cols);
  ASSERT_TRUE(d.ok()) << d.status().message();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ(d->at(0)[0].index, 3u);
  EXPECT_EQ(d->at(0)[1].index, 65535u);
  EXPECT_EQ(d->at(1)[0].index, 7u);
  EXPECT_EQ(ParseDataFormat("hashed").value(), DataFormat::kHashed);
}

TEST(CtrDataTest, BadInputNamesTheLine) {
  struct Case {
    const char* text;
    DataFormat format;
    const char* want;
  } cases[] = {
      {"1 3:1\n7 2:1\n", DataFormat::kLibfm, ":2: label must be 0, 1, -1 or +1, got \"7\""},
      {"1 3:1\n1 abc\n", DataFormat::kLibfm, ":2: bad feature \"abc\""},
      {"1 3:x\n", DataFormat::kLibfm, ":1: bad feature value"},
      {"", DataFormat::kLibfm, "no samples"},
      {"a,b\n1,2\n", DataFormat::kCsv, ":1: the header has no label"},
      {"label,b\n1,2\n0\n", DataFormat::kCsv, ":3: expected 2 fields, got 1"},
      {"label,b\n2,x\n", DataFormat::kCsv, ":2: label must be 0 or 1"},
      {"1 3:1\n0 65536:1\n", DataFormat::kHashed, ":2: index 65536 is outside the model's 16 bits"},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::vector<std::string> cols;
    std::string name = "ctr-bad-";
    name += std::to_string(i++);
    auto d = ReadDataset(Write(name, c.text), c.format, 16, &cols);
    ASSERT_FALSE(d.ok()) << c.text;
    EXPECT_NE(d.status().message().find(c.want), std::string::npos) << d.status().message();
  }
  std::vector<std::string> cols;
  EXPECT_NE(ReadDataset("/nonexistent", DataFormat::kCsv, 16, &cols).status().message().find("cannot open"),
            std::string::npos);
}

TEST(CtrDataTest, AucAndLoglossOfKnownPredictions) {
  Quality q = Measure({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1});
  EXPECT_DOUBLE_EQ(q.auc, 0.75);
  EXPECT_NEAR(q.logloss, (-std::log(0.9) - std::log(0.6) - std::log(0.35) - std::log(0.8)) / 4, 1e-12);
}

}  // namespace
}  // namespace herald::model
