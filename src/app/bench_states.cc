#include "app/bench_states.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>

#include "core/metrics.h"
#include "core/shard.h"
#include "log/event_log.h"
#include "store/db.h"
#include "store/keys.h"
#include "stream/pipeline.h"

namespace herald::app {
namespace {

// A registered state that does nothing: what the pipeline itself costs per state.
class IdleState final : public stream::PartitionState {
 public:
  Status Load(stream::StateReader&) override { return Status::Ok(); }
  void OnEvent(stream::AppliedEvent& e) override { seen_ += e.offset & 1; }
  void Checkpoint(stream::CheckpointWriter&) override {}

 private:
  std::uint64_t seen_ = 0;  // keeps the call from being optimised away
};

struct Stack {
  MetricsRegistry metrics;
  SystemClock clock;
  std::unique_ptr<store::Db> db;
  std::unique_ptr<eventlog::EventLog> log;
  std::unique_ptr<ShardExecutor> shards;
  std::unique_ptr<stream::Pipeline> pipeline;

  // Opens the pipeline with `idle` extra states; returns the seconds Start() took
  // (the replay of the whole log).
  Result<double> Open(const std::string& dir, int idle) {
    auto d = store::Db::Open(dir + "/store", {}, stream::PipelineColumnFamilies());
    if (!d.ok()) return d.status();
    db = std::move(*d);
    eventlog::LogOptions lo;
    lo.dir = dir + "/log";
    lo.partitions = 64;
    lo.metrics = &metrics;
    lo.clock = &clock;
    auto l = eventlog::EventLog::Open(lo);
    if (!l.ok()) return l.status();
    log = std::move(*l);
    shards = std::make_unique<ShardExecutor>(0, "bench", &clock);
    stream::PipelineOptions po{log.get(), db.get(), shards.get(), &clock, &metrics};
    po.checkpoint_interval = 3600 * kMicrosPerSecond;
    auto p = stream::Pipeline::Create(po);
    if (!p.ok()) return p.status();
    pipeline = std::move(*p);
    for (int i = 0; i < idle; ++i) {
      pipeline->Register<IdleState>("idle", static_cast<store::StateTag>(100 + i),
                                    [](stream::Partition&) { return std::make_unique<IdleState>(); });
    }
    auto start = std::chrono::steady_clock::now();
    HERALD_RETURN_IF_ERROR(pipeline->Start());
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  // Closes without a final checkpoint, so that the next Open replays everything.
  void Abandon() {
    shards->Stop();
    pipeline.reset();
    shards.reset();
    log.reset();
    db.reset();
  }
};

// Removes every checkpoint and state record: the next start replays the whole log.
Status ForgetCheckpoints(const std::string& dir) {
  auto db = store::Db::Open(dir + "/store", {}, stream::PipelineColumnFamilies());
  if (!db.ok()) return db.status();
  auto cf = (*db)->Family(store::kStateFamily).value();
  std::vector<std::string> keys;
  HERALD_RETURN_IF_ERROR((*db)->Scan(cf, "", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  }));
  store::WriteBatch b;
  for (const auto& k : keys) b.Delete(cf, k);
  return (*db)->Write(std::move(b));
}

}  // namespace

int BenchStates(const std::vector<std::string>& args) {
  size_t events = 1'000'000, users = 100'000, rounds = 3;
  int states = 32;
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&] { return i + 1 < args.size() ? args[++i] : std::string("0"); };
    if (args[i] == "--events") events = std::stoul(val());
    else if (args[i] == "--users") users = std::stoul(val());
    else if (args[i] == "--states") states = std::stoi(val());
    else if (args[i] == "--rounds") rounds = std::stoul(val());
    else {
      std::fprintf(stderr, "usage: herald bench states [--events N] [--users N] [--states K] [--rounds R]\n");
      return 2;
    }
  }
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("herald-bench-states-" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    Stack s;
    if (auto r = s.Open(dir, 0); !r.ok()) {
      std::fprintf(stderr, "bench states: %s\n", r.status().ToString().c_str());
      return 1;
    }
    Micros t0 = s.clock.Now();
    for (size_t b = 0; b * 1000 < events; ++b) {
      std::vector<stream::Event> batch;
      for (size_t i = b * 1000; i < std::min(events, (b + 1) * 1000); ++i) {
        stream::Event e;
        e.tenant = "bench";
        e.user_id = "u";
        e.user_id += std::to_string((i * 7919) % users);
        e.type = stream::EventType::kAppOpen;
        e.ts = t0 + static_cast<Micros>(i);
        batch.push_back(std::move(e));
      }
      std::promise<Status> p;
      s.pipeline->Ingest(std::move(batch), [&](Status st) { p.set_value(st); });
      if (!p.get_future().get().ok()) return 1;
    }
    s.Abandon();
  }
  // Alternate 0 and K idle states; each start replays the whole log.
  std::vector<double> base, with;
  for (size_t r = 0; r < rounds; ++r) {
    for (int k : {0, states}) {
      if (!ForgetCheckpoints(dir).ok()) return 1;
      Stack s;
      auto t = s.Open(dir, k);
      if (!t.ok()) {
        std::fprintf(stderr, "bench states: %s\n", t.status().ToString().c_str());
        return 1;
      }
      (k ? with : base).push_back(*t);
      s.Abandon();
    }
  }
  std::filesystem::remove_all(dir);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double b = median(base), w = median(with);
  double per = (w - b) / static_cast<double>(states) / static_cast<double>(events) * 1e9;
  std::printf("replay of %zu events over %zu users: %.3f s with the built-in states, %.3f s with "
              "%d idle states added (medians of %zu)\n",
              events, users, b, w, states, rounds);
  std::printf("cost of one registered state that does nothing: %.1f ns per event\n", per);
  return 0;
}

}  // namespace herald::app
