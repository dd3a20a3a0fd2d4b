// log_bench: append throughput of the event log.
//
//   log_bench [--records N] [--threads T] [--partitions P] [--payload BYTES]
//             [--batch K] [--sync process|fsync] [--dir DIR]
//
// T threads append N records in total (K per Append call) of BYTES each, spread
// round-robin over P partitions, and the run ends when the last one is
// acknowledged. Prints records/s and MB/s (record headers included).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "log/crc32c.h"
#include "log/event_log.h"
#include "log/format.h"

namespace {

struct BenchOptions {
  std::uint64_t records = 4'000'000;
  unsigned threads = 2;
  std::uint32_t partitions = 64;
  std::size_t payload = 100;
  std::size_t batch = 1;
  herald::SyncMode sync = herald::SyncMode::kProcess;
  std::string dir;
};

bool Parse(int argc, char** argv, BenchOptions* b) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || i + 1 >= argc) return false;
    std::string v = argv[++i];
    if (flag == "--records")
      b->records = std::stoull(v);
    else if (flag == "--threads")
      b->threads = static_cast<unsigned>(std::stoul(v));
    else if (flag == "--partitions")
      b->partitions = static_cast<std::uint32_t>(std::stoul(v));
    else if (flag == "--payload")
      b->payload = std::stoul(v);
    else if (flag == "--batch")
      b->batch = std::max<std::size_t>(1, std::stoul(v));
    else if (flag == "--sync")
      b->sync = v == "fsync" ? herald::SyncMode::kFsync : herald::SyncMode::kProcess;
    else if (flag == "--dir")
      b->dir = v;
    else
      return false;
  }
  return true;
}

// One appending thread: its share of the records, in batches, over all partitions.
void AppendLoop(herald::eventlog::EventLog& log, const BenchOptions& b, unsigned t,
                const std::vector<std::string>& pool, std::atomic<std::uint64_t>& acked) {
  const std::uint64_t mine = b.records / b.threads + (t < b.records % b.threads ? 1 : 0);
  std::vector<std::string_view> views(b.batch);
  std::uint64_t i = 0;
  for (std::uint64_t done = 0; done < mine; ++i) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(b.batch, mine - done));
    for (std::size_t k = 0; k < n; ++k) views[k] = pool[(done + k) % pool.size()];
    auto p = static_cast<herald::PartitionId>((i * b.threads + t) % b.partitions);
    log.Append(p, std::span<const std::string_view>(views.data(), n), 1,
               [&acked, n](herald::Status s, std::uint64_t) {
                 if (!s.ok()) std::abort();
                 acked.fetch_add(n, std::memory_order_relaxed);
               });
    done += n;
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace herald::eventlog;
  BenchOptions b;
  if (!Parse(argc, argv, &b)) {
    std::fprintf(stderr,
                 "usage: log_bench [--records N] [--threads T] [--partitions P] "
                 "[--payload BYTES] [--batch K] [--sync process|fsync] [--dir DIR]\n");
    return 2;
  }
  const bool own_dir = b.dir.empty();
  if (own_dir) b.dir = "/tmp/herald-log-bench-" + std::to_string(::getpid());
  herald::MetricsRegistry metrics;
  LogOptions o;
  o.dir = b.dir;
  o.partitions = b.partitions;
  o.sync = b.sync;
  o.metrics = &metrics;
  auto log = EventLog::Open(o);
  if (!log.ok()) {
    std::fprintf(stderr, "open: %s\n", log.status().ToString().c_str());
    return 1;
  }
  std::vector<std::string> pool;
  for (int i = 0; i < 1024; ++i) {
    std::string s = "{\"user\":\"u" + std::to_string(i * 7919) + "\",\"type\":\"opened\",\"ts\":";
    while (s.size() < b.payload) s.push_back(static_cast<char>('0' + (s.size() * 31 + i) % 10));
    s.resize(b.payload);
    pool.push_back(std::move(s));
  }

  std::atomic<std::uint64_t> acked{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < b.threads; ++t) {
    threads.emplace_back([&, t] { AppendLoop(**log, b, t, pool, acked); });
  }
  for (auto& th : threads) th.join();
  while (acked.load(std::memory_order_relaxed) < b.records) std::this_thread::yield();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const double bytes =
      static_cast<double>(b.records) * static_cast<double>(b.payload + format::kHeaderSize);
  auto& commits = metrics.GetCounter("herald_log_group_commits_total", "");
  auto& latency = metrics.GetHistogram("herald_log_commit_seconds", "", herald::LatencyBuckets());
  std::printf(
      "log_bench: %llu records of %zu B, %u threads, %u partitions, batch %zu, sync %s, crc32c "
      "%s\n",
      static_cast<unsigned long long>(b.records), b.payload, b.threads, b.partitions, b.batch,
      b.sync == herald::SyncMode::kFsync ? "fsync" : "process",
      crc32c::IsAccelerated() ? "sse4.2" : "table");
  std::printf(
      "  %.2f s  %.0f records/s  %.1f MB/s  %llu group commits (%.0f records each, %.3f ms mean)\n",
      secs, static_cast<double>(b.records) / secs, bytes / secs / 1e6,
      static_cast<unsigned long long>(commits.Value()),
      static_cast<double>(b.records) /
          static_cast<double>(std::max<std::uint64_t>(1, commits.Value())),
      1e3 * latency.Sum() / static_cast<double>(std::max<std::uint64_t>(1, latency.Count())));
  log->reset();
  if (own_dir) std::filesystem::remove_all(b.dir);
  return 0;
}
