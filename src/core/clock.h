// Clock: the only way herald code reads the time.
//
// Times are microseconds since the Unix epoch (UTC) in an int64 (`Micros`).
// SystemClock reads the wall clock; VirtualClock only moves when told to, so the
// simulator and the tests can run weeks of policy windows in seconds and hit
// boundaries such as "48 h of silence" exactly.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace herald {

using Micros = std::int64_t;

constexpr Micros kMicrosPerSecond = 1'000'000;
constexpr Micros kMicrosPerMinute = 60 * kMicrosPerSecond;
constexpr Micros kMicrosPerHour = 60 * kMicrosPerMinute;
constexpr Micros kMicrosPerDay = 24 * kMicrosPerHour;

// Thread-safe: every method may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  // Current time in microseconds since the Unix epoch.
  virtual Micros Now() const = 0;
  // True for a VirtualClock.
  virtual bool IsVirtual() const { return false; }
};

class SystemClock final : public Clock {
 public:
  Micros Now() const override;
};

// A clock that moves only through Set() and Advance(). Time never goes backwards:
// Set() to an earlier time fails. Observers run after every move, on the thread that
// moved the clock, and must not move the clock themselves.
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(Micros start) : now_(start) {}

  Micros Now() const override { return now_.load(std::memory_order_acquire); }
  bool IsVirtual() const override { return true; }

  // Moves the clock forward by `delta` (>= 0). Returns the new time.
  Micros Advance(Micros delta);
  // Moves the clock to `t`. Returns false (and does nothing) when t < Now().
  bool Set(Micros t);
  // Registers `fn(now)` to run after each move.
  void OnMove(std::function<void(Micros)> fn);

 private:
  void Notify(Micros now);

  std::atomic<Micros> now_;
  std::mutex mu_;  // serialises moves and guards observers_
  std::vector<std::function<void(Micros)>> observers_;  // GUARDED_BY(mu_)
};

}  // namespace herald
