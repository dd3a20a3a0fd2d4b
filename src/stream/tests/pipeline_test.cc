// The pipeline on a real event log and store: ordering, lateness, replay.
#include "stream/pipeline.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <utility>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "core/time_format.h"
#include "store/keys.h"
#include "stream/tests/faulty_db.h"
#include "stream/tests/test_states.h"
#include "stream/tests/test_util.h"
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
    auto faulty = std::make_unique<testing::FaultyDb>(
        store::Db::Open((dir_ / "store").string(), {}, PipelineColumnFamilies()).value());
    faulty_ = faulty.get();
    db_ = std::move(faulty);
    eventlog::LogOptions lo;
    lo.dir = (dir_ / "log").string();
    lo.partitions = 8;
    lo.segment_bytes = segment_bytes_;
    lo.metrics = &metrics_;
    lo.clock = &clock_;
    lo.write_fault = [this](PartitionId p) {
      return p == fail_partition_ ? Status::IoError("injected disk error") : Status::Ok();
    };
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
    po.max_hot_users = max_hot_users_;
    pipeline_ = Pipeline::Create(po).value();
    if (register_) register_(*pipeline_);
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

  // Sums fn(partition) over every partition, on the shards.
  template <typename Fn>
  std::uint64_t SumOverPartitions(Fn fn) {
    std::promise<std::uint64_t> p;
    pipeline_->RunOnEveryPartition(
        [fn](Partition& part) -> std::uint64_t { return fn(part); },
        std::function<void(Result<std::vector<std::uint64_t>>)>(
            [&](Result<std::vector<std::uint64_t>> r) {
              std::uint64_t sum = 0;
              for (auto v : r.value()) sum += v;
              p.set_value(sum);
            }));
    return p.get_future().get();
  }
  std::array<OutcomeCounts, 24> Hours() {
    std::promise<std::array<OutcomeCounts, 24>> p;
    pipeline_->GetByLocalHour("t", [&](std::array<OutcomeCounts, 24> h) { p.set_value(h); });
    return p.get_future().get();
  }
  std::vector<WindowRow> Windows(Micros size) {
    std::promise<std::vector<WindowRow>> p;
    pipeline_->GetWindows("t", size, 0, [&](std::vector<WindowRow> w) { p.set_value(w); });
    return p.get_future().get();
  }
  // Waits until `n` events in all have been applied.
  void WaitApplied(std::uint64_t n) {
    auto& c = metrics_.GetCounter("herald_stream_events_applied_total", "");
    for (int i = 0; i < 2000 && c.Value() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_GE(c.Value(), n);
  }

  Result<IngestOutcome> IngestOnce(const char* key, std::vector<Event> evs,
                                   const char* digest = "d1") {
    std::promise<Result<IngestOutcome>> p;
    pipeline_->IngestOnce("t", key, digest, std::move(evs),
                          [&](Result<IngestOutcome> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  std::function<void(Pipeline&)> register_;  // extra states, registered before Start
  PartitionId fail_partition_ = ~0u;         // its log writes fail (see Open)
  testing::FaultyDb* faulty_ = nullptr;      // the store, failing on demand
  size_t max_hot_users_ = 1'000'000;
  std::uint64_t segment_bytes_ = 64ull << 20;
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

TEST_F(PipelineTest, RegisteredStateSeesEveryEventOnceAcrossCheckpointsAndACrash) {
  StateHandle<testing::CountingState> counts;
  register_ = [&](Pipeline& p) {
    counts = p.Register<testing::CountingState>(
        "counting", store::StateTag::kTest,
        [](Partition&) { return std::make_unique<testing::CountingState>(); });
  };
  Close();
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  Open();
  auto total = [&] { return SumOverPartitions([counts](Partition& p) { return p.Get(counts).count(); }); };
  std::uint64_t sent = 0;
  for (int round = 0; round < 6; ++round) {
    std::vector<Event> batch;
    for (int i = 0; i < 50; ++i) {
      batch.push_back(Ev(testing::Numbered("u", (round * 50 + i) % 37).c_str(), EventType::kAppOpen,
                         "2026-01-05T10:00:00Z"));
    }
    sent += batch.size();
    Ingest(std::move(batch));
    if (round % 2 == 0) {
      ASSERT_TRUE(pipeline_->Checkpoint().ok());
    }
  }
  EXPECT_EQ(total(), sent);
  // The copy holds checkpoints for rounds 0, 2 and 4 and the log for all six.
  auto crashed = CrashCopy();
  Close();
  std::filesystem::remove_all(dir_);
  dir_ = crashed;
  Open();
  EXPECT_EQ(total(), sent);
  Ingest({Ev("u1", EventType::kAppOpen, "2026-01-05T10:00:00Z")});
  EXPECT_EQ(total(), sent + 1);
  Close();
  Open();
  EXPECT_EQ(total(), sent + 1);
}

TEST_F(PipelineTest, OutcomeWindowsAndHourCountsSurviveACrash) {
  ASSERT_TRUE(pipeline_->SetTimeZone("t", "sh", "Asia/Shanghai").ok());
  Ingest({Ev("sh", EventType::kSent, "2026-01-05T00:30:00Z"),
          Ev("ny", EventType::kSent, "2026-01-05T00:30:10Z"),
          Ev("sh", EventType::kOpened, "2026-01-05T00:31:00Z")});
  ASSERT_TRUE(pipeline_->Checkpoint().ok());
  Ingest({Ev("sh", EventType::kDelivered, "2026-01-05T01:05:00Z"),
          Ev("ny", EventType::kConverted, "2026-01-05T01:06:00Z")});
  WaitApplied(5);
  auto hours = Hours();
  auto minutes = Windows(kMicrosPerMinute);
  auto hourly = Windows(kMicrosPerHour);
  EXPECT_EQ(hours[8].sent, 1u);  // Shanghai
  EXPECT_EQ(hours[0].sent, 1u);  // UTC
  ASSERT_EQ(minutes.size(), 4u);
  ASSERT_EQ(hourly.size(), 2u);
  auto crashed = CrashCopy();
  Close();
  std::filesystem::remove_all(dir_);
  dir_ = crashed;
  Open();
  EXPECT_EQ(Hours(), hours);
  auto same = [](const std::vector<WindowRow>& a, const std::vector<WindowRow>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].start != b[i].start || !(a[i].counts == b[i].counts)) return false;
    }
    return true;
  };
  EXPECT_TRUE(same(Windows(kMicrosPerMinute), minutes));
  EXPECT_TRUE(same(Windows(kMicrosPerHour), hourly));
  Close();  // a clean stop: everything from the checkpoint alone
  Open();
  EXPECT_EQ(Hours(), hours);
  EXPECT_TRUE(same(Windows(kMicrosPerMinute), minutes));
}

TEST_F(PipelineTest, DurableTimersFireInOrderExactlyOnceAcrossACrash) {
  std::mutex runs_mu;
  std::map<std::uint64_t, int> runs;  // every execution of a timer, across both processes
  StateHandle<testing::TimerState> timers;
  register_ = [&](Pipeline& p) {
    timers = p.Register<testing::TimerState>("timers", store::StateTag::kTest, [&](Partition&) {
      return std::make_unique<testing::TimerState>(
          [this](Event e) { pipeline_->Ingest({std::move(e)}, [](Status s) { ASSERT_TRUE(s.ok()); }); },
          [&](std::uint64_t id) {
            std::lock_guard<std::mutex> l(runs_mu);
            ++runs[id];
          });
    });
  };
  Close();
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  Open();
  Micros t0 = clock_.Now();
  // Six timers, armed out of order, one per user so that they spread over shards.
  std::vector<Event> arms;
  for (int id : {4, 1, 6, 2, 5, 3}) {
    Event e = Ev(testing::Numbered("owner", id).c_str(), EventType::kAppOpen, "2026-01-05T11:00:00Z");
    e.message_id = testing::Numbered("arm-", id);
    e.account_id = std::to_string(t0 + id * kMicrosPerHour);
    arms.push_back(std::move(e));
  }
  Ingest(std::move(arms));
  WaitApplied(6);
  ASSERT_TRUE(pipeline_->Checkpoint().ok());  // the six pending timers are in the checkpoint
  auto retired = [&] {
    std::vector<testing::TimerState::Retired> all;
    std::mutex mu;
    SumOverPartitions([&](Partition& p) -> std::uint64_t {
      std::lock_guard<std::mutex> l(mu);
      for (auto r : p.Get(timers).retired()) all.push_back(r);
      return 0;
    });
    std::sort(all.begin(), all.end(), [](auto a, auto b) { return a.at < b.at; });
    return all;
  };
  auto& applied = metrics_.GetCounter("herald_stream_events_applied_total", "");
  clock_.Advance(3 * kMicrosPerHour + 30 * kMicrosPerMinute);  // 1, 2 and 3 are due
  WaitApplied(6 + 3);
  ASSERT_EQ(retired().size(), 3u);
  // A crash now: the checkpoint still has all six pending; the "fired" events of
  // 1..3 are only in the log. The replay must retire them, and only 4..6 may be
  // posted again.
  auto crashed = CrashCopy();
  Close();
  std::filesystem::remove_all(dir_);
  dir_ = crashed;
  Open();
  EXPECT_EQ(SumOverPartitions([&](Partition& p) { return p.Get(timers).pending(); }), 3u);
  std::uint64_t before = applied.Value();
  clock_.Advance(4 * kMicrosPerHour);
  WaitApplied(before + 3);  // the three fired after the restart
  auto all = retired();
  ASSERT_EQ(all.size(), 6u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].id, i + 1);
    EXPECT_EQ(all[i].at, t0 + static_cast<Micros>(i + 1) * kMicrosPerHour) << "timer " << all[i].id;
  }
  EXPECT_EQ(SumOverPartitions([&](Partition& p) { return p.Get(timers).pending(); }), 0u);
  std::lock_guard<std::mutex> l(runs_mu);
  for (std::uint64_t id = 1; id <= 6; ++id) EXPECT_EQ(runs[id], 1) << "timer " << id << " ran";
}

TEST_F(PipelineTest, IdempotentIngestAppliesEachEventOnceAcrossRetries) {
  std::vector<Event> batch;
  for (int i = 0; i < 20; ++i) {
    batch.push_back(Ev(testing::Numbered("k", i).c_str(), EventType::kAppOpen, "2026-01-05T10:00:00Z"));
  }
  auto first = IngestOnce("key-1", batch);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->appended, 20u);
  EXPECT_FALSE(first->replayed);
  auto again = IngestOnce("key-1", batch);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->appended, 0u);
  auto reused = IngestOnce("key-1", batch, "another body");
  EXPECT_EQ(reused.status().code(), Code::kFailedPrecondition);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Features(testing::Numbered("k", i).c_str())["events_total"]["app_open"], 1) << i;
  }
  // The keys are partition state: after a crash they come back from the log.
  auto crashed = CrashCopy();
  Close();
  std::filesystem::remove_all(dir_);
  dir_ = crashed;
  Open();
  EXPECT_TRUE(IngestOnce("key-1", batch)->replayed);
  // Forgotten after the TTL (24 h): the same key then ingests again.
  clock_.Advance(24 * kMicrosPerHour + kMicrosPerSecond);
  EXPECT_EQ(IngestOnce("key-1", batch)->appended, 20u);
  EXPECT_EQ(Features("k0")["events_total"]["app_open"], 2);
}

TEST_F(PipelineTest, RetryOfAHalfFailedBatchAppliesEachEventOnce) {
  std::vector<Event> batch;
  std::set<PartitionId> parts;
  Partitioner partitioner(8);
  for (int i = 0; i < 40; ++i) {
    std::string u = testing::Numbered("h", i);
    parts.insert(partitioner.PartitionOf(u));
    batch.push_back(Ev(u.c_str(), EventType::kAppOpen, "2026-01-05T10:00:00Z"));
  }
  ASSERT_GT(parts.size(), 2u);
  fail_partition_ = *parts.begin();  // one partition's disk fails; the others' appends land
  auto failed = IngestOnce("key-2", batch);
  EXPECT_EQ(failed.status().code(), Code::kIoError);
  // The failed partition refuses appends until the log is reopened: restart.
  fail_partition_ = ~0u;
  Close();
  Open();
  auto retry = IngestOnce("key-2", batch);
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_GT(retry->appended, 0u);
  EXPECT_LT(retry->appended, 40u);  // only the partition that had failed
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(Features(testing::Numbered("h", i).c_str())["events_total"]["app_open"], 1) << i;
  }
  EXPECT_TRUE(IngestOnce("key-2", batch)->replayed);
}

TEST_F(PipelineTest, AFailedCheckpointLosesNothing) {
  Ingest({Ev("f1", EventType::kAppOpen, "2026-01-05T10:00:00Z")});
  ASSERT_TRUE(pipeline_->Checkpoint().ok());
  Ingest({Ev("f1", EventType::kAppOpen, "2026-01-05T10:01:00Z"),
          Ev("f2", EventType::kShare, "2026-01-05T10:01:00Z")});
  WaitApplied(3);
  faulty_->fail_writes = true;  // the disk under the store fails
  EXPECT_FALSE(pipeline_->Checkpoint().ok());
  EXPECT_GT(faulty_->failed_writes.load(), 0);
  EXPECT_GT(metrics_.GetCounter("herald_stream_partition_rebuilds_total", "").Value(), 0u);
  // The partitions were rebuilt from the last good checkpoint and the log.
  EXPECT_EQ(Features("f1")["events_total"]["app_open"], 2);
  EXPECT_EQ(Features("f2")["events_total"]["share"], 1);
  Ingest({Ev("f1", EventType::kAppOpen, "2026-01-05T10:02:00Z")});
  faulty_->fail_writes = false;
  ASSERT_TRUE(pipeline_->Checkpoint().ok());
  Close();
  Open();
  EXPECT_EQ(Features("f1")["events_total"]["app_open"], 3);
  EXPECT_EQ(Features("f2")["events_total"]["share"], 1);
}

TEST_F(PipelineTest, AStoreReadFailureStopsThePartitionInsteadOfStartingTheUserOver) {
  max_hot_users_ = 8;  // one per partition: checkpointed users are evicted
  Close();
  Open();
  std::vector<Event> batch;
  for (int i = 0; i < 40; ++i) {
    batch.push_back(Ev(testing::Numbered("r", i).c_str(), EventType::kAppOpen, "2026-01-05T10:00:00Z"));
  }
  Ingest(batch);
  ASSERT_TRUE(pipeline_->Checkpoint().ok());  // and the cold users leave memory
  // Each partition kept one user in memory; the next event of every other user
  // needs the store, which now fails.
  faulty_->fail_reads = true;
  for (auto& e : batch) e.ts += kMicrosPerMinute;
  Ingest(batch);
  auto& stopped = metrics_.GetGauge("herald_stream_partitions_stopped", "");
  for (int i = 0; i < 200 && stopped.Value() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(stopped.Value(), 0);
  faulty_->fail_reads = false;
  Close();  // stopped partitions write nothing
  Open();
  // Nobody started over: every user's stored features were kept, and the second
  // event is applied exactly once on replay.
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(Features(testing::Numbered("r", i).c_str())["events_total"]["app_open"], 2) << i;
  }
}

TEST_F(PipelineTest, ACorruptLogRecordStopsItsPartitionAndNothingElse) {
  segment_bytes_ = 4096;  // many sealed segments
  Close();
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  Open();
  std::vector<Event> batch;
  for (int i = 0; i < 4000; ++i) {
    batch.push_back(Ev(testing::Numbered("c", i % 40).c_str(), EventType::kAppOpen, "2026-01-05T10:00:00Z"));
    if (batch.size() == 200) Ingest(std::exchange(batch, {}));
  }
  WaitApplied(4000);
  Close();  // no checkpoint will cover the damage: drop the checkpoints
  {
    auto db = store::Db::Open((dir_ / "store").string(), {}, PipelineColumnFamilies()).value();
    auto cf = db->Family(store::kStateFamily).value();
    std::vector<std::string> keys;
    ASSERT_TRUE(db->Scan(cf, "", [&](std::string_view k, std::string_view) {
      keys.emplace_back(k);
      return true;
    }).ok());
    store::WriteBatch b;
    for (const auto& k : keys) b.Delete(cf, k);
    ASSERT_TRUE(db->Write(std::move(b)).ok());
  }
  // Flip a payload byte of the first record of partition 3's oldest segment.
  std::vector<std::filesystem::path> segs;
  for (const auto& e : std::filesystem::directory_iterator(dir_ / "log" / "p003")) segs.push_back(e.path());
  std::sort(segs.begin(), segs.end());
  ASSERT_GT(segs.size(), 1u);
  {
    std::fstream f(segs.front(), std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(30);
    char c = static_cast<char>(f.get());
    f.seekp(30);
    f.put(static_cast<char>(c ^ 0x40));
  }
  Open();  // serves; partition 3 is stopped at the damaged record
  EXPECT_EQ(metrics_.GetGauge("herald_stream_partitions_stopped", "").Value(), 1);
  Partitioner parts(8);
  int answered = 0, stopped = 0;
  for (int i = 0; i < 40; ++i) {
    std::string u = testing::Numbered("c", i);
    auto h = pipeline_->features();
    Status s = pipeline_->CallOnUser(u, [&](Partition& p) {
      return p.Get(h).Find("t", u) ? Status::Ok() : Status::NotFound("none");
    });
    if (parts.PartitionOf(u) == 3) {
      EXPECT_EQ(s.code(), Code::kUnavailable) << u;
      ++stopped;
    } else {
      EXPECT_TRUE(s.ok()) << u;
      ++answered;
    }
  }
  EXPECT_GT(stopped, 0);
  EXPECT_GT(answered, 0);
}

TEST_F(PipelineTest, ReadsOfUnknownUsersCreateNoState) {
  Ingest({Ev("known", EventType::kAppOpen, "2026-01-05T10:00:00Z")});
  WaitApplied(1);
  auto& hot = metrics_.GetGauge("herald_stream_hot_users", "");
  std::int64_t before = hot.Value();
  auto h = pipeline_->features();
  for (int i = 0; i < 100000; ++i) {
    std::string id = testing::Numbered("ghost", i);
    Status s = pipeline_->CallOnUser(id, [&](Partition& p) {
      return p.Get(h).Find("t", id) ? Status::Ok() : Status::NotFound("none");
    });
    EXPECT_EQ(s.code(), Code::kNotFound);
  }
  EXPECT_EQ(hot.Value(), before);
  EXPECT_FALSE(Features("known").is_null());
}

TEST_F(PipelineTest, ARecordKeyCarriesItsUsersPartition) {
  std::vector<Event> batch;
  for (int i = 0; i < 40; ++i) batch.push_back(Ev(testing::Numbered("u", i).c_str(), EventType::kAppOpen, "2026-01-05T10:00:00Z"));
  Ingest(std::move(batch));
  ASSERT_TRUE(pipeline_->Checkpoint().ok());
  auto cf = db_->Family(store::kStateFamily).value();
  Partitioner parts(8);
  int users = 0;
  for (PartitionId p = 0; p < 8; ++p) {
    ASSERT_TRUE(db_->Scan(cf, store::PartitionTagPrefix(p, store::StateTag::kFeatures),
                          [&](std::string_view key, std::string_view) {
                            PartitionId kp;
                            store::StateTag tag;
                            std::string_view suffix;
                            EXPECT_TRUE(store::ParsePartitionKey(key, &kp, &tag, &suffix));
                            std::string_view user = suffix.substr(suffix.find('\0') + 1);
                            EXPECT_EQ(parts.PartitionOf(user), p) << user;
                            ++users;
                            return true;
                          }).ok());
  }
  EXPECT_EQ(users, 40);
}

}  // namespace
}  // namespace herald::stream
