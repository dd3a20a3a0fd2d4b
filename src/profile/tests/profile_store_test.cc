// Profiles on a real pipeline (event log, store, shards, the privacy transform):
// the profile upsert parser and its errors, segment counts of the columnar
// evaluator against a brute-force evaluation of every user, the classes on the
// virtual clock, and a restart that gives the same answers.
#include "profile/profile_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <random>

#include "core/metrics.h"
#include "core/time_format.h"
#include "log/event_log.h"
#include "profile/privacy.h"
#include "stream/feature_store.h"
#include "stream/pipeline.h"

namespace herald::profile {
namespace {

Micros T(const char* iso) { return ParseIsoTime(iso).value(); }
constexpr Micros kHour = 3600 * kMicrosPerSecond;

TEST(ParseUsersTest, AcceptsTheProfileObjectAndNamesTheFieldOfEachError) {
  auto ok = ParseUsers(R"({"users":[{"id":"u1","tz":"Asia/Shanghai","profile":{"name":"Li","age":27,
      "region":"Guangdong","city":"Shenzhen","os":"ios","device":"iPhone15,2","language":"zh-CN",
      "gender":"f","occupation":"student","registered_at":"2026-03-01T08:00:00+08:00","ltv":12.5,
      "friends":40,"groups":["g1","g2"],"group_features":{"g1_size":500}}}]})",
                       "t", 1000);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ASSERT_EQ(ok->size(), 1u);
  ProfilePatch p;
  ASSERT_TRUE(DecodePatch(*(*ok)[0].profile, &p).ok());
  EXPECT_EQ(p.name, "Li");
  EXPECT_EQ(p.age, 27);
  EXPECT_EQ(p.groups, (std::vector<std::string>{"g1", "g2"}));
  EXPECT_EQ(p.registered_at, T("2026-03-01T00:00:00Z"));
  EXPECT_EQ(EncodePatch(p), *(*ok)[0].profile);

  auto err = [](const char* body) {
    auto r = ParseUsers(body, "t", 1000);
    return r.ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_EQ(err(R"({"users":[{"id":"u1","profile":{"shoe":42}}]})").substr(0, 36), "users[0].profile.shoe: unknown field");
  EXPECT_EQ(err(R"({"users":[{"id":"u1","profile":{"age":-3}}]})"),
            "users[0].profile.age: must be an integer between 0 and 150");
  EXPECT_EQ(err(R"({"users":[{"id":"u1"},{"id":"u2","profile":{"region":7}}]})"),
            "users[1].profile.region: must be a string");
  EXPECT_EQ(err(R"({"users":[{"profile":{}}]})"), "users[0].id: required string");
  EXPECT_EQ(err(R"({"users":[{"id":"u1","tz":"Mars/Olympus"}]})"), "users[0].tz: unknown time zone Mars/Olympus");
  EXPECT_EQ(err(R"({"users":[{"id":"u1","extra":1}]})"), "users[0].extra: unknown field (id, tz, profile)");
  EXPECT_EQ(err(R"({"users":[1]})"), "users[0]: must be an object");
  EXPECT_EQ(err(R"({"users":{}})"), "users: must be an array");
  EXPECT_EQ(err("{\"users\":[").substr(0, 13), "invalid JSON:");
  EXPECT_EQ(err(R"({"users":[{"id":"u1","profile":{"age":30,"age":31}}]})"), "users[0].profile.age: given twice");
}

class ProfileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("profile-store-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    db_ = store::Db::Open((dir_ / "store").string(), {}, stream::PipelineColumnFamilies()).value();
    eventlog::LogOptions lo;
    lo.dir = (dir_ / "log").string();
    lo.partitions = 4;
    lo.metrics = &metrics_;
    lo.clock = &clock_;
    log_ = eventlog::EventLog::Open(lo).value();
    shards_ = std::make_unique<ShardExecutor>(2, "t", &clock_);
    stream::PipelineOptions po;
    po.log = log_.get();
    po.db = db_.get();
    po.shards = shards_.get();
    po.clock = &clock_;
    po.metrics = &metrics_;
    po.allowed_lateness = 400 * 24 * kHour;
    po.checkpoint_interval = 3600 * kMicrosPerSecond;
    po.transform = &privacy_;
    pipeline_ = stream::Pipeline::Create(po).value();
    const ProfileConfig* cfg = &classes_;
    profiles_ = pipeline_->Register<ProfileStore>("profile", store::StateTag::kProfile, [=](stream::Partition& p) {
      return std::make_unique<ProfileStore>(cfg, p.id());
    });
    auto h = profiles_;
    pipeline_->SetClassifier([h](stream::Partition& p, const stream::AppliedEvent& e) {
      return ClassName(p.Get(h).ClassOf(e));
    });
    ASSERT_TRUE(pipeline_->Start().ok());
  }
  void Close() {
    if (!pipeline_) return;
    pipeline_->Stop();
    shards_->Stop();
    pipeline_.reset();
    shards_.reset();
    log_.reset();
    db_.reset();
  }
  void Ingest(std::vector<stream::Event> evs) {
    std::promise<Status> p;
    pipeline_->Ingest(std::move(evs), [&](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get().ok());
  }
  void Users(const std::string& body) {
    auto updates = ParseUsers(body, "t", 100000);
    ASSERT_TRUE(updates.ok()) << updates.status().message();
    std::promise<Status> p;
    pipeline_->UpdateUsers(std::move(*updates), [&](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get().ok());
  }
  stream::Event Ev(const std::string& user, stream::EventType type, Micros ts) {
    stream::Event e;
    e.tenant.assign(1, 't');
    e.user_id = user;
    e.type = type;
    e.ts = ts;
    return e;
  }
  // Columnar count over every partition, and the brute-force count of the
  // per-user evaluator over `users`.
  std::pair<size_t, size_t> Counts(const std::string& expr, const std::vector<std::string>& users, Micros now) {
    auto seg = Segment::Compile(expr);
    EXPECT_TRUE(seg.ok()) << expr << ": " << seg.status().message();
    if (!seg.ok()) return {0, 0};
    size_t columnar = 0, brute = 0;
    auto h = profiles_;
    for (PartitionId p = 0; p < 4; ++p) {
      columnar += pipeline_
                      ->CallOnPartition(p, [&](stream::Partition& part) -> Result<size_t> {
                        return part.Get(h).Match(*seg, "t", now);
                      })
                      .value();
    }
    for (const auto& u : users) {
      brute += pipeline_
                   ->CallOnUser(u, [&](stream::Partition& part) -> Result<size_t> {
                     auto v = part.Get(h).View("t", u, now);
                     return v && seg->Matches(*v, now) ? 1 : 0;
                   })
                   .value();
    }
    return {columnar, brute};
  }
  std::string Json(const std::string& user, Micros now) {
    auto h = profiles_;
    return pipeline_
        ->CallOnUser(user, [&](stream::Partition& part) -> Result<std::string> {
          std::string out;
          if (!part.Get(h).UserJson("t", user, "UTC", now, &out)) return Status::NotFound("unknown");
          return out;
        })
        .value();
  }
  UserClass ClassOf(const std::string& user, Micros now) {
    auto h = profiles_;
    return pipeline_
        ->CallOnUser(user, [&](stream::Partition& part) -> Result<UserClass> {
          return part.Get(h).ClassOf("t", user, now);
        })
        .value();
  }

  std::filesystem::path dir_;
  ProfileConfig classes_;
  PrivacyTransform privacy_{"test-secret"};
  VirtualClock clock_{T("2026-03-01T00:00:00Z")};
  MetricsRegistry metrics_;
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<eventlog::EventLog> log_;
  std::unique_ptr<ShardExecutor> shards_;
  std::unique_ptr<stream::Pipeline> pipeline_;
  stream::StateHandle<ProfileStore> profiles_;
};

TEST_F(ProfileStoreTest, SegmentCountsMatchABruteForceEvaluationOfEveryUser) {
  std::mt19937 rng(7);
  const char* regions[] = {"Guangdong", "Beijing", "Shanghai", "Sichuan"};
  const char* occupations[] = {"student", "executive", "business", "creator", ""};
  const char* tags[] = {"finance", "sports", "travel", "games"};
  const char* accounts[] = {"acct_1", "acct_2", "acct_42"};
  const Micros now = T("2026-03-20T12:00:00Z");
  std::vector<std::string> users;
  std::string body = "{\"users\":[";
  std::vector<stream::Event> evs;
  for (int i = 0; i < 600; ++i) {
    const std::string u = "u" + std::to_string(i);
    users.push_back(u);
    if (i) body += ',';
    body += "{\"id\":\"" + u + "\",\"profile\":{\"region\":\"" + regions[rng() % 4] + "\"";
    if (rng() % 4) body += ",\"age\":" + std::to_string(10 + rng() % 60);
    const char* occ = occupations[rng() % 5];
    if (*occ) body += std::string(",\"occupation\":\"") + occ + "\"";
    if (rng() % 2) body += ",\"friends\":" + std::to_string(rng() % 300);
    if (rng() % 3 == 0) body += ",\"groups\":[\"g" + std::to_string(rng() % 3) + "\"]";
    if (rng() % 5 == 0) body += ",\"ltv\":" + std::to_string(rng() % 500);
    body += "}}";
    const Micros base = now - static_cast<Micros>(rng() % (40 * 24)) * kHour;
    if (rng() % 3 == 0) evs.push_back(Ev(u, stream::EventType::kRegister, base - 2 * kHour));
    for (int k = 0, n = static_cast<int>(rng() % 12); k < n; ++k) {
      auto e = Ev(u, rng() % 3 ? stream::EventType::kRead : stream::EventType::kAppOpen, base + k * kHour);
      if (e.type == stream::EventType::kRead) {
        e.item = "item" + std::to_string(rng() % 50);
        e.tags = {tags[rng() % 4]};
        if (rng() % 2) e.tags.push_back(tags[rng() % 4]);
        e.attrs = "{\"item\":\"" + e.item + "\"}";
      }
      evs.push_back(e);
    }
    if (rng() % 2) {
      auto e = Ev(u, stream::EventType::kLocation, base);
      e.lat = 31.23 + (static_cast<double>(rng() % 1000) - 500) / 5000.0;
      e.lng = 121.47 + (static_cast<double>(rng() % 1000) - 500) / 5000.0;
      e.attrs = "{\"lat\":1,\"lng\":2}";
      evs.push_back(e);
    }
    for (const char* a : accounts) {
      if (rng() % 3 == 0) {
        auto e = Ev(u, stream::EventType::kFollow, base);
        e.account_id = a;
        evs.push_back(e);
      }
    }
    if (rng() % 4 == 0) evs.push_back(Ev(u, stream::EventType::kPay, base));
  }
  body += "]}";
  Users(body);
  Ingest(evs);
  const std::vector<std::string> exprs = {
      "region = \"Guangdong\"",
      "region in (Beijing, Shanghai) and age >= 30",
      "not (age < 25) or occupation = student",
      "class in (student, new_user, dormant, churn_risk)",
      "class = low_frequency or class = high_frequency",
      "tag(\"finance\") > 0.3 and last_active < 7d",
      "tag(\"sports\") >= 0.5 or tag(\"games\") < 0.2",
      "follows(\"acct_42\") and not follows(\"acct_1\")",
      "near(31.23, 121.47, 3km)",
      "near(31.25, 121.45, 1200m) or member(\"g1\")",
      "friends > 100 and reads >= 3 and last_active < 20d and region != \"Sichuan\" and age <= 60",
      "registered < 10d or pays >= 1 or ltv > 250",
      "region = \"Atlantis\"",
      "region != \"Atlantis\" and shares = 0",
  };
  size_t nonzero = 0;
  for (const auto& e : exprs) {
    auto [columnar, brute] = Counts(e, users, now);
    EXPECT_EQ(columnar, brute) << e;
    nonzero += columnar > 0 && columnar < users.size();
  }
  EXPECT_GE(nonzero, exprs.size() - 3);  // the expressions select, they do not take all or nothing

  // A restart (checkpoint, then load and replay) gives the same answers.
  std::vector<size_t> before;
  for (const auto& e : exprs) before.push_back(Counts(e, users, now).first);
  const std::string json = Json("u7", now);
  ASSERT_TRUE(pipeline_->Checkpoint().ok());
  Close();
  Open();
  for (size_t i = 0; i < exprs.size(); ++i) EXPECT_EQ(Counts(exprs[i], users, now).first, before[i]) << exprs[i];
  EXPECT_EQ(Json("u7", now), json);
}

TEST_F(ProfileStoreTest, ANewUserStopsBeingNewAfterTheConfiguredPeriod) {
  const Micros t0 = T("2026-03-01T09:00:00Z");
  Ingest({Ev("n0", stream::EventType::kSent, t0)});  // classified before any row exists
  Ingest({Ev("n1", stream::EventType::kRegister, t0)});
  Ingest({Ev("n1", stream::EventType::kSent, t0)});
  EXPECT_EQ(ClassOf("n1", t0 + kHour), UserClass::kNewUser);
  EXPECT_EQ(ClassOf("n1", t0 + 24 * kHour - 1), UserClass::kNewUser);
  EXPECT_EQ(ClassOf("n1", t0 + 24 * kHour), UserClass::kLowFrequency);
  // The class answer in the segment follows the clock too.
  std::vector<std::string> users = {"n1"};
  EXPECT_EQ(Counts("class = new_user", users, t0 + kHour).first, 1u);
  EXPECT_EQ(Counts("class = new_user", users, t0 + 25 * kHour).first, 0u);
  // Thirty-one silent days later: dormant.
  EXPECT_EQ(ClassOf("n1", t0 + 31 * 24 * kHour), UserClass::kDormant);
}

TEST_F(ProfileStoreTest, ClassesFollowTheProfileAndTheBehaviour) {
  const Micros t0 = T("2026-03-10T12:00:00Z");
  Users(R"({"users":[{"id":"s1","profile":{"occupation":"student"}},{"id":"e1","profile":{"occupation":"executive"}},
      {"id":"b1","profile":{"occupation":"business"}},{"id":"y1","profile":{"age":17}},
      {"id":"v1","profile":{"ltv":500}}]})");
  std::vector<stream::Event> evs;
  for (const char* u : {"s1", "e1", "b1", "y1", "v1", "h1", "c1", "o1", "i1"}) {
    evs.push_back(Ev(u, stream::EventType::kAppOpen, t0 - 10 * 24 * kHour));
  }
  for (int k = 0; k < 30; ++k) evs.push_back(Ev("h1", stream::EventType::kAppOpen, t0 - k * kHour));
  for (int k = 0; k < 25; ++k) evs.push_back(Ev("c1", stream::EventType::kShare, t0 - 2 * 24 * kHour + k));
  for (int k = 0; k < 8; ++k) evs.push_back(Ev("o1", stream::EventType::kAppOpen, T("2026-03-09T23:00:00Z") + k * 60));
  for (int k = 0; k < 3; ++k) evs.push_back(Ev("i1", stream::EventType::kConverted, t0 - kHour + k));
  Ingest(evs);
  EXPECT_EQ(ClassOf("s1", t0), UserClass::kStudent);
  EXPECT_EQ(ClassOf("e1", t0), UserClass::kExecutive);
  EXPECT_EQ(ClassOf("b1", t0), UserClass::kBusiness);
  EXPECT_EQ(ClassOf("y1", t0), UserClass::kStudent);
  EXPECT_EQ(ClassOf("v1", t0), UserClass::kHighValueSilent);
  EXPECT_EQ(ClassOf("h1", t0), UserClass::kHighFrequency);
  EXPECT_EQ(ClassOf("c1", t0), UserClass::kContentCreator);
  EXPECT_EQ(ClassOf("o1", t0), UserClass::kNightOwl);
  EXPECT_EQ(ClassOf("i1", t0), UserClass::kInstantConsumption);
  // Twelve days of silence after 30 activity events: churn risk.
  EXPECT_EQ(ClassOf("h1", t0 + 12 * 24 * kHour), UserClass::kChurnRisk);
}

TEST_F(ProfileStoreTest, NoAnswerShowsTheCellOrTheItem) {
  auto loc = Ev("p1", stream::EventType::kLocation, T("2026-03-01T10:00:00Z"));
  loc.lat = 31.2304;
  loc.lng = 121.4737;
  loc.attrs = "{\"lat\":31.2304,\"lng\":121.4737}";
  auto read = Ev("p1", stream::EventType::kRead, T("2026-03-01T10:01:00Z"));
  read.item = "my-secret-article";
  read.attrs = "{\"item\":\"my-secret-article\"}";
  Ingest({loc, read});
  const std::string json = Json("p1", T("2026-03-01T11:00:00Z"));
  EXPECT_NE(json.find("\"located\":true"), std::string::npos) << json;
  EXPECT_EQ(json.find(CellToken(GeoCell(31.2304, 121.4737))), std::string::npos) << json;
  EXPECT_EQ(json.find("31.23"), std::string::npos) << json;
  EXPECT_EQ(json.find("secret"), std::string::npos) << json;
  std::vector<std::string> users = {"p1"};
  EXPECT_EQ(Counts("near(31.2304, 121.4737, 1km)", users, T("2026-03-01T11:00:00Z")).first, 1u);
  EXPECT_EQ(Counts("near(39.90, 116.40, 5km)", users, T("2026-03-01T11:00:00Z")).first, 0u);
}

}  // namespace
}  // namespace herald::profile
