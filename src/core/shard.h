// ShardExecutor: one worker thread per shard, each owning a set of partitions.
//
// A partition's state is touched only by the shard that owns it
// (shard = partition mod shards), so the hot path needs no locks: other threads
// hand a shard work through Post(). Tasks posted to one shard run one at a time,
// in the order they were posted by any single producer thread, which gives
// per-user ordering because a user maps to exactly one partition.
//
// Timers. PostAt() runs a task on its shard once the executor's Clock reaches a
// due time. On the system clock the worker sleeps until the earliest due time.
// On a virtual clock the executor is one of the clock's TimerDrivers: moving the
// clock steps through the due times and runs each timer on its shard, in due
// time order (ties in the order they were posted), with the clock at the due
// time. Timers are in memory only: an owner that needs one to survive a restart
// keeps it in its durable state and posts it again when it loads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/partition.h"

namespace herald {

class ShardExecutor final : public TimerDriver {
 public:
  using Task = std::function<void()>;
  // Identifies a pending timer for Cancel(); never 0.
  using TimerId = std::uint64_t;

  // Starts `shards` worker threads (0 = one per core). Thread names are
  // "<name>-<i>". Timers read `clock` (null: the system clock), which must
  // outlive the executor.
  ShardExecutor(unsigned shards, std::string name, const Clock* clock = nullptr);
  // Stops the workers after draining every task already posted.
  ~ShardExecutor() override;
  ShardExecutor(const ShardExecutor&) = delete;
  ShardExecutor& operator=(const ShardExecutor&) = delete;

  unsigned size() const { return static_cast<unsigned>(shards_.size()); }
  unsigned ShardOf(PartitionId p) const { return p % size(); }

  // Queues `task` on `shard`. Safe from any thread, including a shard's own.
  // Returns false once Stop() has begun; the task is then dropped.
  bool Post(unsigned shard, Task task);
  bool PostToPartition(PartitionId p, Task task) { return Post(ShardOf(p), std::move(task)); }
  // Post() for producers from outside (ingest, API calls): waits while the shard
  // has kMaxQueued tasks queued, so that a flood slows its source down instead
  // of growing memory. From a shard's own thread it never waits (that could wait
  // for itself). Producers whose waiting could block a shard (the store's
  // committer) use Post().
  bool PostBounded(unsigned shard, Task task);
  static constexpr size_t kMaxQueued = 65536;

  // Runs `task` on every shard and waits until all have run it. Must not be
  // called from a shard.
  void RunOnAll(const std::function<void(unsigned shard)>& task);

  // Runs `task` on `shard` once the clock reads `due` or later (at once if it
  // already does). Safe from any thread. Returns 0, dropping the task, once
  // Stop() has begun. Timers still pending at Stop() never run.
  TimerId PostAt(unsigned shard, Micros due, Task task);
  // Runs `task` on `shard` every `interval` (> 0) of clock time, first at
  // Now() + interval, until cancelled. When one move of a virtual clock spans
  // several periods, it runs once for the move (at the first due time) and next
  // one interval after the move's end: housekeeping such as checkpoints needs no
  // more, and a jump of days costs one run, not thousands.
  TimerId PostEvery(unsigned shard, Micros interval, Task task);
  // Removes a pending timer (a periodic one for good, even from its own task).
  // Returns false when a one-shot timer already ran or is running, or the id was
  // never posted. Safe from any thread.
  bool Cancel(unsigned shard, TimerId id);
  const Clock& clock() const { return *clock_; }

  // Drains queued tasks, then joins the workers. Idempotent.
  void Stop();

  // TimerDriver, for a virtual clock.
  Micros NextDue() const override;
  void RunDue(Micros now, Micros target) override;

  // The shard the calling thread runs, or -1 off-shard.
  static int CurrentShard();

  // Tasks queued but not yet started on `shard` (approximate).
  size_t QueueDepth(unsigned shard) const;

 private:
  struct Timer {
    Micros due;
    TimerId id;       // increasing: breaks ties in posting order
    Micros interval;  // > 0: periodic
    Task task;
  };
  struct Later {  // heap order: the earliest due (then the lowest id) on top
    bool operator()(const Timer& a, const Timer& b) const {
      return a.due != b.due ? a.due > b.due : a.id > b.id;
    }
  };
  struct Shard {
    mutable std::mutex mu;
    std::condition_variable cv;
    std::condition_variable room_cv;  // signalled when the worker takes the queue
    std::vector<Task> queue;    // GUARDED_BY(mu)
    std::vector<Timer> timers;  // GUARDED_BY(mu); a heap ordered by Later
    TimerId running = 0;        // GUARDED_BY(mu); the periodic timer now running
    bool running_cancelled = false;  // GUARDED_BY(mu)
    bool stopping = false;      // GUARDED_BY(mu)
    std::thread thread;
  };
  void Run(unsigned index);
  // Runs the timers of `s` due at or before `now`, one at a time, on its thread;
  // periodic ones are re-armed one interval after `until` (>= now).
  void RunDueTimers(Shard& s, Micros now, Micros until);
  TimerId Arm(unsigned shard, Micros due, Micros interval, Task task);

  const Clock* clock_;
  SystemClock system_clock_;
  bool virtual_;
  bool removed_ = false;  // from the virtual clock's drivers, by Stop()
  std::atomic<TimerId> next_timer_{1};
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace herald
