#include "core/shard.h"

#include <pthread.h>

#include <atomic>

namespace herald {
namespace {
thread_local int t_current_shard = -1;
}  // namespace

ShardExecutor::ShardExecutor(unsigned shards, std::string name) {
  if (shards == 0) shards = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
  for (unsigned i = 0; i < shards; ++i) {
    shards_[i]->thread = std::thread([this, i] { Run(i); });
    std::string tname = (name + "-" + std::to_string(i)).substr(0, 15);
    pthread_setname_np(shards_[i]->thread.native_handle(), tname.c_str());
  }
}

ShardExecutor::~ShardExecutor() { Stop(); }

bool ShardExecutor::Post(unsigned shard, Task task) {
  Shard& s = *shards_[shard % shards_.size()];
  bool wake;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.stopping) return false;
    wake = s.queue.empty();
    s.queue.push_back(std::move(task));
  }
  // The worker only sleeps on an empty queue, so only the first push wakes it.
  if (wake) s.cv.notify_one();
  return true;
}

void ShardExecutor::RunOnAll(const std::function<void(unsigned)>& task) {
  std::mutex mu;
  std::condition_variable cv;
  unsigned remaining = size();
  for (unsigned i = 0; i < size(); ++i) {
    bool posted = Post(i, [&, i] {
      task(i);
      std::lock_guard<std::mutex> lock(mu);
      if (--remaining == 0) cv.notify_one();
    });
    if (!posted) {
      std::lock_guard<std::mutex> lock(mu);
      --remaining;
    }
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return remaining == 0; });
}

void ShardExecutor::Stop() {
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    s->stopping = true;
    s->cv.notify_one();
  }
  for (auto& s : shards_) {
    if (s->thread.joinable()) s->thread.join();
  }
}

int ShardExecutor::CurrentShard() { return t_current_shard; }

size_t ShardExecutor::QueueDepth(unsigned shard) const {
  const Shard& s = *shards_[shard % shards_.size()];
  std::lock_guard<std::mutex> lock(s.mu);
  return s.queue.size();
}

void ShardExecutor::Run(unsigned index) {
  t_current_shard = static_cast<int>(index);
  Shard& s = *shards_[index];
  std::vector<Task> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(s.mu);
      s.cv.wait(lock, [&] { return !s.queue.empty() || s.stopping; });
      if (s.queue.empty() && s.stopping) return;
      batch.swap(s.queue);  // take everything queued in one lock acquisition
    }
    for (Task& t : batch) t();
    batch.clear();
  }
}

}  // namespace herald
