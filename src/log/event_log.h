// EventLog: herald's durable event log, partitioned by user.
//
// Each partition (the same partitions as core/partition.h) is an append-only
// sequence of records with dense offsets 0, 1, 2, ... kept in segment files under
// LogOptions::dir (format in log/format.h). Appends are grouped: any thread hands
// records to Append(), which encodes them into the partition's pending buffer and
// returns; a committer thread takes every partition's pending buffer in turn,
// writes each with one pwrite(2) (plus one fdatasync in SyncMode::kFsync) and then
// acknowledges the appends of the group.
//
// Durability: an append is acknowledged only once its records are in the OS
// (kProcess: survives kill -9 of herald, not power loss) or on disk (kFsync:
// survives power loss). A crash may leave a torn record at the end of a partition;
// Open() truncates it, so the log holds exactly the acknowledged records plus
// possibly some that were written but not yet acknowledged when the crash hit.
//
// The module's namespace is herald::eventlog (herald::log is core's logging).
// Thread-safe: every method may be called from any thread, except that the
// EventLog must not be destroyed while another thread is inside a method.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/config.h"
#include "core/partition.h"
#include "core/status.h"

namespace herald {
class MetricsRegistry;
}

namespace herald::eventlog {

struct LogOptions {
  // Root directory of the log, normally <data_dir>/log. Created if missing.
  std::string dir;
  // Number of partitions. Fixed per deployment: Open() refuses a directory that
  // holds partitions beyond this number.
  std::uint32_t partitions = 64;
  SyncMode sync = SyncMode::kProcess;
  // A segment is rolled before an append would take it past this size (an append
  // larger than this gets a segment of its own). At least 1024.
  std::uint64_t segment_bytes = 64ull << 20;
  // Retention, applied by EnforceRetention(); 0 disables a limit.
  std::uint64_t retention_bytes_per_partition = 0;
  Micros retention_age = 0;
  // Appends to one partition block once this many records are waiting for the
  // committer, so a slow disk pushes back on producers instead of growing memory.
  // This also bounds a group: at most this many records (or one larger append)
  // per partition per write.
  std::size_t max_batch_records = 4096;
  // Committer threads; partition p is written by committer p % committer_threads.
  // More than one helps only in kFsync mode, where fdatasync calls dominate.
  unsigned committer_threads = 1;
  // Where to publish herald_log_* metrics; null keeps them private.
  MetricsRegistry* metrics = nullptr;
  // The clock retention by age reads; null means the system clock.
  const Clock* clock = nullptr;
  // Fault injection for tests: called before each group write of a partition; an
  // error fails that write as a disk error would (the partition then refuses
  // appends until the log is reopened). Null in production.
  std::function<Status(PartitionId)> write_fault;
};

// Called once per Append: with Ok and the offset of the append's first record
// once all of its records are durable (the rest follow densely), or with the error.
using AppendCallback = std::function<void(Status, std::uint64_t first_offset)>;

// Called by Read() for each record in offset order. Returning false stops the
// read after this record.
using RecordVisitor =
    std::function<bool(std::uint64_t offset, Micros timestamp_us, std::string_view payload)>;

class EventLog {
 public:
  // Opens (creating if needed) the log in options.dir. Recovers each partition:
  // a torn or corrupt tail of its last segment is truncated away (counted in
  // herald_log_truncated_tails_total and logged). Starts the committer threads.
  static Result<std::unique_ptr<EventLog>> Open(const LogOptions& options);

  // Waits for every pending append to be written and acknowledged, then closes.
  virtual ~EventLog() = default;

  virtual std::uint32_t partitions() const = 0;

  // Appends `payloads` (one record each, all stamped `timestamp_us`) to partition
  // `p`, consecutively and in the order given. The bytes are copied before Append
  // returns. `done` runs exactly once: on a committer thread after the records
  // are durable, or on the calling thread before Append returns when the append
  // is refused (InvalidArgument for a bad partition, an empty list or a payload
  // over format::kMaxPayloadBytes; Unavailable after close; the partition's
  // sticky I/O error after a failed write, which fails every later append to that
  // partition until the log is reopened). `done` must be short; it may call
  // Append(), which then never blocks on back-pressure (nor does an Append from
  // a shard's thread: the committer's callbacks may be waiting for that shard).
  // Appends from one thread to one partition are acknowledged in offset order.
  virtual void Append(PartitionId p, std::span<const std::string_view> payloads,
                      Micros timestamp_us, AppendCallback done) = 0;

  // Append() of one payload.
  void Append(PartitionId p, std::string_view payload, Micros timestamp_us, AppendCallback done) {
    Append(p, std::span<const std::string_view>(&payload, 1), timestamp_us, std::move(done));
  }

  // Append() that waits for the acknowledgement and returns the first offset.
  // Must not be called from an AppendCallback.
  Result<std::uint64_t> AppendSync(PartitionId p, std::span<const std::string_view> payloads,
                                   Micros timestamp_us);
  Result<std::uint64_t> AppendSync(PartitionId p, std::string_view payload, Micros timestamp_us) {
    return AppendSync(p, std::span<const std::string_view>(&payload, 1), timestamp_us);
  }

  // Calls fn for the durable records of partition `p` with offset >= `from`, in
  // order, up to `max_records` of them or until fn returns false. Records already
  // removed by retention are skipped: a read from below StartOffset() starts at
  // StartOffset(). Returns the offset to read from next (one past the last record
  // given to fn, or max(from, StartOffset()) when none was). Every record's CRC
  // is checked: a damaged one ends the read with Corruption, after fn has seen
  // the records before it. fn runs on the calling thread, which may be any.
  virtual Result<std::uint64_t> Read(PartitionId p, std::uint64_t from, std::size_t max_records,
                                     const RecordVisitor& fn) const = 0;

  // One past the last durable record of `p` (the offset the next append will get
  // once everything pending is acknowledged). Requires p < partitions().
  virtual std::uint64_t EndOffset(PartitionId p) const = 0;
  // The oldest offset of `p` still on disk. Requires p < partitions().
  virtual std::uint64_t StartOffset(PartitionId p) const = 0;

  // Deletes whole segments from the front of each partition, never the one being
  // written to, while the partition holds more than retention_bytes_per_partition
  // bytes, or while a segment has expired: a segment expires once the record after
  // it (the first of the next segment) has a timestamp at or before
  // clock->Now() - retention_age, since every record of the segment was appended
  // before that one. Deletions are counted in herald_log_segments_deleted_total.
  // Blocking file-system work: call it from a background pool, not a shard.
  Status EnforceRetention() { return EnforceRetention({}); }
  // The same, never deleting a record at or after keep_from[p] (the oldest offset
  // a reader still needs, such as the pipeline's checkpoint); an empty span keeps
  // nothing back.
  virtual Status EnforceRetention(std::span<const std::uint64_t> keep_from) = 0;
  // Bytes of segment files on disk, over all partitions.
  virtual std::uint64_t DiskBytes() const = 0;
};

}  // namespace herald::eventlog
