// The engine's records: a message with its score round-trips (and an unscored
// record of the first format still reads), the score's attrs of a sent event
// parse back, and sample keys sort by the time their window closes.
#include "engine/engine_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "store/db.h"
#include "store/keys.h"
#include "stream/timezones.h"

namespace herald::engine {
namespace {

TEST(EngineStoreTest, AMessageWithItsScoreRoundTrips) {
  MessageRecord m;
  m.user_id = "u1";
  m.account_id = "news";
  m.campaign_id = "c1";
  m.sent_at = 1'000'000;
  m.expires_at = 2'000'000;
  m.outcome = "delivered";
  m.outcome_at = 1'500'000;
  m.receipts = {{"opened", 1'600'000}};
  m.pctr = 0.0731;
  m.model_version = 4;
  m.features = {1, 70000, 1048575};
  auto back = DecodeMessage(EncodeMessage(m));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, m);
  EXPECT_TRUE(back->Engaged(1'600'000));
  EXPECT_FALSE(back->Engaged(1'599'999));
  // The first format had no score: it reads as unscored.
  std::string v1 = EncodeMessage(m);
  v1[0] = 1;
  const size_t score_bytes = 8 + 1 + 1 + 1 + 3 + 3;  // pctr, version, count, three varints
  const size_t ad_bytes = 1 + 1 + 1 + 1 + 1;  // a receipt's article, price, charge, day, articles
  v1.resize(v1.size() - score_bytes - ad_bytes);
  auto old = DecodeMessage(v1);
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ(old->pctr, -1);
  EXPECT_TRUE(old->features.empty());
  EXPECT_EQ(old->receipts, m.receipts);
  EXPECT_FALSE(DecodeMessage(v1.substr(0, v1.size() - 1)).ok());
}

TEST(EngineStoreTest, AnAdsChargeAndADigestsArticlesRoundTrip) {
  MessageRecord m;
  m.user_id = "u1";
  m.account_id = "digest";
  m.sent_at = 1'000'000;
  m.receipts = {{"opened", 1'600'000, "c-2"}, {"clicked", 1'700'000, ""}};
  m.price_micros = 1'200'000;
  m.charge_micros = 60'000;
  m.budget_day = 20'000;
  m.articles = {{"c-1", {1, 2}}, {"c-2", {3}}};
  auto back = DecodeMessage(EncodeMessage(m));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, m);
  // The receipt naming c-2 counts for it; the one naming none for the first listed.
  EXPECT_TRUE(back->ArticleEngaged("c-2", 1'600'000));
  EXPECT_FALSE(back->ArticleEngaged("c-1", 1'600'000));
  EXPECT_TRUE(back->ArticleEngaged("c-1", 1'700'000));

  // The attrs of a sent event carry them into the record.
  std::string attrs = "{\"form\":\"text\"}";
  AppendAdAttrs(1.2, 0.06, 20'000, &attrs);
  AppendArticleAttrs(m.articles, &attrs);
  MessageRecord parsed;
  ParseScoreAttrs(attrs, &parsed);
  EXPECT_EQ(parsed.price_micros, 1'200'000u);
  EXPECT_EQ(parsed.charge_micros, 60'000u);
  EXPECT_EQ(parsed.budget_day, 20'000);
  EXPECT_EQ(parsed.articles, m.articles);
}

TEST(EngineStoreTest, TheScoreTravelsInTheSentEventsAttrs) {
  std::string attrs = R"({"form":"text","priority":"normal","expires_at":1700000000})";
  AppendScoreAttrs(0.125, 3, {0xabc, 7, 1048575}, &attrs);
  EXPECT_EQ(attrs, R"({"form":"text","priority":"normal","expires_at":1700000000,"pctr":0.125,"model_version":3,"x":"abc,7,fffff"})");
  MessageRecord m;
  ParseScoreAttrs(attrs, &m);
  EXPECT_DOUBLE_EQ(m.pctr, 0.125);
  EXPECT_EQ(m.model_version, 3u);
  EXPECT_EQ(m.features, (std::vector<std::uint32_t>{0xabc, 7, 1048575}));
  std::string empty;
  AppendScoreAttrs(0.5, 0, {}, &empty);
  EXPECT_EQ(empty, R"({"pctr":0.5,"model_version":0,"x":""})");
  MessageRecord none;
  ParseScoreAttrs(R"({"form":"text"})", &none);
  EXPECT_EQ(none.pctr, -1);
  EXPECT_TRUE(none.features.empty());
}

TEST(EngineStoreTest, SampleKeysSortByTheirWindowsClose) {
  const std::string early = SampleKey(5'000, "t2", "m-b"), late = SampleKey(6'000, "t1", "m-a");
  EXPECT_LT(early, late);
  Micros close = 0;
  std::string tenant, id;
  ASSERT_TRUE(DecodeSampleKey(late, &close, &tenant, &id));
  EXPECT_EQ(close, 6'000);
  EXPECT_EQ(tenant, "t1");
  EXPECT_EQ(id, "m-a");
  EXPECT_FALSE(DecodeSampleKey("short", &close, &tenant, &id));
}

// A push in the log whose gateway outcome has not come stays in doubt across a
// checkpoint and a restart, with its payload, until its outcome is applied or it
// expires: what Engine::Recovered hands to the gateway again.
TEST(EngineStoreTest, APushWithoutItsOutcomeStaysInDoubtAcrossARestart) {
  auto dir = std::filesystem::temp_directory_path() / ("engine-doubt-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto db = store::Db::Open(dir.string(), {}, {store::kStateFamily}).value();
  auto cf = db->Family(store::kStateFamily).value();
  const Micros t0 = 1'772'380'800'000'000;
  stream::Event sent;
  sent.tenant = "t";
  sent.user_id = "u1";
  sent.type = stream::EventType::kSent;
  sent.ts = t0;
  sent.message_id = "m-1";
  sent.account_id = "news";
  sent.campaign_id = "c-1";
  sent.attrs = "{\"expires_at\":" + std::to_string(t0 / kMicrosPerSecond + 3600) + "}";
  AppendPayloadAttr("{\"id\":\"m-1\",\"title\":\"Hi\"}", &sent.attrs);
  auto apply = [](EngineStore& es, const stream::Event& e) {
    stream::AppliedEvent ae{e, 3, 0, e.ts, {&stream::UtcTimeZone(), nullptr}, {}};
    es.OnEvent(ae);
    ASSERT_TRUE(ae.failure.ok());
  };
  auto checkpoint = [&](EngineStore& es) {
    store::WriteBatch b;
    stream::CheckpointWriter w(&b, cf, 3, store::StateTag::kEngineMessage);
    es.Checkpoint(w);
    ASSERT_TRUE(db->Write(std::move(b)).ok());
    es.OnCheckpointed();
  };
  {
    EngineStore es(db.get(), cf, 3);
    apply(es, sent);
    auto doubt = es.InDoubt(t0 + 1);
    ASSERT_EQ(doubt.size(), 1u);
    EXPECT_EQ(doubt[0].payload, "{\"id\":\"m-1\",\"title\":\"Hi\"}");
    checkpoint(es);
  }
  {
    // After a restart: from the store, with everything the gateway needs.
    EngineStore es(db.get(), cf, 3);
    auto doubt = es.InDoubt(t0 + 1);
    ASSERT_EQ(doubt.size(), 1u);
    EXPECT_EQ(doubt[0].user_id, "u1");
    EXPECT_EQ(doubt[0].message_id, "m-1");
    EXPECT_EQ(doubt[0].account_id, "news");
    EXPECT_EQ(doubt[0].campaign_id, "c-1");
    EXPECT_EQ(doubt[0].expires_at, t0 + 3600 * kMicrosPerSecond);
    EXPECT_TRUE(es.InDoubt(t0 + 3601 * kMicrosPerSecond).empty());  // expired: no use sending it
    // Its outcome comes: no doubt left, then or after the next checkpoint.
    stream::Event delivered = sent;
    delivered.type = stream::EventType::kDelivered;
    delivered.attrs.clear();
    apply(es, delivered);
    EXPECT_TRUE(es.InDoubt(t0 + 2).empty());
    checkpoint(es);
  }
  EngineStore es(db.get(), cf, 3);
  EXPECT_TRUE(es.InDoubt(t0 + 2).empty());
  db.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::engine
