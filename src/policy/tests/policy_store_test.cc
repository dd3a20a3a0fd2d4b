// The policy's state on a real pipeline (event log, store, shards): events fold
// into it in log order, sent events are decided and recorded, every account's
// cap holds for a user with 40 follows, and a restart (checkpoint plus replay)
// gives the same state and decisions.
#include "policy/policy_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "core/metrics.h"
#include "core/time_format.h"
#include "log/event_log.h"
#include "stream/feature_store.h"
#include "stream/pipeline.h"

namespace herald::policy {
namespace {

Micros T(const char* iso) { return ParseIsoTime(iso).value(); }
constexpr Micros kHour = 3600 * kMicrosPerSecond;
constexpr Micros kDay = 24 * kHour;

class PolicyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("policy-store-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    cfg_.daily_cap = 255;
    cfg_.quiet_start = cfg_.quiet_end = "00:00";
    ASSERT_TRUE(cfg_.Resolve().ok());
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    auto families = stream::PipelineColumnFamilies();
    families.push_back(kAccountsFamily);
    db_ = store::Db::Open((dir_ / "store").string(), {}, families).value();
    accounts_ = AccountDirectory::Load(db_.get(), &clock_, cfg_).value();
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
    po.allowed_lateness = 10 * 60 * kMicrosPerSecond;
    po.checkpoint_interval = 3600 * kMicrosPerSecond;
    pipeline_ = stream::Pipeline::Create(po).value();
    auto cf = db_->Family(store::kStateFamily).value();
    store::Db* db = db_.get();
    const PolicyConfig* cfg = &cfg_;
    const AccountDirectory* accounts = accounts_.get();
    policy_ = pipeline_->Register<PolicyStore>(
        "policy", store::StateTag::kPolicyAccounts, [=](stream::Partition& p) {
          return std::make_unique<PolicyStore>(db, cf, p.id(), cfg, accounts, 10 * 60 * kMicrosPerSecond, 1000);
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
    accounts_.reset();
    db_.reset();
  }
  stream::Event Ev(stream::EventType type, Micros ts, std::string account = "", std::string message = "") {
    stream::Event e;
    e.tenant.assign(1, 't');
    e.user_id = "u1";
    e.type = type;
    e.ts = ts;
    e.account_id = std::move(account);
    e.message_id = std::move(message);
    return e;
  }
  void Ingest(std::vector<stream::Event> evs) {
    std::promise<Status> p;
    pipeline_->Ingest(std::move(evs), [&](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get().ok());
  }
  std::vector<DecisionRecord> Decisions(size_t limit) {
    auto h = policy_;
    Micros now = clock_.Now();
    return pipeline_
        ->CallOnUser("u1", [&](stream::Partition& p) { return p.Get(h).Decisions("t", "u1", limit, now); })
        .value();
  }
  Decision Check(const std::string& account, Micros now) {
    auto h = policy_;
    auto a = accounts_->Find("t", account).value();
    AccountView view = accounts_->View("t", a);
    return pipeline_
        ->CallOnUser("u1",
                     [&](stream::Partition& p) -> Result<Decision> {
                       const PolicyStore::User* u = p.Get(h).Find("t", "u1");
                       if (!u) return Status::NotFound("no policy state");
                       Candidate c;
                       c.account = view;
                       const FollowPolicy* f = PolicyStore::FollowOf(*u, view.key);
                       return Decide(u->user, f, c, now, p.features().ZoneOf("t", "u1"), cfg_);
                     })
        .value();
  }

  std::filesystem::path dir_;
  PolicyConfig cfg_;
  VirtualClock clock_{T("2026-03-01T00:00:00Z")};
  MetricsRegistry metrics_;
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<AccountDirectory> accounts_;
  std::unique_ptr<eventlog::EventLog> log_;
  std::unique_ptr<ShardExecutor> shards_;
  std::unique_ptr<stream::Pipeline> pipeline_;
  stream::StateHandle<PolicyStore> policy_;
};

TEST_F(PolicyStoreTest, EveryAccountsMonthlyCapHoldsForAUserWithFortyFollows) {
  std::vector<stream::Event> evs;
  for (int a = 0; a < 40; ++a) {
    std::string id = "svc" + std::to_string(a);
    ASSERT_TRUE(accounts_->Upsert("t", Account{id, AccountType::kService, id, 1, 0}).ok());
    evs.push_back(Ev(stream::EventType::kFollow, T("2026-03-01T00:00:00Z"), id));
    evs.back().attrs = "{\"followed_at\":1735689600}";  // 2025-01-01: long settled
  }
  // Six pushes from every account, one a day each, interleaved over the accounts.
  for (int day = 0; day < 6; ++day) {
    for (int a = 0; a < 40; ++a) {
      std::string id = "svc" + std::to_string(a);
      const Micros at = T("2026-03-02T04:00:00Z") + day * kDay + a * 60 * kMicrosPerSecond;
      evs.push_back(Ev(stream::EventType::kSent, at, id, id + "-m" + std::to_string(day)));
      evs.push_back(Ev(stream::EventType::kOpened, at + 30 * kMicrosPerSecond, "", id + "-m" + std::to_string(day)));
    }
  }
  Ingest(std::move(evs));
  auto check = [&] {
    auto decisions = Decisions(1000);
    ASSERT_EQ(decisions.size(), 50u);  // policy.decisions_kept
    std::map<std::string, int> suppressed;
    for (const auto& d : decisions) {
      // The latest 50 are the last two rounds (days 5 and 6, 80 sends), newest first.
      EXPECT_EQ(d.decision.rule, Rule::kServiceMonthlyCap) << d.message_id;
      ++suppressed[d.account_id];
    }
    for (int a = 0; a < 40; ++a) {
      std::string id = "svc" + std::to_string(a);
      Decision d = Check(id, T("2026-03-20T04:00:00Z"));
      EXPECT_EQ(d.rule, Rule::kServiceMonthlyCap) << id;
      EXPECT_EQ(d.count, 6u) << id;  // six were sent (and counted), four were allowed
      EXPECT_EQ(Check(id, T("2026-04-01T04:00:00Z")).verdict, Verdict::kAllow) << id;
    }
  };
  check();
  // Restart from the log alone, then from a checkpoint.
  Close();
  Open();
  check();
  ASSERT_TRUE(pipeline_->Checkpoint().ok());
  Close();
  Open();
  check();
}

TEST_F(PolicyStoreTest, SentEventsAreDecidedBeforeTheyCountAndMarksFindTheirAccount) {
  ASSERT_TRUE(accounts_->Upsert("t", Account{"biz", AccountType::kBusiness, "Biz", 1, 0}).ok());
  const Micros t = T("2026-03-02T04:00:00Z");
  Ingest({Ev(stream::EventType::kFollow, t, "biz")});
  for (int i = 0; i < 6; ++i) {
    Ingest({Ev(stream::EventType::kSent, t + i * kHour, "biz", "m" + std::to_string(i)),
            Ev(stream::EventType::kOpened, t + i * kHour + 60 * kMicrosPerSecond, "", "m" + std::to_string(i))});
  }
  auto d = Decisions(10);
  ASSERT_EQ(d.size(), 6u);
  EXPECT_EQ(d[0].message_id, "m5");
  EXPECT_EQ(d[0].decision.rule, Rule::kNewFollowerFirstDays);
  for (size_t i = 1; i < 6; ++i) EXPECT_EQ(d[i].decision.verdict, Verdict::kAllow) << d[i].message_id;
  // "Not interested" on a pushed message, without account_id: the push's account.
  Ingest({Ev(stream::EventType::kNotInterested, t + 7 * kHour, "", "m5")});
  Decision after = Check("biz", t + 10 * kDay);
  EXPECT_EQ(after.rule, Rule::kNotInterested);
  EXPECT_DOUBLE_EQ(after.weight, 0.5);
  EXPECT_EQ(Check("biz", t + 7 * kHour + 30 * kDay).verdict, Verdict::kAllow);
}

}  // namespace
}  // namespace herald::policy
