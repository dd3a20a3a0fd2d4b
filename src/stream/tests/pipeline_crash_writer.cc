// pipeline_crash_writer DIR SEED: runs the event pipeline on DIR with a
// CountingState registered beside the features, checkpointing every few
// milliseconds, and ingests batches of random size (each to one partition) one
// after another. Before each batch it prints "send <n>", after its
// acknowledgement "acked <total>", until it
// is killed. Driven by pipeline_crash_test.cc.
#include <unistd.h>

#include <cstdio>
#include <future>
#include <random>
#include <string>

#include "core/metrics.h"
#include "core/shard.h"
#include "log/event_log.h"
#include "store/db.h"
#include "stream/pipeline.h"
#include "stream/tests/test_states.h"

namespace {

void Say(const std::string& line) {
  std::string s = line + "\n";
  if (::write(STDOUT_FILENO, s.data(), s.size()) != static_cast<ssize_t>(s.size())) _exit(5);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace herald;
  if (argc != 3) return 2;
  std::string dir = argv[1];
  std::mt19937 rng(static_cast<unsigned>(std::stoul(argv[2])));
  MetricsRegistry metrics;
  SystemClock clock;
  auto db = store::Db::Open(dir + "/store", {}, stream::PipelineColumnFamilies());
  if (!db.ok()) return 3;
  eventlog::LogOptions lo;
  lo.dir = dir + "/log";
  lo.partitions = 8;
  lo.metrics = &metrics;
  lo.clock = &clock;
  auto log = eventlog::EventLog::Open(lo);
  if (!log.ok()) return 3;
  ShardExecutor shards(2, "crash", &clock);
  stream::PipelineOptions po;
  po.log = log->get();
  po.db = db->get();
  po.shards = &shards;
  po.clock = &clock;
  po.metrics = &metrics;
  po.checkpoint_interval = 20 * 1000;  // every partition every 20 ms
  po.max_hot_users = 64;               // and evictions under way
  auto pipeline = stream::Pipeline::Create(po);
  if (!pipeline.ok()) return 3;
  (*pipeline)->Register<stream::testing::CountingState>(
      "counting", store::StateTag::kTest,
      [](stream::Partition&) { return std::make_unique<stream::testing::CountingState>(); });
  if (!(*pipeline)->Start().ok()) return 4;
  Say("ready");
  std::uint64_t acked = 0;
  // Users by partition: each batch goes to one partition, whose append reaches
  // the log whole or not at all, so that the test can compare counts exactly.
  Partitioner parts(8);
  std::vector<std::vector<std::string>> users(8);
  for (int u = 0; u < 500; ++u) {
    std::string id(1, 'u');  // not "u" + ...: a GCC 12 -Wrestrict false positive
    id += std::to_string(u);
    users[parts.PartitionOf(id)].push_back(id);
  }
  for (;;) {
    size_t n = 1 + rng() % 300;
    const auto& pool = users[rng() % 8];
    std::vector<stream::Event> batch;
    for (size_t i = 0; i < n; ++i) {
      stream::Event e;
      e.tenant = "t";
      e.user_id = pool[rng() % pool.size()];
      e.type = stream::EventType::kAppOpen;
      e.ts = clock.Now();
      batch.push_back(std::move(e));
    }
    Say("send " + std::to_string(n));
    std::promise<Status> p;
    (*pipeline)->Ingest(std::move(batch), [&](Status s) { p.set_value(s); });
    if (!p.get_future().get().ok()) return 6;
    acked += n;
    Say("acked " + std::to_string(acked));
  }
}
