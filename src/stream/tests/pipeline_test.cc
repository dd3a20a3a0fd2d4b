// The pipeline on a real event log and store: ordering, lateness, replay.
#include "stream/pipeline.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include "core/time_format.h"
#include "stream/feature_store.h"
#include "stream/features.h"

namespace herald::stream {
namespace {

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string name = "pipeline-";
    name += std::to_string(::getpid());
    name += '-';
    name += std::to_string(n_++);
    dir_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    db_ = store::Db::Open((dir_ / "store").string(), {}, PipelineColumnFamilies()).value();
    eventlog::LogOptions lo;
    lo.dir = (dir_ / "log").string();
    lo.partitions = 8;
    lo.metrics = &metrics_;
    lo.clock = &clock_;
    log_ = eventlog::EventLog::Open(lo).value();
    shards_ = std::make_unique<ShardExecutor>(2, "t", &clock_);
    PipelineOptions po;
    po.log = log_.get();
    po.db = db_.get();
    po.shards = shards_.get();
    po.clock = &clock_;
    po.metrics = &metrics_;
    po.allowed_lateness = 10 * kMicrosPerMinute;
    po.checkpoint_interval = 3600 * kMicrosPerSecond;  // the clock does not move: explicit only
    pipeline_ = Pipeline::Create(po).value();
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
  Event Ev(const char* user, EventType t, const char* ts) {
    Event e;
    e.tenant.assign(1, 't');  // not = "t": GCC 12 -Wrestrict false positive
    e.user_id = user;
    e.type = t;
    e.ts = ParseIsoTime(ts).value();
    return e;
  }
  void Ingest(std::vector<Event> evs) {
    std::promise<Status> p;
    pipeline_->Ingest(std::move(evs), [&](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get().ok());
  }
  nlohmann::json Features(const char* user) {
    // Posting behind the ingested work means it has been applied.
    for (int i = 0; i < 200; ++i) {
      std::string u = user;
      auto h = pipeline_->features();
      auto r = pipeline_->CallOnUser(u, [&](Partition& part) -> Result<std::string> {
        const UserFeatures* f = part.Get(h).Find("t", u);
        if (!f) return Status::NotFound("no features");
        std::string out;
        ToJson(*f, u, part.Get(h).ZoneOf("t", u), clock_.Now(), &out);
        return out;
      });
      if (r.ok()) return nlohmann::json::parse(*r);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return nullptr;
  }

  static inline int n_ = 0;
  std::filesystem::path dir_;
  MetricsRegistry metrics_;
  VirtualClock clock_{ParseIsoTime("2026-01-05T12:00:00Z").value()};
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<eventlog::EventLog> log_;
  std::unique_ptr<ShardExecutor> shards_;
  std::unique_ptr<Pipeline> pipeline_;
  // What the disk holds at this instant, as kill -9 would leave it: a consistent
  // copy of the store and the log's files. Switches dir_ to the copy.
  std::filesystem::path CrashCopy() {
    auto copy = dir_;
    copy += "-crash";
    std::filesystem::remove_all(copy);
    std::filesystem::create_directories(copy);
    EXPECT_TRUE(db_->Checkpoint((copy / "store").string()).ok());
    std::filesystem::copy(dir_ / "log", copy / "log", std::filesystem::copy_options::recursive);
    return copy;
  }
};

TEST_F(PipelineTest, OutOfOrderWithinLatenessIsAppliedLateBeyondIsCounted) {
  Ingest({Ev("u1", EventType::kAppOpen, "2026-01-05T10:00:00Z")});
  Ingest({Ev("u1", EventType::kAppOpen, "2026-01-05T09:55:00Z")});  // 5 min late: applied
  Ingest({Ev("u1", EventType::kAppOpen, "2026-01-05T09:49:59Z")});  // > 10 min late: dropped
  auto f = Features("u1");
  ASSERT_FALSE(f.is_null());
  EXPECT_EQ(f["events_total"]["app_open"], 2);
  EXPECT_EQ(metrics_.GetCounter("herald_stream_late_events_total", "").Value(), 1u);
  EXPECT_EQ(f["first_event"], "2026-01-05T09:55:00Z");
}

TEST_F(PipelineTest, ReplayAfterCrashAppliesEachEventExactlyOnce) {
  Ingest({Ev("u1", EventType::kAppOpen, "2026-01-05T10:00:00Z"),
          Ev("u2", EventType::kShare, "2026-01-05T10:00:01Z")});
  ASSERT_TRUE(pipeline_->Checkpoint().ok());  // u1, u2 features and offsets stored
  Ingest({Ev("u1", EventType::kAppOpen, "2026-01-05T10:01:00Z"),
          Ev("u1", EventType::kRead, "2026-01-05T10:01:01Z")});
  Features("u1");
  auto crashed = CrashCopy();  // the second batch is only in the log there
  Close();
  std::filesystem::remove_all(dir_);
  dir_ = crashed;
  Open();
  auto f = Features("u1");
  EXPECT_EQ(f["events_total"]["app_open"], 2);
  EXPECT_EQ(f["events_total"]["read"], 1);
  EXPECT_EQ(Features("u2")["events_total"]["share"], 1);
  Close();  // a clean stop checkpoints: nothing to replay next time
  Open();
  EXPECT_EQ(Features("u1")["events_total"]["app_open"], 2);
}

TEST_F(PipelineTest, TimeZoneDecidesTheLocalHour) {
  ASSERT_TRUE(pipeline_->SetTimeZone("t", "sh", "Asia/Shanghai").ok());
  ASSERT_TRUE(pipeline_->SetTimeZone("t", "ny", "America/New_York").ok());
  EXPECT_FALSE(pipeline_->SetTimeZone("t", "x", "Mars/Olympus").ok());
  for (const char* u : {"sh", "ny"}) {
    Ingest({Ev(u, EventType::kSent, "2026-01-05T00:30:00Z")});
  }
  // 00:30 UTC is 08:30 in Shanghai and 19:30 the day before in New York.
  EXPECT_EQ(Features("sh")["pushes"]["sent_by_hour"][8], 1);
  EXPECT_EQ(Features("ny")["pushes"]["sent_by_hour"][19], 1);
  std::promise<std::array<OutcomeCounts, 24>> p;
  pipeline_->GetByLocalHour("t", [&](std::array<OutcomeCounts, 24> h) { p.set_value(h); });
  auto hours = p.get_future().get();
  EXPECT_EQ(hours[8].sent, 1u);
  EXPECT_EQ(hours[19].sent, 1u);
}

}  // namespace
}  // namespace herald::stream
