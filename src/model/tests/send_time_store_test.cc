// The send-time evidence on a real pipeline: activity events in the user's zone
// become days of evidence, the best hour follows them, and a restart (log replay
// and checkpoint) gives the same evidence.
#include "model/send_time_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "core/metrics.h"
#include "log/event_log.h"
#include "stream/pipeline.h"

namespace herald::model {
namespace {

class SendTimeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sendtime-store-" + std::to_string(::getpid()));
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
    lo.partitions = 2;
    lo.metrics = &metrics_;
    lo.clock = &clock_;
    log_ = eventlog::EventLog::Open(lo).value();
    shards_ = std::make_unique<ShardExecutor>(1, "t", &clock_);
    stream::PipelineOptions po{log_.get(), db_.get(), shards_.get(), &clock_, &metrics_};
    po.checkpoint_interval = 3600 * kMicrosPerSecond;
    pipeline_ = stream::Pipeline::Create(po).value();
    auto cf = db_->Family(store::kStateFamily).value();
    store::Db* db = db_.get();
    handle_ = pipeline_->Register<SendTimeStore>("sendtime", store::StateTag::kSendTime, [=](stream::Partition& p) {
      return std::make_unique<SendTimeStore>(db, cf, p.id(), 1000);
    });
    // Users whose id starts with 'n' are night owls, the others students.
    pipeline_->SetClassifier([](stream::Partition&, const stream::AppliedEvent& e) -> std::string_view {
      return e.event.user_id[0] == 'n' ? "night_owl" : "student";
    });
    ASSERT_TRUE(pipeline_->Start().ok());
  }
  void Close() {
    pipeline_->Stop();
    shards_->Stop();
    pipeline_.reset();
    shards_.reset();
    log_.reset();
    db_.reset();
  }
  int Best(int kind) {
    auto h = handle_;
    return pipeline_
        ->CallOnUser("u1",
                     [&](stream::Partition& p) -> Result<int> {
                       auto& s = p.Get(h);
                       auto u = s.Find("t", "u1");
                       if (!u) return Status::NotFound("none");
                       return s.model().BestHour(*u, kind);
                     })
        .value();
  }

  std::filesystem::path dir_;
  VirtualClock clock_{1772323200LL * kMicrosPerSecond};
  MetricsRegistry metrics_;
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<eventlog::EventLog> log_;
  std::unique_ptr<ShardExecutor> shards_;
  std::unique_ptr<stream::Pipeline> pipeline_;
  stream::StateHandle<SendTimeStore> handle_;
};

TEST_F(SendTimeStoreTest, ActivityInTheUsersZoneBecomesTheirHour) {
  ASSERT_TRUE(pipeline_->SetTimeZone("t", "u1", "Asia/Shanghai").ok());
  std::vector<stream::Event> evs;
  for (int day = 0; day < 21; ++day) {
    stream::Event e;
    e.tenant.assign(1, 't');
    e.user_id = "u1";
    e.type = stream::EventType::kAppOpen;
    // 2026-03-02 (a Monday) onward, 21:10 in Shanghai = 13:10 UTC.
    e.ts = (1772457000LL + day * 86400LL) * kMicrosPerSecond;
    evs.push_back(e);
  }
  std::promise<Status> done;
  pipeline_->Ingest(evs, [&](Status s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());
  EXPECT_LE(std::abs(Best(0) - 21), 1) << Best(0);
  EXPECT_LE(std::abs(Best(1) - 21), 1) << Best(1);
  Close();
  Open();  // replay from the log
  EXPECT_LE(std::abs(Best(0) - 21), 1);
  ASSERT_TRUE(pipeline_->Checkpoint().ok());
  Close();
  Open();  // from the checkpoint
  EXPECT_LE(std::abs(Best(0) - 21), 1);
}

TEST_F(SendTimeStoreTest, ANewUserStartsFromTheHourOfTheTenantsUsersOfTheirClass) {
  std::vector<stream::Event> evs;
  for (int day = 0; day < 10; ++day) {
    for (int i = 0; i < 20; ++i) {
      for (const char* who : {"n", "s"}) {
        stream::Event e;
        e.tenant.assign(1, 't');
        e.user_id = who + std::to_string(i);
        e.type = stream::EventType::kAppOpen;
        // UTC users: night owls at 23:10, students at 07:10, from Monday 2026-03-02.
        e.ts = (1772409600LL + day * 86400LL + (who[0] == 'n' ? 23 * 3600 + 600 : 7 * 3600 + 600)) * kMicrosPerSecond;
        evs.push_back(e);
      }
    }
  }
  std::promise<Status> done;
  pipeline_->Ingest(evs, [&](Status s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());
  auto h = handle_;
  auto best_new = [&](const char* cls) {
    return pipeline_
        ->CallOnUser("new-user",
                     [&](stream::Partition& p) -> Result<int> {
                       auto& s = p.Get(h);
                       SendTimeUser u;
                       u.group = s.Group("t", cls);
                       if (!u.group) return Status::NotFound("no group");
                       return s.model().BestHour(u, 0);
                     });
  };
  // Each partition holds its own share of the tenant's users of the class.
  ASSERT_TRUE(best_new("night_owl").ok());
  EXPECT_LE(std::abs(best_new("night_owl").value() - 23), 1);
  EXPECT_LE(std::abs(best_new("student").value() - 7), 1);
  EXPECT_FALSE(best_new("dormant").ok());
  ASSERT_TRUE(pipeline_->Checkpoint().ok());
  Close();
  Open();  // the groups come back from the checkpoint
  EXPECT_LE(std::abs(best_new("night_owl").value() - 23), 1);
  EXPECT_LE(std::abs(best_new("student").value() - 7), 1);
}

TEST(SendTimeRecordTest, RoundTripsAndRefusesGarbage) {
  SendTimeStore::Entry e;
  e.stats.days = {3, 1};
  e.stats.near[0][5] = 2;
  e.day = 9000;
  e.kind = 1;
  e.hours = 0x800;
  auto back = SendTimeStore::Decode(SendTimeStore::Encode(e)).value();
  EXPECT_EQ(back.stats.days, e.stats.days);
  EXPECT_EQ(back.stats.near, e.stats.near);
  EXPECT_EQ((back.day, back.hours), (e.day, e.hours));
  EXPECT_FALSE(SendTimeStore::Decode("").ok());
  EXPECT_FALSE(SendTimeStore::Decode(SendTimeStore::Encode(e).substr(0, 10)).ok());
}

}  // namespace
}  // namespace herald::model
