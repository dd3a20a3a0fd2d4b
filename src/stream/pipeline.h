// Pipeline: events in, features out — the event pipeline inside one process.
//
//   Ingest ─▶ event log (durable, partitioned by user) ─▶ shard owning the partition
//          ─▶ watermark / lateness check ─▶ UserFeatures (hot in memory, cold in RocksDB)
//
// An ingested batch is acknowledged once the log has it; the owning shards then
// apply it in log order. Each shard periodically writes its dirty users' features
// together with the log offset they reflect (a checkpoint) in one RocksDB batch, so
// after a crash the pipeline replays the log from the checkpoint: no acknowledged
// event is lost and none is applied twice.
//
// Thread-safe: Ingest and GetFeatures may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/partition.h"
#include "core/shard.h"
#include "log/event_log.h"
#include "store/db.h"
#include "stream/event.h"
#include "stream/windows.h"

namespace herald::stream {

// Column families the pipeline needs. On-disk format:
//   features:     TenantKey(tenant, user_id) -> Serialize(UserFeatures)
//   users:        TenantKey(tenant, user_id) -> JSON {"tz": "Asia/Shanghai", ...}
//   stream_meta:  "ckpt/<partition>" -> "<next offset> <watermark micros>"
inline constexpr const char* kFeaturesFamily = "features";
inline constexpr const char* kUsersFamily = "users";
inline constexpr const char* kStreamMetaFamily = "stream_meta";
std::vector<std::string> PipelineColumnFamilies();

struct PipelineOptions {
  eventlog::EventLog* log = nullptr;  // required; its partitions are the pipeline's
  store::Db* db = nullptr;            // required; see PipelineColumnFamilies()
  ShardExecutor* shards = nullptr;    // required
  const Clock* clock = nullptr;       // required
  MetricsRegistry* metrics = nullptr; // required
  // Events older than the partition's watermark (its latest event time) by more
  // than this are not applied to features (counted as late; still in the log).
  Micros allowed_lateness = 10 * kMicrosPerMinute;
  // Real time between two checkpoints of one partition (its users' features and the
  // log offset they reflect). Partitions take turns, so writes are spread out.
  std::chrono::milliseconds checkpoint_interval{10000};
  // Users kept in memory per shard; beyond it, checkpointed users are evicted.
  size_t max_hot_users_per_shard = 500'000;
};

class Pipeline {
 public:
  // Opens the pipeline and replays the log from the last checkpoints (on the
  // shards; returns once every partition has caught up).
  static Result<std::unique_ptr<Pipeline>> Open(const PipelineOptions& options);
  ~Pipeline();

  // Appends `events` to the log and calls done(status) once all are durable
  // (on a log thread). Applied to features shortly after.
  void Ingest(std::vector<Event> events, std::function<void(Status)> done);

  // The features of one user as JSON (the GET /v1/users/{id}/features shape), or
  // NotFound. `done` runs on the user's shard.
  void GetFeatures(const std::string& tenant, const std::string& user_id,
                   std::function<void(Result<std::string>)> done);

  // Push outcome windows of `size` (kMicrosPerMinute or kMicrosPerHour) of one
  // tenant with start >= since, merged over shards, oldest first; and the
  // tenant's outcome counts by users' local hour of day. `done` runs on a shard.
  void GetWindows(const std::string& tenant, Micros size, Micros since,
                  std::function<void(std::vector<WindowRow>)> done);
  void GetByLocalHour(const std::string& tenant,
                      std::function<void(std::array<OutcomeCounts, 24>)> done);

  // Sets the IANA time zone a user's local hours are computed in.
  Status SetTimeZone(const std::string& tenant, const std::string& user_id,
                     const std::string& tz_name);

  // Writes every shard's dirty features and offsets now, and waits.
  Status Checkpoint();

  // Stops the checkpoint timer and writes a final checkpoint. Idempotent.
  void Stop();

  const Partitioner& partitioner() const { return partitioner_; }

 private:
  struct ShardState;
  explicit Pipeline(const PipelineOptions& options);
  Status Recover();
  void ApplyBatch(PartitionId p, std::uint64_t first, std::vector<Event>& events,
                  std::chrono::steady_clock::time_point received);
  void CatchUp(ShardState& st, PartitionId p, std::uint64_t until);
  void ApplyOne(ShardState& st, PartitionId p, const Event& e);
  void PublishCounts(ShardState& st);
  struct UserEntry;
  UserEntry& Touch(ShardState& st, const std::string& key);
  // Writes all of a shard's partitions and waits; then evicts users over the cap.
  Status CheckpointShard(unsigned shard);
  Status CheckpointNext(unsigned shard);
  void CheckpointPartition(ShardState& st, PartitionId p, store::WriteBatch* b);
  std::chrono::milliseconds TickInterval() const;

  PipelineOptions opt_;
  Partitioner partitioner_;
  store::ColumnFamily features_cf_, users_cf_, meta_cf_;
  std::vector<std::unique_ptr<ShardState>> shard_states_;
  std::thread timer_;
  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;  // GUARDED_BY(timer_mu_)
  Counter *m_ingested_, *m_applied_, *m_late_, *m_checkpoints_;
  Histogram* m_latency_;
  Gauge* m_hot_users_;
};

}  // namespace herald::stream
