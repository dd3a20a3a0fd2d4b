// A state registered beside the features sees every acknowledged event exactly
// once, however often the process is killed with SIGKILL during ingest,
// checkpoints and evictions.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <random>
#include <sstream>
#include <thread>

#include "core/metrics.h"
#include "core/shard.h"
#include "log/event_log.h"
#include "store/db.h"
#include "stream/pipeline.h"
#include "stream/tests/test_states.h"

namespace herald::stream {
namespace {

struct WriterRun {
  std::uint64_t acked = 0;   // the last "acked" total
  std::uint64_t sending = 0; // the batch in flight when killed (0: none)
};

// Starts the writer on `dir`, kills it after `after` and reports what it said.
WriterRun RunAndKill(const std::string& dir, unsigned seed, std::chrono::milliseconds after) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::dup2(fds[1], STDOUT_FILENO);
    std::string s = std::to_string(seed);
    ::execl(HERALD_PIPELINE_CRASH_WRITER, HERALD_PIPELINE_CRASH_WRITER, dir.c_str(), s.c_str(),
            static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[65536];
  // Wait for "ready", then let it run for `after`.
  while (out.find("ready\n") == std::string::npos) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  std::this_thread::sleep_for(after);
  EXPECT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << out;
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  WriterRun r;
  std::istringstream in(out.substr(0, out.rfind('\n') + 1));  // a torn last line says nothing
  std::string word;
  std::uint64_t v;
  while (in >> word) {
    if (word == "ready") continue;
    if (!(in >> v)) break;
    if (word == "send") r.sending = v;
    if (word == "acked") {
      r.acked = v;
      r.sending = 0;
    }
  }
  return r;
}

// Opens the pipeline on `dir` as the writer does and returns the CountingState's
// total and the number of events in the log.
std::pair<std::uint64_t, std::uint64_t> Count(const std::string& dir) {
  MetricsRegistry metrics;
  SystemClock clock;
  auto db = store::Db::Open(dir + "/store", {}, PipelineColumnFamilies()).value();
  eventlog::LogOptions lo;
  lo.dir = dir + "/log";
  lo.partitions = 8;
  lo.metrics = &metrics;
  auto log = eventlog::EventLog::Open(lo).value();
  ShardExecutor shards(2, "count", &clock);
  PipelineOptions po{log.get(), db.get(), &shards, &clock, &metrics};
  auto pipeline = Pipeline::Create(po).value();
  auto counts = pipeline->Register<testing::CountingState>(
      "counting", store::StateTag::kTest,
      [](Partition&) { return std::make_unique<testing::CountingState>(); });
  EXPECT_TRUE(pipeline->Start().ok());
  std::promise<std::uint64_t> total;
  pipeline->RunOnEveryPartition(
      [counts](Partition& p) -> std::uint64_t { return p.Get(counts).count(); },
      std::function<void(Result<std::vector<std::uint64_t>>)>(
          [&](Result<std::vector<std::uint64_t>> r) {
            std::uint64_t sum = 0;
            for (auto v : r.value()) sum += v;
            total.set_value(sum);
          }));
  std::uint64_t in_log = 0;
  for (PartitionId p = 0; p < 8; ++p) in_log += log->EndOffset(p) - log->StartOffset(p);
  std::uint64_t t = total.get_future().get();
  pipeline->Stop();
  shards.Stop();
  return {t, in_log};
}

TEST(PipelineCrashTest, StateCountEqualsAcknowledgedEventsAfterRandomKills) {
  auto dir = std::filesystem::temp_directory_path() / ("pipeline-crash-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::mt19937 rng(20261202);
  std::uint64_t acked_before = 0;
  for (unsigned round = 0; round < 5; ++round) {
    auto wait = std::chrono::milliseconds(60 + rng() % 400);
    WriterRun r = RunAndKill(dir.string(), round + 1, wait);
    ASSERT_GT(r.acked, 0u) << "round " << round;
    auto [count, in_log] = Count(dir.string());
    std::uint64_t acked = acked_before + r.acked;
    // Every event in the log is counted exactly once, and the log holds exactly
    // the acknowledged events, plus the batch in flight at the kill if its
    // append became durable before its acknowledgement was printed (an append
    // is in the log whole or not at all).
    EXPECT_EQ(count, in_log) << "round " << round;
    EXPECT_TRUE(count == acked || (r.sending && count == acked + r.sending))
        << "round " << round << ": counted " << count << ", acknowledged " << acked
        << ", in flight " << r.sending;
    acked_before = count;  // the next writer starts from what is durable
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::stream
