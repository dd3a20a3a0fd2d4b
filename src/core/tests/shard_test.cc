#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/partition.h"
#include "core/shard.h"

namespace herald {

// Four producer threads post numbered work for 100 users; every user's work must
// run in the order each producer posted it, always on the shard owning the user.
TEST(ShardExecutorTest, WorkForOneUserRunsInOrderOnItsShard) {
  constexpr int kProducers = 4, kUsers = 100, kPerUser = 500;
  Partitioner parts(64);
  ShardExecutor exec(3, "test");
  // Per shard, per (producer, user): last sequence seen. Touched only by that shard.
  std::vector<std::unordered_map<int, int>> last(exec.size());
  std::atomic<int> violations{0}, wrong_shard{0}, ran{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int seq = 0; seq < kPerUser; ++seq) {
        for (int u = 0; u < kUsers; ++u) {
          std::string user = "user" + std::to_string(u);
          PartitionId part = parts.PartitionOf(user);
          unsigned expect_shard = exec.ShardOf(part);
          exec.PostToPartition(part, [&, p, u, seq, expect_shard] {
            int shard = ShardExecutor::CurrentShard();
            if (shard != static_cast<int>(expect_shard)) wrong_shard++;
            auto [it, fresh] = last[shard].try_emplace(p * kUsers + u, -1);
            if (it->second != seq - 1) violations++;
            it->second = seq;
            ran++;
          });
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  exec.Stop();
  EXPECT_EQ(ran.load(), kProducers * kUsers * kPerUser);
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(wrong_shard.load(), 0);
}

TEST(ShardExecutorTest, StopDrainsQueuedTasksAndRefusesNewOnes) {
  std::atomic<int> ran{0};
  ShardExecutor exec(2, "drain");
  for (int i = 0; i < 10000; ++i) exec.Post(i % 2, [&] { ran++; });
  exec.Stop();
  EXPECT_EQ(ran.load(), 10000);
  EXPECT_FALSE(exec.Post(0, [&] { ran++; }));
  EXPECT_EQ(ShardExecutor::CurrentShard(), -1);
}

TEST(ShardExecutorTest, RunOnAllReachesEveryShard) {
  ShardExecutor exec(4, "all");
  std::vector<int> hit(4, 0);
  exec.RunOnAll([&](unsigned s) { hit[s] = ShardExecutor::CurrentShard() + 1; });
  EXPECT_EQ(hit, (std::vector<int>{1, 2, 3, 4}));
}

}  // namespace herald

namespace herald {

TEST(ShardExecutorTest, PostBoundedWaitsWhileTheShardIsFull) {
  ShardExecutor exec(1, "bounded");
  std::mutex gate;
  gate.lock();  // the worker blocks on its first task, so the queue fills up
  std::atomic<bool> inside_gate{false};
  exec.Post(0, [&] {
    inside_gate = true;
    std::lock_guard<std::mutex> l(gate);
  });
  while (!inside_gate) std::this_thread::yield();
  for (size_t i = 0; i < ShardExecutor::kMaxQueued; ++i) exec.Post(0, [] {});
  std::atomic<bool> posted{false};
  std::thread producer([&] {
    exec.PostBounded(0, [] {});
    posted = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(posted.load());  // waiting for room
  gate.unlock();
  producer.join();
  EXPECT_TRUE(posted.load());
  // From the shard itself it never waits.
  std::promise<bool> inside;
  exec.Post(0, [&] { inside.set_value(exec.PostBounded(0, [] {})); });
  EXPECT_TRUE(inside.get_future().get());
}

}  // namespace herald
