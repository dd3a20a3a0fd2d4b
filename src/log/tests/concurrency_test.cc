// Many appenders and a tailing reader at once: per-partition order per thread,
// no loss, no duplicates, and back-pressure that never deadlocks.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "log/event_log.h"
#include "log/tests/test_util.h"

namespace herald::eventlog {
namespace {

using testing::TempDir;

constexpr int kThreads = 4;
constexpr std::uint32_t kPartitions = 8;

struct Key {
  int thread;
  int seq;
};

Key ParseKey(std::string_view v) {
  auto colon = v.find(':');
  return {std::stoi(std::string(v.substr(0, colon))), std::stoi(std::string(v.substr(colon + 1)))};
}

// Appends kPerThread records per thread, in batches of 1..3, async; returns each
// record's acknowledged offset as offsets[thread][seq].
void RunAppenders(EventLog& log, int per_thread, std::vector<std::vector<std::uint64_t>>* offsets) {
  offsets->assign(kThreads, std::vector<std::uint64_t>(per_thread, UINT64_MAX));
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int seq = 0; seq < per_thread;) {
        const int n = std::min(1 + seq % 3, per_thread - seq);
        std::vector<std::string> keys;
        for (int k = 0; k < n; ++k)
          keys.push_back(std::to_string(t) + ":" + std::to_string(seq + k));
        std::vector<std::string_view> views(keys.begin(), keys.end());
        const auto p = static_cast<PartitionId>((t * 3 + seq / 7) % kPartitions);
        log.Append(p, views, seq, [&, t, seq, n](Status s, std::uint64_t first) {
          ASSERT_TRUE(s.ok()) << s.ToString();
          for (int k = 0; k < n; ++k) (*offsets)[t][seq + k] = first + k;
          acked.fetch_add(n, std::memory_order_release);
        });
        seq += n;
      }
    });
  }
  for (auto& th : threads) th.join();
  while (acked.load(std::memory_order_acquire) < kThreads * per_thread) std::this_thread::yield();
}

// Reads every partition completely and checks it: each key once, and within a
// partition each thread's keys in increasing order, at their acknowledged offsets.
void CheckLog(const EventLog& log, int per_thread,
              const std::vector<std::vector<std::uint64_t>>& offsets) {
  std::vector<std::vector<int>> count(kThreads, std::vector<int>(per_thread, 0));
  for (PartitionId p = 0; p < kPartitions; ++p) {
    std::map<int, int> last_seq;
    auto r = log.Read(p, 0, SIZE_MAX, [&](std::uint64_t off, Micros, std::string_view v) {
      Key k = ParseKey(v);
      EXPECT_EQ(offsets[k.thread][k.seq], off) << v;
      auto it = last_seq.find(k.thread);
      if (it != last_seq.end()) {
        EXPECT_LT(it->second, k.seq) << "partition " << p;
      }
      last_seq[k.thread] = k.seq;
      ++count[k.thread][k.seq];
      return true;
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, log.EndOffset(p));
  }
  for (int t = 0; t < kThreads; ++t) {
    for (int s = 0; s < per_thread; ++s) ASSERT_EQ(count[t][s], 1) << t << ":" << s;
  }
}

TEST(ConcurrencyTest, AppendersAndTailingReaderSeeEveryRecordOnceInOrder) {
  TempDir dir;
  LogOptions o;
  o.dir = dir.path();
  o.partitions = kPartitions;
  o.segment_bytes = 8 << 10;  // many rolls under the reader
  auto log = EventLog::Open(o).value();
  const int per_thread = 20000;

  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> tailed{0};
  std::thread reader([&] {
    std::vector<std::uint64_t> next(kPartitions, 0);
    while (true) {
      const bool last_pass = done.load();
      for (PartitionId p = 0; p < kPartitions; ++p) {
        const std::size_t max = last_pass ? SIZE_MAX : 500;
        auto r = log->Read(p, next[p], max, [&](std::uint64_t off, Micros, std::string_view) {
          EXPECT_EQ(off, next[p]);
          ++next[p];
          return true;
        });
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(*r, next[p]);
      }
      if (last_pass) break;
    }
    std::uint64_t total = 0;
    for (auto n : next) total += n;
    tailed = total;
  });

  std::vector<std::vector<std::uint64_t>> offsets;
  RunAppenders(*log, per_thread, &offsets);
  done = true;
  reader.join();
  EXPECT_EQ(tailed.load(), static_cast<std::uint64_t>(kThreads * per_thread));
  CheckLog(*log, per_thread, offsets);
}

TEST(ConcurrencyTest, BackPressureWithTinyBatchesCompletesEverything) {
  TempDir dir;
  LogOptions o;
  o.dir = dir.path();
  o.partitions = kPartitions;
  o.max_batch_records = 3;
  o.committer_threads = 2;
  std::vector<std::vector<std::uint64_t>> offsets;
  {
    auto log = EventLog::Open(o).value();
    RunAppenders(*log, 5000, &offsets);
  }
  auto log = EventLog::Open(o).value();
  CheckLog(*log, 5000, offsets);
}

}  // namespace
}  // namespace herald::eventlog
