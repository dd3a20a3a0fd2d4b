// EventLog implementation: partitions, committer threads and Open().
#include "log/event_log.h"

#include "core/shard.h"

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "log/partition_log.h"

namespace herald::eventlog {
namespace {

namespace fs = std::filesystem;

// Set on committer threads: an AppendCallback that appends must not block on
// back-pressure, since only this thread can relieve it.
thread_local bool t_on_committer = false;

// Partition directory names: "p%03u" (wider for ids above 999).
std::string PartitionDirName(PartitionId p) {
  std::string digits = std::to_string(p);
  if (digits.size() < 3) digits.insert(0, 3 - digits.size(), '0');
  return "p" + digits;
}

bool ParsePartitionDirName(std::string_view name, PartitionId* p) {
  if (name.size() < 4 || name[0] != 'p') return false;
  auto [ptr, ec] = std::from_chars(name.data() + 1, name.data() + name.size(), *p);
  return ec == std::errc() && ptr == name.data() + name.size();
}

// One committer thread and the partitions that told it they have pending records.
// Lives on its own thread; other threads reach it through MarkDirty().
class Committer {
 public:
  Committer(SyncMode sync, const LogMetrics& m) : sync_(sync), m_(m) {}
  ~Committer() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void MarkDirty(PartitionLog* p) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      dirty_.push_back(p);
    }
    cv_.notify_one();
  }

  // Commits everything already queued, then joins the thread.
  void Stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    t_on_committer = true;
    std::vector<PartitionLog*> batch;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return !dirty_.empty() || stopping_; });
        if (dirty_.empty()) return;  // stopping, and nothing left to commit
        batch.swap(dirty_);
      }
      CommitGroup(batch);
      batch.clear();
    }
  }

  // One group commit: every partition's pending records are written (and synced)
  // before any of the group's appends is acknowledged.
  void CommitGroup(const std::vector<PartitionLog*>& parts) {
    const auto t0 = std::chrono::steady_clock::now();
    taken_.clear();
    for (PartitionLog* p : parts) {
      if (p->TakePending()) taken_.push_back(p);
    }
    if (taken_.empty()) return;
    statuses_.assign(taken_.size(), Status::Ok());
    for (std::size_t i = 0; i < taken_.size(); ++i) statuses_[i] = taken_[i]->WriteInflight();
    if (sync_ == SyncMode::kFsync) {
      for (std::size_t i = 0; i < taken_.size(); ++i) {
        if (statuses_[i].ok()) statuses_[i] = taken_[i]->SyncInflight();
      }
    }
    // Counted before the acknowledgements, so an acknowledged append's commit is
    // already visible in the metrics.
    m_.group_commits->Inc();
    m_.commit_seconds->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (std::size_t i = 0; i < taken_.size(); ++i) taken_[i]->CompleteInflight(statuses_[i]);
  }

  const SyncMode sync_;
  const LogMetrics& m_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PartitionLog*> dirty_;  // GUARDED_BY(mu_)
  bool stopping_ = false;             // GUARDED_BY(mu_)
  std::thread thread_;
  std::vector<PartitionLog*> taken_;  // committer thread only
  std::vector<Status> statuses_;      // committer thread only
};

class LogImpl final : public EventLog {
 public:
  explicit LogImpl(const LogOptions& options) : opts_(options) {
    if (!opts_.metrics) {
      own_metrics_ = std::make_unique<MetricsRegistry>();
      opts_.metrics = own_metrics_.get();
    }
    if (!opts_.clock) opts_.clock = &system_clock_;
    m_ = LogMetrics::Register(*opts_.metrics);
  }

  ~LogImpl() override {
    for (auto& p : parts_) p->Close();  // appends from draining callbacks fail fast
    committers_.clear();                // each drains its queue and joins
  }

  Status Init();

  // EventLog:
  std::uint32_t partitions() const override { return opts_.partitions; }
  using EventLog::Append;
  void Append(PartitionId p, std::span<const std::string_view> payloads, Micros ts,
              AppendCallback done) override;
  Result<std::uint64_t> Read(PartitionId p, std::uint64_t from, std::size_t max_records,
                             const RecordVisitor& fn) const override;
  std::uint64_t EndOffset(PartitionId p) const override { return Part(p).EndOffset(); }
  std::uint64_t StartOffset(PartitionId p) const override { return Part(p).StartOffset(); }
  using EventLog::EnforceRetention;
  Status EnforceRetention(std::span<const std::uint64_t> keep_from) override;
  std::uint64_t DiskBytes() const override {
    std::uint64_t total = 0;
    for (const auto& p : parts_) total += p->DiskBytes();
    return total;
  }

 private:
  PartitionLog& Part(PartitionId p) const {
    if (p >= parts_.size()) std::abort();  // a caller bug: partitions are fixed at Open()
    return *parts_[p];
  }
  Status CheckPartitionCount() const;

  LogOptions opts_;
  std::unique_ptr<MetricsRegistry> own_metrics_;
  SystemClock system_clock_;
  LogMetrics m_;
  std::vector<std::unique_ptr<PartitionLog>> parts_;
  std::vector<std::unique_ptr<Committer>> committers_;  // destroyed before parts_
};

// A smaller partition count would re-home users and orphan the higher partitions'
// records, so it is refused rather than ignored.
Status LogImpl::CheckPartitionCount() const {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(opts_.dir, ec)) {
    PartitionId p;
    if (e.is_directory() && ParsePartitionDirName(e.path().filename().string(), &p) &&
        p >= opts_.partitions) {
      return Status::FailedPrecondition("event log " + opts_.dir + " has partition " +
                                        std::to_string(p) +
                                        " but partitions = " + std::to_string(opts_.partitions) +
                                        "; the partition count of a deployment never changes");
    }
  }
  if (ec) return Status::IoError("list " + opts_.dir + ": " + ec.message());
  return Status::Ok();
}

Status LogImpl::Init() {
  std::error_code ec;
  fs::create_directories(opts_.dir, ec);
  if (ec) return Status::IoError("create " + opts_.dir + ": " + ec.message());
  HERALD_RETURN_IF_ERROR(CheckPartitionCount());
  for (PartitionId p = 0; p < opts_.partitions; ++p) {
    parts_.push_back(
        std::make_unique<PartitionLog>(p, opts_.dir + "/" + PartitionDirName(p), opts_, m_));
    HERALD_RETURN_IF_ERROR(parts_.back()->Recover());
  }
  if (opts_.sync == SyncMode::kFsync) HERALD_RETURN_IF_ERROR(SyncDir(opts_.dir));
  for (unsigned i = 0; i < opts_.committer_threads; ++i) {
    committers_.push_back(std::make_unique<Committer>(opts_.sync, m_));
    committers_.back()->Start();
  }
  return Status::Ok();
}

void LogImpl::Append(PartitionId p, std::span<const std::string_view> payloads, Micros ts,
                     AppendCallback done) {
  if (p >= parts_.size()) {
    return done(Status::InvalidArgument("partition " + std::to_string(p) + " out of range"), 0);
  }
  if (payloads.empty()) return done(Status::InvalidArgument("append of no records"), 0);
  for (std::string_view payload : payloads) {
    if (payload.size() > format::kMaxPayloadBytes) {
      return done(Status::InvalidArgument("record of " + std::to_string(payload.size()) +
                                          " bytes exceeds the limit of " +
                                          std::to_string(format::kMaxPayloadBytes)),
                  0);
    }
  }
  // Only a false -> true change of the partition's dirty flag wakes the committer,
  // so a busy partition costs one notification per group, not one per append.
  bool became_dirty = false;
  // Neither the committer nor a shard waits for room: the committer would wait
  // for itself, and a shard may be what the committer's callbacks wait for.
  const bool may_block = !t_on_committer && ShardExecutor::CurrentShard() < 0;
  Status s = parts_[p]->Enqueue(payloads, ts, done, may_block, &became_dirty);
  if (!s.ok()) return done(std::move(s), 0);
  if (became_dirty) committers_[p % committers_.size()]->MarkDirty(parts_[p].get());
}

Result<std::uint64_t> LogImpl::Read(PartitionId p, std::uint64_t from, std::size_t max_records,
                                    const RecordVisitor& fn) const {
  if (p >= parts_.size()) {
    return Status::InvalidArgument("partition " + std::to_string(p) + " out of range");
  }
  return parts_[p]->Read(from, max_records, fn);
}

// One clock reading for all partitions, so they all apply the same cut-off.
Status LogImpl::EnforceRetention(std::span<const std::uint64_t> keep_from) {
  const Micros now = opts_.clock->Now();
  Status first_error;
  for (size_t i = 0; i < parts_.size(); ++i) {
    auto& p = parts_[i];
    std::uint64_t keep = i < keep_from.size() ? keep_from[i] : UINT64_MAX;
    Status s = p->EnforceRetention(now, keep);
    if (!s.ok() && first_error.ok()) first_error = std::move(s);
  }
  return first_error;
}

Status Validate(const LogOptions& o) {
  if (o.dir.empty()) return Status::InvalidArgument("event log dir is empty");
  if (o.partitions == 0 || o.partitions > 100000) {
    return Status::InvalidArgument("event log partitions must be 1..100000");
  }
  if (o.segment_bytes < 1024) return Status::InvalidArgument("segment_bytes must be >= 1024");
  if (o.max_batch_records == 0) return Status::InvalidArgument("max_batch_records must be >= 1");
  if (o.committer_threads == 0 || o.committer_threads > o.partitions) {
    return Status::InvalidArgument("committer_threads must be 1..partitions");
  }
  if (o.retention_age < 0) return Status::InvalidArgument("retention_age must be >= 0");
  return Status::Ok();
}

}  // namespace

LogMetrics LogMetrics::Register(MetricsRegistry& r) {
  LogMetrics m;
  m.records = &r.GetCounter("herald_log_records_appended_total", "Records made durable.");
  m.bytes =
      &r.GetCounter("herald_log_bytes_appended_total", "Bytes made durable, headers included.");
  m.group_commits = &r.GetCounter("herald_log_group_commits_total", "Group commits.");
  m.write_errors = &r.GetCounter("herald_log_write_errors_total",
                                 "Partition groups that failed to write or sync.");
  m.commit_seconds = &r.GetHistogram(
      "herald_log_commit_seconds",
      "Duration of a group commit, from taking the pending records to durable.", LatencyBuckets());
  m.truncated_tails = &r.GetCounter("herald_log_truncated_tails_total",
                                    "Torn or corrupt segment tails truncated at open.");
  m.truncated_bytes = &r.GetCounter("herald_log_truncated_bytes_total",
                                    "Bytes dropped by tail truncation at open.");
  const std::string deleted = "herald_log_segments_deleted_total";
  const std::string help = "Segments deleted by retention.";
  m.deleted_by_size = &r.GetCounter(deleted, help, {{"reason", "size"}});
  m.deleted_by_age = &r.GetCounter(deleted, help, {{"reason", "age"}});
  return m;
}

Result<std::unique_ptr<EventLog>> EventLog::Open(const LogOptions& options) {
  HERALD_RETURN_IF_ERROR(Validate(options));
  auto log = std::make_unique<LogImpl>(options);
  HERALD_RETURN_IF_ERROR(log->Init());
  return std::unique_ptr<EventLog>(std::move(log));
}

Result<std::uint64_t> EventLog::AppendSync(PartitionId p,
                                           std::span<const std::string_view> payloads,
                                           Micros timestamp_us) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status status;
  std::uint64_t first = 0;
  Append(p, payloads, timestamp_us, [&](Status s, std::uint64_t f) {
    std::lock_guard<std::mutex> lk(mu);  // notify under the lock: the waiter owns cv
    status = std::move(s);
    first = f;
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lk(mu);
  cv.wait(lk, [&] { return done; });
  if (!status.ok()) return status;
  return first;
}

}  // namespace herald::eventlog
