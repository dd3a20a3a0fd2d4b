// KafkaSource and KafkaSink against librdkafka's mock cluster, which speaks the
// real Kafka protocol (produce, fetch, consumer groups, offset commits) on loopback.
//
// The mock's limits shape these tests: it keeps only about 5 MiB or 100k batches
// per partition and silently drops older data (the tests stay far below that), a
// consumer group takes about 3 s to form, and every source runs with
// auto.offset.reset=error, so a record the mock lost fails the test instead of
// being skipped. Each test gets its own cluster; every wait is bounded.
#include "log/kafka.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/metrics.h"
#include "core/partition.h"

namespace herald::eventlog {
namespace {

using namespace std::chrono_literals;

constexpr int kPartitions = 8;
const std::string kTopic = "herald.events";

// Three mock brokers, owned through a producer handle that does nothing else.
class MockCluster {
 public:
  MockCluster() {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);  // no "no bootstrap.servers"
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    mock_ = rd_kafka_mock_cluster_new(rk_, 3);
    rd_kafka_mock_topic_create(mock_, kTopic.c_str(), kPartitions, 1);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(mock_);
    rd_kafka_destroy(rk_);
  }
  std::string brokers() const { return rd_kafka_mock_cluster_bootstraps(mock_); }

 private:
  rd_kafka_t* rk_;
  rd_kafka_mock_cluster_t* mock_;
};

std::string UserKey(int i) {
  return "user-" + std::to_string(i);
}
std::string EventFor(const std::string& key) {
  return "event-of-" + key;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

struct Produced {
  std::string key;
  KafkaDelivery at;
};

// Produces users [from, to) keyed by user id and waits for every acknowledgement.
std::vector<Produced> ProduceUsers(KafkaSink& sink, int from, int to) {
  std::mutex mu;
  std::vector<Produced> acked;
  for (int i = from; i < to; ++i) {
    const std::string key = UserKey(i);
    sink.Produce(kTopic, key, EventFor(key), [&mu, &acked, key](Result<KafkaDelivery> r) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      std::lock_guard<std::mutex> lk(mu);
      acked.push_back({key, *r});
    });
  }
  Status st = sink.Flush(20000);
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::lock_guard<std::mutex> lk(mu);
  EXPECT_EQ(acked.size(), static_cast<size_t>(to - from));
  return acked;
}

std::unique_ptr<KafkaSink> OpenSink(const MockCluster& cluster, MetricsRegistry* metrics) {
  KafkaSinkOptions o;
  o.brokers = cluster.brokers();
  o.metrics = metrics;
  auto sink = KafkaSink::Open(o);
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  return sink.ok() ? std::move(*sink) : nullptr;
}

// Stands in for the event log: takes batches on the source's poll thread, makes
// them "durable" on its own thread and only then calls done() with the verdict.
class FakePipeline {
 public:
  // Decides a batch's fate; runs on the pipeline thread, one batch at a time.
  using Verdict = std::function<Status(const std::vector<KafkaRecord>&, size_t durable)>;

  explicit FakePipeline(Verdict verdict = nullptr) : verdict_(std::move(verdict)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~FakePipeline() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  KafkaBatchHandler Handler() {
    return [this](std::vector<KafkaRecord> batch, std::function<void(Status)> done) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        queue_.emplace_back(std::move(batch), std::move(done));
      }
      cv_.notify_all();
    };
  }
  std::vector<KafkaRecord> durable() const {
    std::lock_guard<std::mutex> lk(mu_);
    return durable_;
  }
  size_t durable_count() const {
    std::lock_guard<std::mutex> lk(mu_);
    return durable_.size();
  }
  size_t failed_batches() const { return failed_.load(); }

 private:
  void Run() {
    for (;;) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto [batch, done] = std::move(queue_.front());
      queue_.pop_front();
      const size_t durable = durable_.size();
      lk.unlock();
      std::this_thread::sleep_for(1ms);  // a write and its acknowledgement
      Status st = verdict_ ? verdict_(batch, durable) : Status::Ok();
      if (st.ok()) {
        lk.lock();
        durable_.insert(durable_.end(), batch.begin(), batch.end());
        lk.unlock();
      } else {
        failed_.fetch_add(1);
      }
      done(st);
    }
  }

  const Verdict verdict_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::vector<KafkaRecord>, std::function<void(Status)>>> queue_;
  std::vector<KafkaRecord> durable_;
  bool stopping_ = false;
  std::atomic<size_t> failed_{0};
  std::thread thread_;
};

// Everything one source run needs; the source stops before the pipeline goes.
struct SourceRun {
  SourceRun(const MockCluster& cluster, FakePipeline::Verdict verdict = nullptr,
            size_t max_batch = 32)
      : pipeline(std::move(verdict)) {
    KafkaSourceOptions o;
    o.brokers = cluster.brokers();
    o.group = "herald-test";
    o.max_batch = max_batch;
    o.retry_backoff_ms = 10;
    o.max_retry_backoff_ms = 100;
    o.metrics = &metrics;
    o.extra = {{"auto.offset.reset", "error"},  // lost records fail the test
               {"session.timeout.ms", "6000"},
               {"heartbeat.interval.ms", "300"},
               {"fetch.wait.max.ms", "20"}};
    o.on_error = [this](const Status& st) {
      std::lock_guard<std::mutex> lk(errors_mu);
      errors.push_back(st.ToString());
    };
    auto s = KafkaSource::Start(o, pipeline.Handler());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) source = std::move(*s);
  }
  ~SourceRun() { Stop(); }
  void Stop() {
    if (source) source->Stop();
  }
  std::uint64_t Counter(const std::string& name) {
    return metrics.GetCounter(name, "", {{"topic", kTopic}}).Value();
  }
  std::int64_t Assigned() {
    return metrics.GetGauge("herald_kafka_assigned_partitions", "", {{"topic", kTopic}}).Value();
  }
  std::vector<std::string> Errors() {
    std::lock_guard<std::mutex> lk(errors_mu);
    return errors;
  }

  MetricsRegistry metrics;
  std::mutex errors_mu;
  std::vector<std::string> errors;
  FakePipeline pipeline;
  std::unique_ptr<KafkaSource> source;
};

using Position = std::pair<std::int32_t, std::int64_t>;  // partition, offset

std::set<Position> Positions(const std::vector<KafkaRecord>& records) {
  std::set<Position> out;
  for (const auto& r : records) out.insert({r.partition, r.offset});
  return out;
}

// Checks each record against what the sink says it produced at that position.
void ExpectMatchesProduced(const std::vector<KafkaRecord>& records,
                           const std::map<Position, std::string>& produced) {
  const Partitioner partitioner(kPartitions);
  for (const auto& r : records) {
    auto it = produced.find({r.partition, r.offset});
    ASSERT_NE(it, produced.end()) << "unknown record " << r.partition << "@" << r.offset;
    EXPECT_EQ(r.key, it->second);
    EXPECT_EQ(r.payload, EventFor(r.key));
    EXPECT_EQ(r.partition, static_cast<std::int32_t>(partitioner.PartitionOf(r.key)));
    EXPECT_GT(r.timestamp, 0);
  }
}

std::map<Position, std::string> ByPosition(const std::vector<Produced>& produced) {
  std::map<Position, std::string> out;
  for (const auto& p : produced) out[{p.at.partition, p.at.offset}] = p.key;
  return out;
}

TEST(KafkaOptionsTest, BadOptionsAreInvalidArgument) {
  KafkaSinkOptions sink;
  EXPECT_EQ(KafkaSink::Open(sink).status().code(), Code::kInvalidArgument);  // no brokers
  sink.brokers = "127.0.0.1:9";
  sink.extra = {{"no.such.property", "1"}};
  EXPECT_EQ(KafkaSink::Open(sink).status().code(), Code::kInvalidArgument);

  KafkaSourceOptions source;
  auto handler = [](std::vector<KafkaRecord>, std::function<void(Status)> done) { done({}); };
  EXPECT_EQ(KafkaSource::Start(source, handler).status().code(), Code::kInvalidArgument);
  source.brokers = "127.0.0.1:9";
  source.max_batch = 0;
  EXPECT_EQ(KafkaSource::Start(source, handler).status().code(), Code::kInvalidArgument);
  source.max_batch = 10;
  source.extra = {{"enable.auto.commit", "maybe"}};
  EXPECT_EQ(KafkaSource::Start(source, handler).status().code(), Code::kInvalidArgument);
}

TEST(KafkaSinkTest, KeyedRecordsLandInTheUsersHeraldPartition) {
  MockCluster cluster;
  MetricsRegistry metrics;
  auto sink = OpenSink(cluster, &metrics);
  ASSERT_TRUE(sink);
  const auto produced = ProduceUsers(*sink, 0, 400);
  const Partitioner partitioner(kPartitions);
  std::map<std::int32_t, std::vector<std::int64_t>> offsets;
  for (const auto& p : produced) {
    EXPECT_EQ(p.at.partition, static_cast<std::int32_t>(partitioner.PartitionOf(p.key))) << p.key;
    offsets[p.at.partition].push_back(p.at.offset);
  }
  EXPECT_EQ(offsets.size(), static_cast<size_t>(kPartitions));
  for (auto& [partition, list] : offsets) {  // dense from 0: nothing duplicated or lost
    std::sort(list.begin(), list.end());
    for (size_t i = 0; i < list.size(); ++i) ASSERT_EQ(list[i], static_cast<std::int64_t>(i));
  }
  EXPECT_EQ(metrics.GetCounter("herald_kafka_produced_total", "").Value(), 400u);
  EXPECT_EQ(metrics.GetCounter("herald_kafka_produce_errors_total", "").Value(), 0u);
}

TEST(KafkaSourceTest, ConsumesEveryRecordOnceWithDoneFromAnotherThread) {
  MockCluster cluster;
  MetricsRegistry sink_metrics;
  auto sink = OpenSink(cluster, &sink_metrics);
  const auto produced = ByPosition(ProduceUsers(*sink, 0, 500));

  SourceRun run(cluster);
  ASSERT_TRUE(WaitFor([&] { return run.pipeline.durable_count() >= 500; }))
      << run.pipeline.durable_count();
  run.Stop();
  const auto durable = run.pipeline.durable();
  EXPECT_EQ(durable.size(), 500u);
  EXPECT_EQ(Positions(durable).size(), 500u);
  ExpectMatchesProduced(durable, produced);
  std::map<std::int32_t, std::int64_t> last;  // per partition, in offset order
  for (const auto& r : durable) {
    auto [it, fresh] = last.try_emplace(r.partition, r.offset);
    if (!fresh) {
      EXPECT_EQ(r.offset, std::exchange(it->second, r.offset) + 1);
    }
  }
  EXPECT_EQ(run.Counter("herald_kafka_consumed_total"), 500u);
  EXPECT_EQ(run.Counter("herald_kafka_committed_offsets_total"), 500u);
  EXPECT_EQ(run.Counter("herald_kafka_redelivered_total"), 0u);
  EXPECT_EQ(run.Assigned(), 0);
  EXPECT_TRUE(run.Errors().empty()) << run.Errors().front();
}

TEST(KafkaSourceTest, RestartResumesFromCommittedOffsets) {
  MockCluster cluster;
  MetricsRegistry sink_metrics;
  auto sink = OpenSink(cluster, &sink_metrics);
  auto produced = ByPosition(ProduceUsers(*sink, 0, 300));
  std::map<std::int32_t, std::int64_t> committed;  // partition -> next offset
  for (const auto& [pos, key] : produced) committed[pos.first] = pos.second + 1;

  std::vector<KafkaRecord> first;
  {
    SourceRun run(cluster);
    ASSERT_TRUE(WaitFor([&] { return run.pipeline.durable_count() >= 300; }));
    run.Stop();  // commits synchronously and leaves the group
    first = run.pipeline.durable();
    EXPECT_EQ(run.Counter("herald_kafka_committed_offsets_total"), 300u);
    EXPECT_TRUE(run.Errors().empty()) << run.Errors().front();
  }
  const auto second_wave = ByPosition(ProduceUsers(*sink, 300, 600));
  produced.insert(second_wave.begin(), second_wave.end());

  SourceRun run(cluster);
  ASSERT_TRUE(WaitFor([&] { return run.pipeline.durable_count() >= 300; }));
  std::this_thread::sleep_for(300ms);  // room for a wrongly redelivered record to show up
  run.Stop();
  const auto second = run.pipeline.durable();
  EXPECT_EQ(Positions(first).size(), 300u);
  EXPECT_EQ(second.size(), 300u);
  EXPECT_EQ(run.Counter("herald_kafka_consumed_total"), 300u);
  ExpectMatchesProduced(second, produced);
  std::map<std::int32_t, std::int64_t> resumed_at;
  for (const auto& r : second) {
    auto [it, fresh] = resumed_at.try_emplace(r.partition, r.offset);
    if (!fresh) it->second = std::min(it->second, r.offset);
    EXPECT_EQ(second_wave.count({r.partition, r.offset}), 1u) << "redelivered " << r.key;
  }
  for (const auto& [partition, offset] : resumed_at) EXPECT_EQ(offset, committed[partition]);
  EXPECT_TRUE(run.Errors().empty()) << run.Errors().front();
}

TEST(KafkaSourceTest, RecordsOfFailedBatchesAreRedeliveredAfterRestart) {
  MockCluster cluster;
  MetricsRegistry sink_metrics;
  auto sink = OpenSink(cluster, &sink_metrics);
  const auto produced = ByPosition(ProduceUsers(*sink, 0, 300));

  // The first run's log "fills up" after 100 records: every later batch fails, is
  // rewound and retried, and fails again, until the run is stopped.
  std::vector<KafkaRecord> first;
  {
    SourceRun run(
        cluster,
        [](const std::vector<KafkaRecord>&, size_t durable) {
          return durable < 100 ? Status::Ok() : Status::IoError("disk full");
        },
        16);
    ASSERT_TRUE(WaitFor([&] { return run.pipeline.failed_batches() >= 5; }));
    run.Stop();
    first = run.pipeline.durable();
    EXPECT_GE(first.size(), 100u);
    EXPECT_LT(first.size(), 300u);
    EXPECT_GT(run.Counter("herald_kafka_redelivered_total"), 0u);
    EXPECT_EQ(run.Counter("herald_kafka_committed_offsets_total"), first.size());
  }
  SourceRun run(cluster);
  const size_t rest = 300 - first.size();
  ASSERT_TRUE(WaitFor([&] { return run.pipeline.durable_count() >= rest; }));
  std::this_thread::sleep_for(300ms);
  run.Stop();
  const auto second = run.pipeline.durable();
  EXPECT_EQ(second.size(), rest);
  std::set<Position> all = Positions(first);
  for (const auto& r : second) EXPECT_TRUE(all.insert({r.partition, r.offset}).second) << r.key;
  EXPECT_EQ(all.size(), 300u);  // exactly once across the two runs
  ExpectMatchesProduced(second, produced);
  EXPECT_EQ(run.Counter("herald_kafka_committed_offsets_total"), rest);
  EXPECT_TRUE(run.Errors().empty()) << run.Errors().front();
}

TEST(KafkaSourceTest, FailedBatchIsRetriedInProcessWithoutSkipping) {
  MockCluster cluster;
  MetricsRegistry sink_metrics;
  auto sink = OpenSink(cluster, &sink_metrics);
  const auto produced = ByPosition(ProduceUsers(*sink, 0, 300));

  // The first batch holding offset 7 or 27 of a partition fails once.
  std::set<Position> failed_once;  // pipeline thread only
  SourceRun run(
      cluster,
      [&failed_once](const std::vector<KafkaRecord>& batch, size_t) {
        for (const auto& r : batch) {
          if ((r.offset == 7 || r.offset == 27) &&
              failed_once.insert({r.partition, r.offset}).second) {
            return Status::IoError("transient");
          }
        }
        return Status::Ok();
      },
      16);
  ASSERT_TRUE(WaitFor([&] { return run.pipeline.durable_count() >= 300; }));
  std::this_thread::sleep_for(300ms);
  run.Stop();
  const auto durable = run.pipeline.durable();
  EXPECT_EQ(durable.size(), 300u);
  ExpectMatchesProduced(durable, produced);
  EXPECT_GE(run.pipeline.failed_batches(), static_cast<size_t>(kPartitions));
  // A failed batch holds its partition back: per partition the records became
  // durable once each, in offset order, with no gap before the retried ones.
  std::map<std::int32_t, std::int64_t> next;
  for (const auto& r : durable) EXPECT_EQ(r.offset, next[r.partition]++) << r.key;
  // Every record handed out was either made durable once or counted as rewound.
  EXPECT_EQ(run.Counter("herald_kafka_consumed_total"),
            300u + run.Counter("herald_kafka_redelivered_total"));
  EXPECT_EQ(run.Counter("herald_kafka_committed_offsets_total"), 300u);
  EXPECT_TRUE(run.Errors().empty()) << run.Errors().front();
}

TEST(KafkaSourceTest, GroupMembersSplitPartitionsAndHandOverOnRebalance) {
  MockCluster cluster;
  MetricsRegistry sink_metrics;
  auto sink = OpenSink(cluster, &sink_metrics);
  auto produced = ByPosition(ProduceUsers(*sink, 0, 200));

  auto a = std::make_unique<SourceRun>(cluster);
  ASSERT_TRUE(WaitFor([&] { return a->pipeline.durable_count() >= 200; }));
  // Committed too (commits follow durability): otherwise b may be handed the
  // uncommitted tail of the first wave again, as at-least-once allows.
  ASSERT_TRUE(WaitFor([&] { return a->Counter("herald_kafka_committed_offsets_total") >= 200; }));
  SourceRun b(cluster);
  ASSERT_TRUE(WaitFor([&] {
    return a->Assigned() > 0 && b.Assigned() > 0 && a->Assigned() + b.Assigned() == kPartitions;
  })) << a->Assigned()
      << " + " << b.Assigned();
  auto wave = ByPosition(ProduceUsers(*sink, 200, 400));
  produced.insert(wave.begin(), wave.end());
  ASSERT_TRUE(
      WaitFor([&] { return a->pipeline.durable_count() + b.pipeline.durable_count() >= 400; }));
  const size_t b_second_wave = b.pipeline.durable_count();
  EXPECT_GT(b_second_wave, 0u);
  for (const auto& r : b.pipeline.durable()) EXPECT_EQ(wave.count({r.partition, r.offset}), 1u);

  a->Stop();  // leaves the group: b takes over every partition where a committed
  const auto a_records = a->pipeline.durable();
  EXPECT_TRUE(a->Errors().empty()) << a->Errors().front();
  a.reset();
  ASSERT_TRUE(WaitFor([&] { return b.Assigned() == kPartitions; })) << b.Assigned();
  wave = ByPosition(ProduceUsers(*sink, 400, 600));
  produced.insert(wave.begin(), wave.end());
  ASSERT_TRUE(WaitFor([&] { return a_records.size() + b.pipeline.durable_count() >= 600; }));
  std::this_thread::sleep_for(300ms);
  b.Stop();
  std::set<Position> all = Positions(a_records);
  const auto b_records = b.pipeline.durable();
  for (const auto& r : b_records) EXPECT_TRUE(all.insert({r.partition, r.offset}).second) << r.key;
  EXPECT_EQ(all.size(), 600u);  // no record lost or repeated across two rebalances
  EXPECT_EQ(a_records.size() + b_records.size(), 600u);
  ExpectMatchesProduced(b_records, produced);
  EXPECT_TRUE(b.Errors().empty()) << b.Errors().front();
}

TEST(KafkaSourceTest, RecordsLostToRetentionFailLoudly) {
  MockCluster cluster;
  MetricsRegistry sink_metrics;
  auto sink = OpenSink(cluster, &sink_metrics);
  const std::string key = UserKey(7);  // everything lands in this user's partition
  std::atomic<int> acked{0};
  auto produce = [&](const std::string& payload) {
    sink->Produce(kTopic, key, payload, [&](Result<KafkaDelivery> r) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      acked.fetch_add(1);
    });
  };
  for (int i = 0; i < 3; ++i) produce(EventFor(key));
  ASSERT_TRUE(sink->Flush(20000).ok());
  {
    SourceRun run(cluster);
    ASSERT_TRUE(WaitFor([&] { return run.pipeline.durable_count() >= 3; }));
    run.Stop();  // the group's committed offset is 3
  }
  // 7 MiB more: the mock keeps about 5 MiB per partition and drops offset 3 silently.
  for (int i = 0; i < 14; ++i) produce(std::string(512 << 10, 'x'));
  ASSERT_TRUE(sink->Flush(20000).ok());
  EXPECT_EQ(acked.load(), 17);

  SourceRun run(cluster);
  ASSERT_TRUE(WaitFor([&] { return !run.Errors().empty(); }));
  std::this_thread::sleep_for(300ms);
  run.Stop();
  EXPECT_EQ(run.pipeline.durable_count(), 0u);  // nothing skipped to
  EXPECT_NE(run.Errors().front().find("failed_precondition"), std::string::npos)
      << run.Errors().front();
  EXPECT_GE(run.Counter("herald_kafka_consume_errors_total"), 1u);
  EXPECT_EQ(run.Counter("herald_kafka_committed_offsets_total"), 0u);
}

}  // namespace
}  // namespace herald::eventlog
