// Retention by size and by age (on the virtual clock, at its exact boundary).
#include <gtest/gtest.h>

#include "core/clock.h"
#include "log/event_log.h"
#include "log/format.h"
#include "log/tests/test_util.h"

namespace herald::eventlog {
namespace {

using testing::Payload;
using testing::ReadAll;
using testing::SegmentFiles;
using testing::TempDir;

constexpr std::uint64_t kRecordBytes = format::kHeaderSize + 40;
constexpr Micros kT0 = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z

class RetentionTest : public ::testing::Test {
 protected:
  LogOptions Options() {
    LogOptions o;
    o.dir = dir_.path();
    o.partitions = 1;
    o.segment_bytes = 16 * kRecordBytes;  // 16 records per segment
    o.metrics = &metrics_;
    o.clock = &clock_;
    return o;
  }
  void Append(EventLog& log, std::uint64_t n, Micros ts) {
    for (std::uint64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(log.AppendSync(0, Payload(0, log.EndOffset(0)), ts).ok());
    }
  }
  std::uint64_t Deleted(const char* reason) {
    return metrics_.GetCounter("herald_log_segments_deleted_total", "", {{"reason", reason}})
        .Value();
  }

  TempDir dir_;
  MetricsRegistry metrics_;
  VirtualClock clock_{kT0};
};

TEST_F(RetentionTest, NeverDeletesWhatAReaderStillNeeds) {
  LogOptions o = Options();
  o.retention_bytes_per_partition = 3000;
  auto log = EventLog::Open(o).value();
  Append(*log, 100, kT0);  // segments start at 0, 16, 32, 48, 64, 80, 96
  const std::uint64_t keep[] = {40};  // a checkpoint still replays from offset 40
  ASSERT_TRUE(log->EnforceRetention(keep).ok());
  EXPECT_EQ(log->StartOffset(0), 32u);  // [0,16) and [16,32) went; [32,48) holds 40
  EXPECT_EQ(Deleted("size"), 2u);
  EXPECT_EQ(log->DiskBytes(), 100 * kRecordBytes - 32 * kRecordBytes);
  const std::uint64_t none[] = {0};
  ASSERT_TRUE(log->EnforceRetention(none).ok());
  EXPECT_EQ(log->StartOffset(0), 32u);
}

TEST_F(RetentionTest, BySizeDeletesOldestSegmentsUntilUnderTheLimit) {
  LogOptions o = Options();
  o.retention_bytes_per_partition = 3000;
  auto log = EventLog::Open(o).value();
  Append(*log, 100, kT0);  // six full segments of 1024 bytes and 256 bytes in the seventh
  ASSERT_EQ(SegmentFiles(dir_.path(), 0).size(), 7u);
  ASSERT_TRUE(log->EnforceRetention().ok());
  // 6400 bytes -> 2304 after deleting four segments.
  EXPECT_EQ(Deleted("size"), 4u);
  EXPECT_EQ(Deleted("age"), 0u);
  EXPECT_EQ(SegmentFiles(dir_.path(), 0).size(), 3u);
  EXPECT_EQ(log->StartOffset(0), 64u);
  EXPECT_EQ(log->EndOffset(0), 100u);
  // A read from before the start begins at the start.
  auto all = ReadAll(*log, 0).value();
  ASSERT_EQ(all.size(), 36u);
  EXPECT_EQ(all.front().offset, 64u);
  EXPECT_EQ(all.front().payload, Payload(0, 64));
  ASSERT_TRUE(log->EnforceRetention().ok());
  EXPECT_EQ(Deleted("size"), 4u);  // already under the limit
}

TEST_F(RetentionTest, NeverDeletesTheActiveSegment) {
  LogOptions o = Options();
  o.retention_bytes_per_partition = 1;
  o.retention_age = kMicrosPerSecond;
  auto log = EventLog::Open(o).value();
  Append(*log, 40, kT0);
  clock_.Advance(30 * kMicrosPerDay);
  ASSERT_TRUE(log->EnforceRetention().ok());
  EXPECT_EQ(SegmentFiles(dir_.path(), 0).size(), 1u);
  EXPECT_EQ(log->StartOffset(0), 32u);
  EXPECT_EQ(ReadAll(*log, 0).value().size(), 8u);
  EXPECT_EQ(log->AppendSync(0, "still appending", kT0).value(), 40u);
}

// A segment expires when the first record after it is retention_age old.
TEST_F(RetentionTest, ByAgeAtTheExactBoundaryAndAfterReopen) {
  LogOptions o = Options();
  o.retention_age = kMicrosPerHour;
  const Micros t1 = kT0 + 10 * kMicrosPerMinute, t2 = kT0 + 20 * kMicrosPerMinute;
  {
    auto log = EventLog::Open(o).value();
    Append(*log, 16, kT0);  // segment [0,16)
    Append(*log, 16, t1);   // segment [16,32), first record at t1
    Append(*log, 1, t2);    // segment [32,..), first record at t2
    ASSERT_TRUE(clock_.Set(t1 + kMicrosPerHour - 1));
    ASSERT_TRUE(log->EnforceRetention().ok());
    EXPECT_EQ(log->StartOffset(0), 0u);
    clock_.Advance(1);
    ASSERT_TRUE(log->EnforceRetention().ok());
    EXPECT_EQ(log->StartOffset(0), 16u);
    EXPECT_EQ(Deleted("age"), 1u);
  }
  // After a restart the first timestamps come from the segment files.
  auto log = EventLog::Open(o).value();
  EXPECT_EQ(log->StartOffset(0), 16u);
  ASSERT_TRUE(clock_.Set(t2 + kMicrosPerHour - 1));
  ASSERT_TRUE(log->EnforceRetention().ok());
  EXPECT_EQ(log->StartOffset(0), 16u);
  clock_.Advance(1);
  ASSERT_TRUE(log->EnforceRetention().ok());
  EXPECT_EQ(log->StartOffset(0), 32u);
  EXPECT_EQ(Deleted("age"), 2u);
  EXPECT_EQ(Deleted("size"), 0u);
  EXPECT_EQ(SegmentFiles(dir_.path(), 0).size(), 1u);
}

// Retention may delete the segment a reader is in the middle of: the reader
// finishes it through its open file, then skips to the new start.
TEST_F(RetentionTest, ReadSurvivesDeletionOfItsSegment) {
  LogOptions o = Options();
  o.retention_bytes_per_partition = 2 * 16 * kRecordBytes;
  auto log = EventLog::Open(o).value();
  Append(*log, 50, kT0);  // segments at 0, 16, 32, 48
  std::vector<std::uint64_t> seen;
  auto next = log->Read(0, 0, 1000, [&](std::uint64_t off, Micros, std::string_view payload) {
    EXPECT_EQ(payload, Payload(0, off));
    if (off == 3) {
      EXPECT_TRUE(log->EnforceRetention().ok());  // deletes [0,16) and [16,32)
    }
    seen.push_back(off);
    return true;
  });
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(*next, 50u);
  ASSERT_EQ(seen.size(), 16u + 18u);
  EXPECT_EQ(seen[15], 15u);
  EXPECT_EQ(seen[16], 32u);
}

}  // namespace
}  // namespace herald::eventlog
