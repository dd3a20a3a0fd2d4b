// Private to the log module: one partition of the event log.
//
// Two sides with separate locks, so that appends never wait for disk I/O or reads:
//  - the append side (mu_): the pending buffer that Append() encodes records into,
//    with the next offset and the callbacks waiting for a commit;
//  - the file side (seg_mu_): the list of segments, shared by the committer (which
//    appends and rolls), readers (any thread) and retention (any thread).
// The committer thread that owns the partition alone touches `inflight_` and the
// active segment's file position.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.h"
#include "log/event_log.h"
#include "log/segment.h"

namespace herald::eventlog {

// The herald_log_* metrics, shared by every partition of a log.
struct LogMetrics {
  Counter* records = nullptr;
  Counter* bytes = nullptr;
  Counter* group_commits = nullptr;
  Counter* write_errors = nullptr;
  Histogram* commit_seconds = nullptr;
  Counter* truncated_tails = nullptr;
  Counter* truncated_bytes = nullptr;
  Counter* deleted_by_size = nullptr;
  Counter* deleted_by_age = nullptr;

  static LogMetrics Register(MetricsRegistry& registry);
};

class PartitionLog {
 public:
  PartitionLog(PartitionId id, std::string dir, const LogOptions& options,
               const LogMetrics& metrics)
      : id_(id), dir_(std::move(dir)), opts_(options), m_(metrics) {}
  PartitionLog(const PartitionLog&) = delete;
  PartitionLog& operator=(const PartitionLog&) = delete;

  // Opens or creates the partition's directory and segments and truncates a torn
  // tail. Called once, before any other method, on one thread.
  Status Recover();

  // --- Append side: any thread. ---

  // Encodes `payloads` into the pending buffer and keeps `done` (moved from only
  // on success) for the commit. Blocks while the buffer is full, unless
  // `may_block` is false. Sets *became_dirty when the partition's committer must
  // be told that there is work.
  Status Enqueue(std::span<const std::string_view> payloads, Micros ts, AppendCallback& done,
                 bool may_block, bool* became_dirty);
  // Refuses every later Enqueue() with Unavailable.
  void Close();

  // --- Committer side: the partition's committer thread only. ---

  // Takes the pending buffer as the in-flight group; false when there was none.
  bool TakePending();
  // Writes the in-flight group to the active segment, rolling as needed.
  Status WriteInflight();
  // fdatasyncs the active segment (kFsync).
  Status SyncInflight();
  // Publishes the new durable end (when `s` is ok) and runs the group's callbacks.
  void CompleteInflight(const Status& s);

  // --- Any thread. ---

  Result<std::uint64_t> Read(std::uint64_t from, std::size_t max_records, const RecordVisitor& fn);
  std::uint64_t EndOffset() const { return durable_end_.load(std::memory_order_acquire); }
  std::uint64_t StartOffset() const { return start_offset_.load(std::memory_order_acquire); }
  // Applies the retention limits of LogOptions as of `now`, deleting no segment
  // that holds an offset >= keep_from.
  Status EnforceRetention(Micros now, std::uint64_t keep_from);
  std::uint64_t DiskBytes() const;

 private:
  struct AppendEntry {
    AppendCallback done;
    std::uint64_t first_offset;
    std::size_t end_byte;  // where this append's records end in the buffer
  };
  // A segment to read and where to start in it.
  struct ReadCursor {
    std::shared_ptr<Segment> segment;
    std::shared_ptr<const File> file;
    IndexPoint start;
    std::uint64_t limit = 0;  // bytes of the segment that hold complete records
    std::uint64_t stop = 0;   // first offset beyond this segment (or the durable end)
  };

  std::string SegmentPath(std::uint64_t base) const;
  Status RecoverActive(std::uint64_t base);
  Status CreateActive(std::uint64_t base);
  Status Roll(std::uint64_t base);
  Status WriteRun(std::size_t first_entry, std::size_t end_entry, std::size_t from_byte,
                  std::size_t to_byte);
  void FailWrites(const Status& s);
  Status Locate(std::uint64_t* next, std::uint64_t end, ReadCursor* c);
  Status BuildIndex(const ReadCursor& c);
  bool Deleted(const Segment& seg) const;

  const PartitionId id_;
  const std::string dir_;
  const LogOptions& opts_;
  const LogMetrics& m_;

  std::mutex mu_;
  std::condition_variable space_cv_;          // signalled when the pending buffer empties
  std::string pending_;                       // GUARDED_BY(mu_): encoded records
  std::vector<AppendEntry> pending_entries_;  // GUARDED_BY(mu_)
  std::size_t pending_records_ = 0;           // GUARDED_BY(mu_)
  std::uint64_t next_offset_ = 0;             // GUARDED_BY(mu_): offset of the next append
  bool dirty_ = false;                        // GUARDED_BY(mu_): the committer has been told
  int waiters_ = 0;                           // GUARDED_BY(mu_): appends blocked on space
  Status refusal_;                            // GUARDED_BY(mu_): sticky error or closed

  // Committer-owned.
  std::string inflight_bytes_;
  std::vector<AppendEntry> inflight_entries_;
  std::uint64_t inflight_end_ = 0;
  std::size_t inflight_records_ = 0;
  std::shared_ptr<Segment> active_;
  std::shared_ptr<File> active_file_;
  std::uint64_t active_size_ = 0;
  std::uint64_t last_index_pos_ = 0;  // position of the active segment's last index point
  Status write_error_;

  mutable std::mutex seg_mu_;
  std::vector<std::shared_ptr<Segment>> segments_;  // GUARDED_BY(seg_mu_): by base, last active
  std::atomic<std::uint64_t> durable_end_{0};
  std::atomic<std::uint64_t> start_offset_{0};
};

}  // namespace herald::eventlog
