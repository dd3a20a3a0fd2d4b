// Recovery: torn tails are truncated at open; damage elsewhere is reported on read.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "log/event_log.h"
#include "log/format.h"
#include "log/tests/test_util.h"

namespace herald::eventlog {
namespace {

using testing::Payload;
using testing::ReadAll;
using testing::SegmentFiles;
using testing::TempDir;

constexpr std::uint64_t kRecordBytes = format::kHeaderSize + 40;  // Payload() default size

class RecoveryTest : public ::testing::Test {
 protected:
  LogOptions Options() {
    LogOptions o;
    o.dir = dir_.path();
    o.partitions = 2;
    o.segment_bytes = 16 * kRecordBytes;
    o.metrics = &metrics_;
    return o;
  }
  // Writes records 0..n-1 to partition 0 and closes the log.
  void Fill(std::uint64_t n) {
    auto log = EventLog::Open(Options()).value();
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_TRUE(log->AppendSync(0, Payload(0, i), 1).ok());
  }
  static void AppendBytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::app) << bytes;
  }
  static void FlipByte(const std::string& path, std::uint64_t pos) {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(static_cast<std::streamoff>(pos));
    char c = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(pos));
    f.put(static_cast<char>(c ^ 0x20));
  }
  std::uint64_t Truncated() {
    return metrics_.GetCounter("herald_log_truncated_tails_total", "").Value();
  }

  TempDir dir_;
  MetricsRegistry metrics_;
};

TEST_F(RecoveryTest, AnAppendCutShortIsDroppedWhole) {
  Fill(10);
  const std::string last = SegmentFiles(dir_.path(), 0).back();
  // Three whole records of a five-record append, then the crash: none of it stays.
  std::string part;
  for (std::uint64_t i = 10; i < 13; ++i) format::AppendRecord(&part, i, 1, Payload(0, i), true);
  AppendBytes(last, part);
  {
    auto log = EventLog::Open(Options()).value();
    EXPECT_EQ(Truncated(), 1u);
    EXPECT_EQ(log->EndOffset(0), 10u);
    EXPECT_EQ(std::filesystem::file_size(last), 10 * kRecordBytes);
    // A multi-record append is written with the flag on all but its last record,
    // and reads back whole after a reopen.
    std::string a = Payload(0, 10), b = Payload(0, 11), c = Payload(0, 12);
    std::string_view three[] = {a, b, c};
    ASSERT_EQ(log->AppendSync(0, three, 1).value(), 10u);
  }
  auto log = EventLog::Open(Options()).value();
  EXPECT_EQ(Truncated(), 1u);  // nothing more to cut
  auto all = ReadAll(*log, 0).value();
  ASSERT_EQ(all.size(), 13u);
  EXPECT_EQ(all[12].payload, Payload(0, 12));
}

TEST_F(RecoveryTest, TornTailIsTruncatedOnOpen) {
  Fill(10);
  const std::string last = SegmentFiles(dir_.path(), 0).back();
  std::string next_record;
  format::AppendRecord(&next_record, 10, 1, Payload(0, 10));
  AppendBytes(last, next_record.substr(0, 30));  // a write cut short by kill -9

  auto log = EventLog::Open(Options()).value();
  EXPECT_EQ(Truncated(), 1u);
  EXPECT_EQ(metrics_.GetCounter("herald_log_truncated_bytes_total", "").Value(), 30u);
  EXPECT_EQ(std::filesystem::file_size(last), 10 * kRecordBytes);
  EXPECT_EQ(log->EndOffset(0), 10u);
  EXPECT_EQ(log->AppendSync(0, Payload(0, 10), 1).value(), 10u);
  auto all = ReadAll(*log, 0).value();
  ASSERT_EQ(all.size(), 11u);
  EXPECT_EQ(all[10].payload, Payload(0, 10));
}

TEST_F(RecoveryTest, GarbageTailIsTruncatedOnOpen) {
  Fill(20);  // 16 in the first segment, 4 in the second
  AppendBytes(SegmentFiles(dir_.path(), 0).back(), std::string(100, '\x5a'));
  auto log = EventLog::Open(Options()).value();
  EXPECT_EQ(Truncated(), 1u);
  EXPECT_EQ(log->EndOffset(0), 20u);
  EXPECT_EQ(ReadAll(*log, 0).value().size(), 20u);
}

TEST_F(RecoveryTest, CorruptLastRecordOfLastSegmentIsTruncated) {
  Fill(10);
  FlipByte(SegmentFiles(dir_.path(), 0).back(), 9 * kRecordBytes + format::kHeaderSize + 3);
  auto log = EventLog::Open(Options()).value();
  EXPECT_EQ(Truncated(), 1u);
  EXPECT_EQ(log->EndOffset(0), 9u);
  EXPECT_EQ(log->AppendSync(0, "replacement", 2).value(), 9u);
}

TEST_F(RecoveryTest, CleanShutdownTruncatesNothing) {
  Fill(40);
  auto log = EventLog::Open(Options()).value();
  EXPECT_EQ(Truncated(), 0u);
  EXPECT_EQ(log->EndOffset(0), 40u);
  EXPECT_EQ(log->EndOffset(1), 0u);
}

TEST_F(RecoveryTest, CrcMismatchInSealedSegmentIsReportedOnRead) {
  Fill(40);  // segments of 16 records: [0,16) [16,32) [32,40)
  FlipByte(SegmentFiles(dir_.path(), 0).front(), 5 * kRecordBytes + format::kHeaderSize);
  auto log = EventLog::Open(Options()).value();
  EXPECT_EQ(Truncated(), 0u);  // older segments are never truncated
  EXPECT_EQ(log->EndOffset(0), 40u);
  std::vector<std::uint64_t> seen;
  auto r = log->Read(0, 0, 100, [&](std::uint64_t o, Micros, std::string_view) {
    seen.push_back(o);
    return true;
  });
  EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().ToString();
  EXPECT_NE(r.status().message().find("crc mismatch"), std::string::npos);
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{0, 1, 2, 3, 4}));
  // Records after the damaged segment are still readable.
  EXPECT_EQ(ReadAll(*log, 0, 16).value().size(), 24u);
}

TEST_F(RecoveryTest, MissingRecordsAtEndOfSealedSegmentAreReported) {
  Fill(40);
  std::filesystem::resize_file(SegmentFiles(dir_.path(), 0).front(), 14 * kRecordBytes);
  auto log = EventLog::Open(Options()).value();
  auto r = ReadAll(*log, 0);
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("ends at offset 14"), std::string::npos)
      << r.status().ToString();
}

// A crash between creating a segment and writing to it leaves an empty last
// segment; it simply becomes the active one.
TEST_F(RecoveryTest, EmptyLastSegmentIsReused) {
  Fill(20);
  const std::string empty = dir_.path() + "/p000/" + format::SegmentFileName(20);
  std::ofstream(empty, std::ios::binary).flush();
  auto log = EventLog::Open(Options()).value();
  EXPECT_EQ(log->EndOffset(0), 20u);
  EXPECT_EQ(log->AppendSync(0, Payload(0, 20), 1).value(), 20u);
  EXPECT_EQ(std::filesystem::file_size(empty), kRecordBytes);
  EXPECT_EQ(ReadAll(*log, 0).value().size(), 21u);
}

// A write that fails (here: the next segment's file name is taken, so the roll
// fails) fails its group and every later append, while reads keep working; a
// reopen recovers.
TEST_F(RecoveryTest, FailedWriteRefusesLaterAppendsUntilReopen) {
  std::string stray = dir_.path() + "/p000/" + format::SegmentFileName(16);
  {
    auto log = EventLog::Open(Options()).value();
    for (std::uint64_t i = 0; i < 16; ++i) ASSERT_TRUE(log->AppendSync(0, Payload(0, i), 1).ok());
    std::ofstream(stray, std::ios::binary) << "stray";
    auto failed = log->AppendSync(0, Payload(0, 16), 1);
    EXPECT_EQ(failed.status().code(), Code::kIoError) << failed.status().ToString();
    EXPECT_EQ(log->AppendSync(0, "later", 1).status().code(), Code::kIoError);
    EXPECT_EQ(metrics_.GetCounter("herald_log_write_errors_total", "").Value(), 1u);
    EXPECT_EQ(log->EndOffset(0), 16u);
    EXPECT_EQ(ReadAll(*log, 0).value().size(), 16u);
    EXPECT_EQ(log->AppendSync(1, "other partitions are unaffected", 1).value(), 0u);
  }
  std::filesystem::remove(stray);
  auto log = EventLog::Open(Options()).value();
  EXPECT_EQ(log->AppendSync(0, Payload(0, 16), 1).value(), 16u);
  EXPECT_EQ(ReadAll(*log, 0).value().size(), 17u);
}

}  // namespace
}  // namespace herald::eventlog
