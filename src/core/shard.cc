#include "core/shard.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>

namespace herald {
namespace {
thread_local int t_current_shard = -1;
}  // namespace

ShardExecutor::ShardExecutor(unsigned shards, std::string name, const Clock* clock)
    : clock_(clock ? clock : &system_clock_), virtual_(clock_->IsVirtual()) {
  if (shards == 0) shards = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
  for (unsigned i = 0; i < shards; ++i) {
    shards_[i]->thread = std::thread([this, i] { Run(i); });
    std::string tname = (name + "-" + std::to_string(i)).substr(0, 15);
    pthread_setname_np(shards_[i]->thread.native_handle(), tname.c_str());
  }
  if (virtual_) clock_->AddTimerDriver(this);
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

bool ShardExecutor::PostBounded(unsigned shard, Task task) {
  Shard& s = *shards_[shard % shards_.size()];
  if (CurrentShard() < 0) {
    std::unique_lock<std::mutex> lock(s.mu);
    s.room_cv.wait(lock, [&] { return s.queue.size() < kMaxQueued || s.stopping; });
  }
  return Post(shard, std::move(task));
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

ShardExecutor::TimerId ShardExecutor::PostAt(unsigned shard, Micros due, Task task) {
  return Arm(shard, due, 0, std::move(task));
}

ShardExecutor::TimerId ShardExecutor::PostEvery(unsigned shard, Micros interval, Task task) {
  interval = std::max<Micros>(interval, 1);
  return Arm(shard, clock_->Now() + interval, interval, std::move(task));
}

ShardExecutor::TimerId ShardExecutor::Arm(unsigned shard, Micros due, Micros interval, Task task) {
  Shard& s = *shards_[shard % shards_.size()];
  TimerId id = next_timer_.fetch_add(1, std::memory_order_relaxed);
  bool earliest;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.stopping) return 0;
    s.timers.push_back(Timer{due, id, interval, std::move(task)});
    std::push_heap(s.timers.begin(), s.timers.end(), Later());
    earliest = s.timers.front().id == id;
  }
  if (!virtual_) {
    if (earliest) s.cv.notify_one();  // the worker may sleep until a later due time
  } else if (due <= clock_->Now()) {
    // Already due: a virtual clock that does not move would never run it.
    Post(shard, [this, &s] {
      Micros now = clock_->Now();
      RunDueTimers(s, now, now);
    });
  }
  return id;
}

bool ShardExecutor::Cancel(unsigned shard, TimerId id) {
  Shard& s = *shards_[shard % shards_.size()];
  std::lock_guard<std::mutex> lock(s.mu);
  if (id != 0 && s.running == id) {
    s.running_cancelled = true;
    return true;
  }
  auto it = std::find_if(s.timers.begin(), s.timers.end(), [id](const Timer& t) { return t.id == id; });
  if (it == s.timers.end()) return false;
  s.timers.erase(it);
  std::make_heap(s.timers.begin(), s.timers.end(), Later());
  return true;
}

void ShardExecutor::RunDueTimers(Shard& s, Micros now, Micros until) {
  for (;;) {
    Timer t;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (s.timers.empty() || s.timers.front().due > now) return;
      std::pop_heap(s.timers.begin(), s.timers.end(), Later());
      t = std::move(s.timers.back());
      s.timers.pop_back();
      if (t.interval) {
        s.running = t.id;
        s.running_cancelled = false;
      }
    }
    t.task();
    if (!t.interval) continue;
    std::lock_guard<std::mutex> lock(s.mu);
    s.running = 0;
    if (s.running_cancelled || s.stopping) continue;
    t.due = std::max(t.due, until) + t.interval;
    s.timers.push_back(std::move(t));
    std::push_heap(s.timers.begin(), s.timers.end(), Later());
  }
}

Micros ShardExecutor::NextDue() const {
  Micros next = kNever;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    if (!s->stopping && !s->timers.empty()) next = std::min(next, s->timers.front().due);
  }
  return next;
}

void ShardExecutor::RunDue(Micros now, Micros target) {
  RunOnAll([this, now, target](unsigned shard) { RunDueTimers(*shards_[shard], now, target); });
}

void ShardExecutor::Stop() {
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    s->stopping = true;
    s->cv.notify_one();
    s->room_cv.notify_all();
  }
  for (auto& s : shards_) {
    if (s->thread.joinable()) s->thread.join();
  }
  if (virtual_ && !removed_) {
    removed_ = true;
    clock_->RemoveTimerDriver(this);
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
  // The longest sleep towards a timer: far-off due times are re-checked, so a
  // sleep never overflows and a clock change is noticed.
  constexpr Micros kMaxSleep = kMicrosPerMinute;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(s.mu);
      while (s.queue.empty() && !s.stopping) {
        if (virtual_ || s.timers.empty()) {
          s.cv.wait(lock);
          continue;
        }
        Micros wait = s.timers.front().due - clock_->Now();
        if (wait <= 0) break;
        s.cv.wait_for(lock, std::chrono::microseconds(std::min(wait, kMaxSleep)));
      }
      if (s.queue.empty() && s.stopping) return;
      batch.swap(s.queue);  // take everything queued in one lock acquisition
    }
    s.room_cv.notify_all();
    for (Task& t : batch) t();
    batch.clear();
    if (!virtual_) {
      Micros now = clock_->Now();
      RunDueTimers(s, now, now);
    }
  }
}

}  // namespace herald
