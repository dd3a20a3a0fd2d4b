// PartitionState: how a module keeps per-user state on the shards.
//
// Every module whose state is keyed by user (features, outcome windows, policy
// counters, profiles, the schedule, follows) implements PartitionState and
// registers it with the Pipeline before Start(). The pipeline then keeps one
// instance per partition, on the shard that owns the partition, and
//   - hands it every applied event of its partition in log order (OnEvent);
//   - has it write what changed (Checkpoint) into the same atomic store batch as
//     the partition's log offset, so state and offset never disagree;
//   - restores it from that batch after a restart (Load) and replays the log
//     from the offset, so every event is applied exactly once to every state;
//   - rebuilds it the same way when a checkpoint write fails, so a failed write
//     never loses an update.
// Other threads reach a state through Pipeline::RunOnPartition / RunOnUser,
// which run a function on the owning shard with a Partition to look states up
// in (Partition::Get). Timers (Partition::PostAt) run on the same shard.
//
// Threads: a PartitionState, its Partition and everything handed to its methods
// live on the owning shard and are touched by no other thread.
//
//   class CountingState final : public stream::PartitionState {
//    public:
//     void OnEvent(stream::AppliedEvent& e) override { ++count_; dirty_ = true; }
//     Status Load(stream::StateReader& r) override {
//       auto v = r.Get("n");
//       ...parse into count_...
//     }
//     void Checkpoint(stream::CheckpointWriter& w) override {
//       if (dirty_) w.Put("n", std::to_string(count_));
//       dirty_ = false;
//     }
//     std::uint64_t count_ = 0;
//     bool dirty_ = false;
//   };
//   auto counts = pipeline->Register<CountingState>(
//       "counting", store::StateTag::kTest, [](stream::Partition&) {
//         return std::make_unique<CountingState>(); });
//   ...Start()...
//   pipeline->RunOnUser("t", "u1", [counts](stream::Partition& p) {
//     return p.Get(counts).count_; }, [](Result<std::uint64_t> n) { ... });
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/clock.h"
#include "core/partition.h"
#include "core/shard.h"
#include "core/status.h"
#include "store/db.h"
#include "store/keys.h"
#include "stream/event.h"

namespace cctz {
class time_zone;
}

namespace herald::stream {

struct UserFeatures;
struct UserUpdate;
class FeatureStore;
class Partition;
class Pipeline;

// Per-user slots a state may use to remember where it keeps the user (a row
// number plus one; 0: not noted), so that it finds the user without a lookup of
// its own while the user's features are in memory. Slot 0 is the profile
// store's. A slot is lost when the features are evicted or the partition is
// rebuilt: a state falls back to its own index then.
struct UserSlots {
  std::uint32_t slot[2] = {};
};

// What the states see of the user an event belongs to. Filled by the feature
// store, which always runs first: every later state can read the user's time
// zone and features without a lookup of its own.
struct UserView {
  const cctz::time_zone* tz = nullptr;
  const UserFeatures* features = nullptr;  // after this event was applied
  UserSlots* slots = nullptr;              // the user's slots, with the features
  // The user's class (profile/classes.h) for push outcomes, from the pipeline's
  // classifier (Pipeline::SetClassifier); empty otherwise.
  std::string_view user_class;
};

class Partition;

// One event as it is applied: the event, where it sits in the log, and the
// partition's watermark (its latest event time) after it.
struct AppliedEvent {
  const Event& event;
  PartitionId partition;
  std::uint64_t offset;
  Micros watermark;
  UserView user;
  // A state that cannot apply the event (its store read failed) sets this: no
  // later state sees the event, it is not counted as applied, and the partition
  // stops before it, so that nothing is overwritten with a partial view.
  Status failure;
  // The user's class now, for a state that needs it for an event that is no push
  // outcome (user.user_class is set for those): asks the pipeline's classifier,
  // or "" without one. Costs a classification: call it rarely (once a user-day).
  const std::function<std::string_view(Partition&, const AppliedEvent&)>* classifier = nullptr;
  Partition* part = nullptr;
  std::string_view UserClass() const {
    if (!user.user_class.empty() || !classifier || !*classifier || !part) return user.user_class;
    return (*classifier)(*part, *this);
  }
};

// Writes one state's records of one partition into a checkpoint batch. Keys are
// suffixes: the writer prefixes them with the partition and the state's tag.
class CheckpointWriter {
 public:
  CheckpointWriter(store::WriteBatch* batch, store::ColumnFamily cf, PartitionId p,
                   store::StateTag tag)
      : batch_(batch), cf_(cf), partition_(p), prefix_(store::PartitionTagPrefix(p, tag)) {}
  void Put(std::string_view suffix, std::string_view value);
  void Delete(std::string_view suffix);
  size_t ops() const { return batch_->size(); }
  // A writer into the same batch for another tag this state owns.
  CheckpointWriter For(store::StateTag tag) const {
    return CheckpointWriter(batch_, cf_, partition_, tag);
  }

 private:
  std::string Key(std::string_view suffix);
  store::WriteBatch* batch_;
  store::ColumnFamily cf_;
  PartitionId partition_;
  std::string prefix_;
};

// Reads one state's records of one partition, as of the latest checkpoint.
class StateReader {
 public:
  StateReader(store::Db* db, store::ColumnFamily cf, PartitionId p, store::StateTag tag)
      : db_(db), cf_(cf), partition_(p), prefix_(store::PartitionTagPrefix(p, tag)) {}
  // A reader of the same partition's records of another tag this state owns.
  StateReader For(store::StateTag tag) const { return StateReader(db_, cf_, partition_, tag); }
  Result<std::optional<std::string>> Get(std::string_view suffix);
  // fn(suffix, value) for each record whose suffix starts with `prefix`, in key
  // order, until fn returns false.
  Status Scan(std::string_view prefix,
              const std::function<bool(std::string_view suffix, std::string_view value)>& fn);

 private:
  store::Db* db_;
  store::ColumnFamily cf_;
  PartitionId partition_;
  std::string prefix_;
};

class PartitionState {
 public:
  virtual ~PartitionState() = default;

  // Restores the state from what its last Checkpoint() wrote. Called once per
  // instance, before any event. An error stops the pipeline from starting (or,
  // on a rebuild, stops the partition) and is reported with the state's name.
  virtual Status Load(StateReader& reader) = 0;

  // Folds one applied event in. Events come in log order; events later than the
  // pipeline's allowed lateness never come. Must not block.
  virtual void OnEvent(AppliedEvent& e) = 0;

  // Folds one user update (POST /v1/users: a zone, a profile) in, in log order
  // with the events, after the feature store has applied its zone.
  virtual void OnUserUpdate(const UserUpdate&, const Clock&) {}

  // Writes what changed since the last call. The pipeline commits the batch
  // atomically with the partition's offset; when the write fails, this instance
  // is discarded and a new one is loaded and replayed, so the state may forget
  // what it wrote as soon as this returns.
  virtual void Checkpoint(CheckpointWriter& writer) = 0;

  // The batch of the latest Checkpoint() is durable (a state may now evict).
  virtual void OnCheckpointed() {}

  // Load and replay are done and the partition is live: owners of durable
  // timers post them again here (Partition::PostAt).
  virtual void OnRecovered(Partition&) {}
};

// A typed reference to a registered state, from Pipeline::Register.
template <typename S>
class StateHandle {
 public:
  StateHandle() = default;
  size_t index() const { return index_; }

 private:
  friend class Pipeline;
  explicit StateHandle(size_t i) : index_(i) {}
  size_t index_ = 0;
};

// One partition on its shard: its states, its clock and its timers. Handed to
// functions run with Pipeline::RunOnPartition / RunOnUser and to timers; valid
// for the duration of that call.
class Partition {
 public:
  PartitionId id() const { return id_; }
  const Clock& clock() const { return *clock_; }

  template <typename S>
  S& Get(StateHandle<S> h) {
    return static_cast<S&>(*states_[h.index()]);
  }
  // The feature store of this partition (always registered).
  FeatureStore& features();

  // Runs fn(partition) on this partition's shard once the clock reaches `due`.
  // It does not run if the pipeline stops first, or if the partition's states
  // were rebuilt in between (they post their timers again in OnRecovered; the
  // old ones are cancelled). Returns an id for Cancel (0 when stopping). A state
  // with many deadlines keeps them in its own queue and posts only the earliest.
  ShardExecutor::TimerId PostAt(Micros due, std::function<void(Partition&)> fn);
  // Cancels a timer posted here that has not run. False when it ran or is unknown.
  bool Cancel(ShardExecutor::TimerId id);

  // Marks the partition as changed outside OnEvent (by a timer or a RunOn*
  // function), so that the next checkpoint asks every state for its changes.
  void MarkChanged() { changed_ = true; }

 private:
  friend class Pipeline;
  PartitionId id_ = 0;
  const Clock* clock_ = nullptr;
  Pipeline* pipeline_ = nullptr;
  std::vector<std::unique_ptr<PartitionState>> states_;
  std::uint64_t generation_ = 0;  // bumped by each rebuild
  bool changed_ = false;
  std::unordered_set<ShardExecutor::TimerId> timers_;  // posted, not yet run
};

}  // namespace herald::stream
