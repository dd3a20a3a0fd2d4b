// Pipeline: events in, per-partition state out — the event pipeline of a node.
//
//   Ingest ─▶ event log (durable, partitioned by user) ─▶ shard owning the partition
//          ─▶ watermark / lateness check ─▶ every registered PartitionState, in order:
//             FeatureStore (features), OutcomeWindows (windows), then the modules'
//
// An ingested batch is acknowledged once the log has it; the owning shards then
// apply it in log order. Each partition is checkpointed on its own: every state
// writes its changes in one RocksDB batch together with the log offset they
// reflect, so after a crash the pipeline loads the checkpoint and replays the log
// from that offset: no acknowledged event is lost and none is applied twice, to
// any state. See partition_state.h for how a module plugs in.
//
// Time: checkpoints run on timers of the shards' Clock (ShardExecutor::PostAt),
// system or virtual; states post their own timers through Partition::PostAt.
//
// Thread-safe after Start(): Ingest, the RunOn* calls and the reads may be
// called from any thread (the blocking ones not from a shard). Register only
// before Start().
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/partition.h"
#include "core/shard.h"
#include "core/worker_pool.h"
#include "log/event_log.h"
#include "store/db.h"
#include "stream/event.h"
#include "stream/event_codec.h"
#include "stream/partition_state.h"
#include "stream/windows.h"

namespace herald::stream {

class OutcomeWindows;
class IngestKeys;

// Column families the pipeline needs (store/keys.h: "state").
std::vector<std::string> PipelineColumnFamilies();

struct PipelineOptions {
  eventlog::EventLog* log = nullptr;  // required; its partitions are the pipeline's
  store::Db* db = nullptr;            // required; see PipelineColumnFamilies()
  ShardExecutor* shards = nullptr;    // required; its clock must be `clock`
  const Clock* clock = nullptr;       // required
  MetricsRegistry* metrics = nullptr; // required
  // Events older than the partition's watermark (its latest event time) by more
  // than this are applied to no state (counted as late; still in the log).
  Micros allowed_lateness = 10 * kMicrosPerMinute;
  // Clock time between two checkpoints of one partition. Partitions take turns,
  // so writes are spread over the interval.
  Micros checkpoint_interval = 10 * kMicrosPerSecond;
  // Users whose features are kept in memory, over all partitions; beyond it,
  // checkpointed users are evicted and reloaded from the store when next used.
  size_t max_hot_users = 1'000'000;
  // How long IngestOnce remembers an idempotency key.
  Micros idempotency_ttl = 24 * kMicrosPerHour;
  // Where work that may wait for the log runs instead of a shard; may be null
  // (it then runs on the shard).
  WorkerPool* background = nullptr;
  // Applied to every ingested event before it is encoded into the log (the
  // privacy transform); may be null. Must outlive the pipeline.
  const EventTransform* transform = nullptr;
};

// What IngestOnce did.
struct IngestOutcome {
  size_t appended = 0;    // events appended by this call
  bool replayed = false;  // every event was already in the log under this key
};

class Pipeline {
 public:
  // Builds a pipeline with the feature store and the outcome windows
  // registered. Nothing runs until Start().
  static Result<std::unique_ptr<Pipeline>> Create(const PipelineOptions& options);
  ~Pipeline();

  // Registers a state: `make` builds its instance for a partition (on the
  // owning shard, at start and after a rebuild). `name` names it in logs; `tag`
  // (unique per state) prefixes its records. States see each event in
  // registration order, after the feature store. Only before Start().
  template <typename S>
  StateHandle<S> Register(std::string name, store::StateTag tag,
                          std::function<std::unique_ptr<S>(Partition&)> make) {
    static_assert(std::is_base_of_v<PartitionState, S>);
    AddState(std::move(name), tag, [make = std::move(make)](Partition& p) {
      return std::unique_ptr<PartitionState>(make(p));
    });
    return StateHandle<S>(specs_.size() - 1);
  }

  // The class of an event's user, for the per-class outcome windows: called on
  // the shard for each push outcome (sent, delivered, opened, converted) after
  // the feature store has applied it; the answer must outlive the call's event.
  // Only before Start().
  using Classifier = std::function<std::string_view(Partition&, const AppliedEvent&)>;
  void SetClassifier(Classifier classifier) { classifier_ = std::move(classifier); }

  // Loads every partition's checkpoint on its shard, replays the log from it up
  // to the end, tells the states (OnRecovered) and starts the checkpoint timers.
  Status Start();

  // Appends `events` to the log and calls done(status) once all are durable
  // (on a log thread). Their effects are applied shortly after, and work posted
  // with RunOn* after `done` runs sees them.
  // With `mark`, the mark is appended as the last record of each partition's
  // append (see IngestOnce).
  void Ingest(std::vector<Event> events, std::function<void(Status)> done,
              const IngestMark* mark = nullptr);

  // Ingest that applies each event exactly once across retries with the same
  // idempotency `key` (per tenant), for as long as the key is remembered
  // (PipelineOptions::idempotency_ttl). Each partition's append ends with a mark
  // of the key, in the same durable write as its events; a retry appends only
  // the partitions whose mark is not in the log yet, so a batch that failed
  // half-way is completed, never duplicated. A key reused with another `digest`
  // (of the request body) is FailedPrecondition. The caller must not run two
  // calls with one key at once. `done` runs on a log thread or a shard.
  void IngestOnce(std::string tenant, std::string key, std::string digest,
                  std::vector<Event> events, std::function<void(Result<IngestOutcome>)> done);

  // Runs fn(partition) on the shard that owns partition `p` and calls done with
  // what it returned, on that shard. R (fn's result) must be Status or a
  // Result<T>: when the pipeline is stopping, fn does not run and done gets
  // Unavailable, on the calling thread.
  template <typename Fn, typename R = std::invoke_result_t<Fn&, Partition&>>
  void RunOnPartition(PartitionId p, Fn fn, std::function<void(R)> done) {
    static_assert(std::is_constructible_v<R, Status>, "return Status or Result<T>");
    bool posted = Post(p, [fn = std::move(fn), done](Partition* part) mutable {
      if (!part) return done(R(Status::Unavailable("the user's partition is stopped")));
      done(fn(*part));
    });
    if (!posted) done(R(Status::Unavailable("shutting down")));
  }
  // RunOnPartition on the partition that owns `user_id`.
  template <typename Fn, typename R = std::invoke_result_t<Fn&, Partition&>>
  void RunOnUser(std::string_view user_id, Fn fn, std::function<void(R)> done) {
    RunOnPartition(partitioner_.PartitionOf(user_id), std::move(fn), std::move(done));
  }
  // RunOnPartition that waits for the answer. Never call it from a shard.
  template <typename Fn, typename R = std::invoke_result_t<Fn&, Partition&>>
  R CallOnPartition(PartitionId p, Fn fn) {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<R> out;
    RunOnPartition(p, std::move(fn), std::function<void(R)>([&](R r) {
                     std::lock_guard<std::mutex> l(mu);
                     out.emplace(std::move(r));
                     cv.notify_one();
                   }));
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return out.has_value(); });
    return std::move(*out);
  }
  template <typename Fn, typename R = std::invoke_result_t<Fn&, Partition&>>
  R CallOnUser(std::string_view user_id, Fn fn) {
    return CallOnPartition(partitioner_.PartitionOf(user_id), std::move(fn));
  }
  // Runs fn on every running partition, each on its shard, and calls done once
  // with the results indexed by partition (a stopped partition's is R{}), on the
  // last shard to finish, or with Unavailable when the pipeline is stopping.
  template <typename Fn, typename R = std::invoke_result_t<Fn&, Partition&>>
  void RunOnEveryPartition(Fn fn, std::function<void(Result<std::vector<R>>)> done) {
    // One object per partition (not a std::vector<R>, which packs bools): shards
    // write their partitions' results at once.
    auto results = std::make_shared<std::vector<std::optional<R>>>(partitioner_.partitions());
    EachPartition([fn = std::move(fn), results](Partition& p) mutable { (*results)[p.id()] = fn(p); },
                  [results, done](Status s) {
                    if (!s.ok()) return done(s);
                    std::vector<R> out;
                    out.reserve(results->size());
                    for (auto& r : *results) out.push_back(r ? std::move(*r) : R{});
                    done(std::move(out));
                  });
  }

  StateHandle<FeatureStore> features() const { return StateHandle<FeatureStore>(0); }
  StateHandle<OutcomeWindows> windows() const { return StateHandle<OutcomeWindows>(1); }
  StateHandle<IngestKeys> ingest_keys() const { return StateHandle<IngestKeys>(2); }

  // Push outcome windows of `size` (kMicrosPerMinute or kMicrosPerHour) of one
  // tenant with start >= since, merged over partitions, oldest first; and the
  // tenant's outcome counts by users' local hour of day. `done` runs on a shard
  // (an empty answer when stopping).
  void GetWindows(const std::string& tenant, Micros size, Micros since,
                  std::function<void(std::vector<WindowRow>)> done);
  void GetByLocalHour(const std::string& tenant,
                      std::function<void(std::array<OutcomeCounts, 24>)> done);

  // Appends user updates (time zones, profiles) to the log, in order with the
  // users' events, and calls done once all are durable (on a log thread); events
  // appended after that are applied in the new zone, at once and on replay.
  // Every state sees each update (PartitionState::OnUserUpdate) after the
  // feature store.
  // InvalidArgument, before anything is appended, for an unknown zone.
  void UpdateUsers(std::vector<UserUpdate> updates, std::function<void(Status)> done);
  // UpdateUsers of one user's zone, waiting for it. Never from a shard.
  Status SetTimeZone(const std::string& tenant, const std::string& user_id,
                     const std::string& tz_name);

  // Writes every partition's checkpoint now, and waits. Never from a shard.
  Status Checkpoint();

  // Stops the checkpoint timers and the states' timers, waits for checkpoints
  // in flight and writes a final one. Idempotent. The shards must still run.
  void Stop();

  const Partitioner& partitioner() const { return partitioner_; }

  // By partition, the oldest log offset a restart would replay from (its latest
  // durable checkpoint): the event log may delete only what lies before it. Any
  // thread.
  std::vector<std::uint64_t> RetainFrom() const;

 private:
  struct Slot;
  struct StateSpec {
    std::string name;
    store::StateTag tag;
    std::function<std::unique_ptr<PartitionState>(Partition&)> make;
  };
  friend class Partition;
  explicit Pipeline(const PipelineOptions& options);
  void AddState(std::string name, store::StateTag tag,
                std::function<std::unique_ptr<PartitionState>(Partition&)> make);
  // Runs fn on p's shard with p, or with null when p is stopped. False (fn never
  // runs) when the pipeline or the shards are stopping.
  bool Post(PartitionId p, std::function<void(Partition*)> fn);
  void EachPartition(std::function<void(Partition&)> fn, std::function<void(Status)> done);
  ShardExecutor::TimerId PostTimer(PartitionId p, std::uint64_t generation, Micros due,
                                   std::function<void(Partition&)> fn);

  // On the owning shard:
  Status LoadPartition(Slot& slot);
  void Rebuild(Slot& slot);
  void StopPartition(Slot& slot, const Status& why);
  void ApplyBatch(PartitionId p, std::uint64_t first, std::vector<Event>& events,
                  const IngestMark* mark, Micros appended_at);
  void CatchUp(Slot& slot, std::uint64_t until);
  // False when a state failed the event; the partition is then stopped.
  bool ApplyOne(Slot& slot, std::uint64_t offset, const Event& e);
  void ApplyMark(Slot& slot, const IngestMark& mark, Micros appended_at);
  void ApplyUserUpdate(Slot& slot, const UserUpdate& update, std::uint64_t offset);
  void PublishCounts(unsigned shard);
  store::WriteBatch BuildCheckpoint(Slot& slot);
  void CheckpointAsync(Slot& slot);
  void OnCheckpointWritten(Slot& slot, std::uint64_t next, Status s);
  void CheckpointTick(unsigned shard);
  void ArmTick(unsigned shard);
  Micros TickInterval() const;

  PipelineOptions opt_;
  Classifier classifier_;
  Partitioner partitioner_;
  store::ColumnFamily state_cf_;
  std::vector<StateSpec> specs_;
  std::vector<std::unique_ptr<Slot>> slots_;            // by partition
  struct alignas(64) ShardState {  // touched only by its shard
    std::vector<PartitionId> owned;  // in checkpoint rotation order
    size_t rotation = 0;
    std::uint64_t applied = 0;  // events applied, not yet added to the metric
  };
  std::vector<ShardState> shard_states_;                // by shard
  std::vector<ShardExecutor::TimerId> ticks_;           // checkpoint timers, by shard
  std::unique_ptr<std::atomic<std::uint64_t>[]> retain_from_;  // by partition
  std::shared_ptr<std::atomic<bool>> alive_;            // false once stopped
  std::atomic<bool> started_{false};
  bool start_failed_ = false;  // no final checkpoint then: some states never loaded
  std::atomic<bool> stopping_{false};
  std::atomic<int> writes_in_flight_{0};
  Counter *m_ingested_, *m_applied_, *m_late_, *m_checkpoints_, *m_checkpoint_failures_,
      *m_rebuilds_;
  Histogram* m_latency_;
  Gauge* m_hot_users_;
  Gauge* m_stopped_;
};

}  // namespace herald::stream
