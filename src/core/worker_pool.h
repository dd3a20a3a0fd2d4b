// WorkerPool: a few threads for blocking work that must not run on a shard or an
// I/O loop (log retention, appends that may wait for the log, exports).
//
// Tasks run in the order posted when there is one thread, and in any order
// otherwise. Thread-safe: Post() from any thread, including the pool's own.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace herald {

class WorkerPool {
 public:
  // Starts `threads` (at least 1) named "<name>-<i>".
  WorkerPool(unsigned threads, std::string name);
  // Stop().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`. Returns false, dropping it, once Stop() has begun.
  bool Post(std::function<void()> task);
  // Runs every task already queued, then joins the threads. Idempotent.
  void Stop();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace herald
