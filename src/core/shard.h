// ShardExecutor: one worker thread per shard, each owning a set of partitions.
//
// A partition's state is touched only by the shard that owns it
// (shard = partition mod shards), so the hot path needs no locks: other threads
// hand a shard work through Post(). Tasks posted to one shard run one at a time,
// in the order they were posted by any single producer thread, which gives
// per-user ordering because a user maps to exactly one partition.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/partition.h"

namespace herald {

class ShardExecutor {
 public:
  using Task = std::function<void()>;

  // Starts `shards` worker threads (0 = one per core). Thread names are
  // "<name>-<i>".
  ShardExecutor(unsigned shards, std::string name);
  // Stops the workers after draining every task already posted.
  ~ShardExecutor();
  ShardExecutor(const ShardExecutor&) = delete;
  ShardExecutor& operator=(const ShardExecutor&) = delete;

  unsigned size() const { return static_cast<unsigned>(shards_.size()); }
  unsigned ShardOf(PartitionId p) const { return p % size(); }

  // Queues `task` on `shard`. Safe from any thread, including a shard's own.
  // Returns false once Stop() has begun; the task is then dropped.
  bool Post(unsigned shard, Task task);
  bool PostToPartition(PartitionId p, Task task) { return Post(ShardOf(p), std::move(task)); }

  // Runs `task` on every shard and waits until all have run it.
  void RunOnAll(const std::function<void(unsigned shard)>& task);

  // Drains queued tasks, then joins the workers. Idempotent.
  void Stop();

  // The shard the calling thread runs, or -1 off-shard.
  static int CurrentShard();

  // Tasks queued but not yet started on `shard` (approximate).
  size_t QueueDepth(unsigned shard) const;

 private:
  struct Shard {
    mutable std::mutex mu;
    std::condition_variable cv;
    std::vector<Task> queue;  // GUARDED_BY(mu)
    bool stopping = false;    // GUARDED_BY(mu)
    std::thread thread;
  };
  void Run(unsigned index);

  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace herald
