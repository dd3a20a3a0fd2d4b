// Appends and reads: round trips, segment rolls, replay after reopen, argument checks.
#include "log/event_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "log/format.h"
#include "log/tests/test_util.h"

namespace herald::eventlog {
namespace {

using testing::Payload;
using testing::ReadAll;
using testing::Rec;
using testing::SegmentFiles;
using testing::TempDir;

LogOptions SmallOptions(const std::string& dir, MetricsRegistry* metrics = nullptr) {
  LogOptions o;
  o.dir = dir;
  o.partitions = 4;
  o.segment_bytes = 1024;
  o.metrics = metrics;
  return o;
}

std::unique_ptr<EventLog> MustOpen(const LogOptions& o) {
  auto log = EventLog::Open(o);
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? std::move(log.value()) : nullptr;
}

TEST(EventLogTest, AppendAndReadAcrossSegmentRolls) {
  TempDir dir;
  MetricsRegistry metrics;
  auto log = MustOpen(SmallOptions(dir.path(), &metrics));
  std::vector<Rec> want;
  for (std::uint64_t i = 0; i < 200; ++i) {
    auto off = log->AppendSync(1, Payload(1, i), 1000 + static_cast<Micros>(i));
    ASSERT_TRUE(off.ok()) << off.status().ToString();
    EXPECT_EQ(*off, i);
    want.push_back({i, 1000 + static_cast<Micros>(i), Payload(1, i)});
  }
  // 200 records of 64 bytes in segments of at most 1024 bytes: 16 per segment.
  EXPECT_EQ(SegmentFiles(dir.path(), 1).size(), 13u);
  for (const auto& f : SegmentFiles(dir.path(), 1)) EXPECT_LE(std::filesystem::file_size(f), 1024u);
  EXPECT_EQ(log->EndOffset(1), 200u);
  EXPECT_EQ(log->StartOffset(1), 0u);
  EXPECT_EQ(log->EndOffset(0), 0u);
  EXPECT_EQ(ReadAll(*log, 1).value(), want);
  for (std::uint64_t from : {0, 15, 16, 17, 100, 199}) {
    auto got = ReadAll(*log, 1, from, 5).value();
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front(), want[from]) << "from " << from;
    EXPECT_EQ(got.size(), std::min<std::size_t>(5, 200 - from));
  }
  EXPECT_TRUE(ReadAll(*log, 1, 200).value().empty());
  EXPECT_TRUE(ReadAll(*log, 0).value().empty());
  EXPECT_EQ(metrics.GetCounter("herald_log_records_appended_total", "").Value(), 200u);
  EXPECT_EQ(metrics.GetCounter("herald_log_bytes_appended_total", "").Value(), 200u * 64);
  EXPECT_EQ(metrics.GetCounter("herald_log_group_commits_total", "").Value(), 200u);
}

TEST(EventLogTest, ReadReturnsNextOffsetAndStopsWhenVisitorSaysSo) {
  TempDir dir;
  auto log = MustOpen(SmallOptions(dir.path()));
  std::vector<std::string> payloads = {"a", "b", "c", "d", "e"};
  std::vector<std::string_view> views(payloads.begin(), payloads.end());
  ASSERT_EQ(log->AppendSync(2, views, 7).value(), 0u);
  std::vector<std::string> seen;
  auto next = log->Read(2, 1, 100, [&](std::uint64_t, Micros ts, std::string_view v) {
    EXPECT_EQ(ts, 7);
    seen.emplace_back(v);
    return v != "c";
  });
  EXPECT_EQ(next.value(), 3u);
  EXPECT_EQ(seen, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(log->Read(2, 3, 1, [](auto...) { return true; }).value(), 4u);
  EXPECT_EQ(log->Read(2, 9, 1, [](auto...) { return true; }).value(), 9u);
}

TEST(EventLogTest, ReplayFromOffsetAfterReopen) {
  TempDir dir;
  std::vector<Rec> want;
  {
    auto log = MustOpen(SmallOptions(dir.path()));
    for (std::uint64_t i = 0; i < 100; ++i) {
      ASSERT_TRUE(log->AppendSync(3, Payload(3, i), static_cast<Micros>(i)).ok());
      want.push_back({i, static_cast<Micros>(i), Payload(3, i)});
    }
  }
  auto log = MustOpen(SmallOptions(dir.path()));
  EXPECT_EQ(log->EndOffset(3), 100u);
  auto tail = ReadAll(*log, 3, 42).value();
  EXPECT_EQ(tail, std::vector<Rec>(want.begin() + 42, want.end()));
  // Appends continue the offsets where the previous run stopped.
  EXPECT_EQ(log->AppendSync(3, "after-reopen", 500).value(), 100u);
  EXPECT_EQ(ReadAll(*log, 3, 100).value(), (std::vector<Rec>{{100, 500, "after-reopen"}}));
}

// Sealed segments found at open have no index yet; a read from their middle
// builds one. Segments here are large enough to hold many index points.
TEST(EventLogTest, SeeksIntoLargeSegmentsBeforeAndAfterReopen) {
  TempDir dir;
  LogOptions o = SmallOptions(dir.path());
  o.segment_bytes = 1 << 20;
  const std::uint64_t n = 40000;  // 124-byte records: about 5 segments
  auto check = [&](EventLog& log) {
    for (std::uint64_t from : {0ull, 1ull, 8399ull, 8400ull, 8455ull, 20000ull, 39999ull}) {
      auto got = ReadAll(log, 0, from, 3).value();
      ASSERT_FALSE(got.empty());
      EXPECT_EQ(got.front().offset, from);
      EXPECT_EQ(got.front().payload, Payload(0, from, 100));
    }
  };
  {
    auto log = MustOpen(o);
    std::vector<std::string> batch;
    for (std::uint64_t i = 0; i < n; ++i) {
      batch.push_back(Payload(0, i, 100));
      if (batch.size() == 100) {
        std::vector<std::string_view> views(batch.begin(), batch.end());
        ASSERT_TRUE(log->AppendSync(0, views, 1).ok());
        batch.clear();
      }
    }
    EXPECT_EQ(SegmentFiles(dir.path(), 0).size(), 5u);
    check(*log);
  }
  auto log = MustOpen(o);
  EXPECT_EQ(log->EndOffset(0), n);
  check(*log);
  EXPECT_EQ(ReadAll(*log, 0).value().size(), n);
}

TEST(EventLogTest, AppendLargerThanASegmentGetsASegmentOfItsOwn) {
  TempDir dir;
  auto log = MustOpen(SmallOptions(dir.path()));
  ASSERT_TRUE(log->AppendSync(0, "small", 1).ok());
  const std::string big(5000, 'x');
  ASSERT_EQ(log->AppendSync(0, big, 2).value(), 1u);
  ASSERT_EQ(log->AppendSync(0, "small again", 3).value(), 2u);
  auto files = SegmentFiles(dir.path(), 0);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(std::filesystem::file_size(files[1]), format::kHeaderSize + big.size());
  auto all = ReadAll(*log, 0).value();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].payload, big);
}

TEST(EventLogTest, RefusesBadAppendsOnTheCallingThread) {
  TempDir dir;
  auto log = MustOpen(SmallOptions(dir.path()));
  auto refused = [&](PartitionId p, std::span<const std::string_view> payloads) {
    Status got = Status::Internal("not called");
    log->Append(p, payloads, 0, [&](Status s, std::uint64_t) { got = s; });
    return got.code();
  };
  std::string_view one = "x";
  EXPECT_EQ(refused(4, {&one, 1}), Code::kInvalidArgument);
  EXPECT_EQ(refused(0, {}), Code::kInvalidArgument);
  std::string huge(format::kMaxPayloadBytes + 1, 'h');
  std::string_view huge_view = huge;
  EXPECT_EQ(refused(0, {&huge_view, 1}), Code::kInvalidArgument);
  EXPECT_EQ(log->EndOffset(0), 0u);
  EXPECT_EQ(log->Read(9, 0, 1, [](auto...) { return true; }).status().code(),
            Code::kInvalidArgument);
}

TEST(EventLogTest, OpenRefusesFewerPartitionsThanOnDisk) {
  TempDir dir;
  { MustOpen(SmallOptions(dir.path())); }
  LogOptions fewer = SmallOptions(dir.path());
  fewer.partitions = 2;
  EXPECT_EQ(EventLog::Open(fewer).status().code(), Code::kFailedPrecondition);
  LogOptions more = SmallOptions(dir.path());
  more.partitions = 8;
  EXPECT_TRUE(EventLog::Open(more).ok());
}

TEST(EventLogTest, OpenValidatesOptions) {
  TempDir dir;
  LogOptions o = SmallOptions(dir.path());
  o.segment_bytes = 100;
  EXPECT_EQ(EventLog::Open(o).status().code(), Code::kInvalidArgument);
  o = SmallOptions("");
  EXPECT_EQ(EventLog::Open(o).status().code(), Code::kInvalidArgument);
  o = SmallOptions(dir.path());
  o.committer_threads = 5;
  EXPECT_EQ(EventLog::Open(o).status().code(), Code::kInvalidArgument);
}

TEST(EventLogTest, FsyncModeWithSeveralCommittersRoundTrips) {
  TempDir dir;
  LogOptions o = SmallOptions(dir.path());
  o.sync = SyncMode::kFsync;
  o.committer_threads = 2;
  {
    auto log = MustOpen(o);
    for (PartitionId p = 0; p < 4; ++p) {
      for (std::uint64_t i = 0; i < 20; ++i) ASSERT_TRUE(log->AppendSync(p, Payload(p, i), 1).ok());
    }
  }
  auto log = MustOpen(o);
  for (PartitionId p = 0; p < 4; ++p) {
    auto all = ReadAll(*log, p).value();
    ASSERT_EQ(all.size(), 20u);
    EXPECT_EQ(all[19].payload, Payload(p, 19));
  }
}

// Destruction commits and acknowledges everything already appended.
TEST(EventLogTest, CloseDrainsPendingAppends) {
  TempDir dir;
  std::atomic<int> acked{0};
  {
    auto log = MustOpen(SmallOptions(dir.path()));
    for (int i = 0; i < 1000; ++i) {
      log->Append(static_cast<PartitionId>(i % 4), Payload(0, static_cast<std::uint64_t>(i)), 1,
                  [&](Status s, std::uint64_t) {
                    EXPECT_TRUE(s.ok());
                    acked++;
                  });
    }
  }
  EXPECT_EQ(acked.load(), 1000);
  auto log = MustOpen(SmallOptions(dir.path()));
  for (PartitionId p = 0; p < 4; ++p) EXPECT_EQ(log->EndOffset(p), 250u);
}

// A callback may append again, even into a full partition: it must not wait for
// the committer it runs on.
TEST(EventLogTest, CallbackMayAppendWithoutDeadlock) {
  TempDir dir;
  LogOptions o = SmallOptions(dir.path());
  o.max_batch_records = 1;
  auto log = MustOpen(o);
  std::atomic<int> chained{0};
  std::function<void(Status, std::uint64_t)> again = [&](Status s, std::uint64_t) {
    ASSERT_TRUE(s.ok());
    if (++chained < 50) {
      log->Append(0, "a", 1, again);
      log->Append(0, "b", 1, [](Status, std::uint64_t) {});
    }
  };
  log->Append(0, "first", 1, again);
  while (chained.load() < 50) std::this_thread::yield();
  EXPECT_EQ(log->AppendSync(0, "last", 1).value(), 99u);
}

}  // namespace
}  // namespace herald::eventlog
