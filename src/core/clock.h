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
#include <limits>
#include <mutex>
#include <vector>

namespace herald {

using Micros = std::int64_t;

constexpr Micros kMicrosPerSecond = 1'000'000;
constexpr Micros kMicrosPerMinute = 60 * kMicrosPerSecond;
constexpr Micros kMicrosPerHour = 60 * kMicrosPerMinute;
constexpr Micros kMicrosPerDay = 24 * kMicrosPerHour;

// A time after every real one: "no timer pending".
constexpr Micros kNever = std::numeric_limits<Micros>::max();

// Something that holds timers on a clock (core/shard.h's ShardExecutor). A
// VirtualClock that moves asks its drivers for the earliest due time, steps to
// it, has them run what is due, and repeats until it reaches its target; so
// moving the clock fires what came due, in time order, with Now() reading each
// timer's own due time while it runs.
class TimerDriver {
 public:
  virtual ~TimerDriver() = default;
  // The earliest due time of a pending timer, or kNever. Any thread.
  virtual Micros NextDue() const = 0;
  // Runs every timer due at or before `now` (including those they add that are
  // due by then) and returns once they have run. `target` is where the move
  // ends (>= now): periodic timers may run once for the whole move. Called by
  // the moving thread.
  virtual void RunDue(Micros now, Micros target) = 0;
};

// Thread-safe: every method may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  // Current time in microseconds since the Unix epoch.
  virtual Micros Now() const = 0;
  // True for a VirtualClock.
  virtual bool IsVirtual() const { return false; }
  // Registers a driver whose timers this clock fires when it moves (virtual
  // clocks only: on the system clock drivers wait for the time themselves). The
  // driver must be removed before it is destroyed. Removing waits for a move
  // in progress to finish.
  virtual void AddTimerDriver(TimerDriver*) const {}
  virtual void RemoveTimerDriver(TimerDriver*) const {}
};

class SystemClock final : public Clock {
 public:
  Micros Now() const override;
};

// A clock that moves only through Set() and Advance(). Time never goes backwards:
// Set() to an earlier time fails. A move steps through the due times of its
// timer drivers' timers (see TimerDriver) and returns once everything due by the
// target has run. Observers run once per move, at its end, on the thread that
// moved the clock. Neither observers nor timers may move the clock themselves,
// and a move must not be made from a thread whose work a timer waits for (a
// shard).
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(Micros start) : now_(start) {}

  Micros Now() const override { return now_.load(std::memory_order_acquire); }
  bool IsVirtual() const override { return true; }
  void AddTimerDriver(TimerDriver* d) const override;
  void RemoveTimerDriver(TimerDriver* d) const override;

  // Moves the clock forward by `delta` (>= 0). Returns the new time.
  Micros Advance(Micros delta);
  // Moves the clock to `t`. Returns false (and does nothing) when t < Now().
  bool Set(Micros t);
  // Registers `fn(now)` to run at the end of each move.
  void OnMove(std::function<void(Micros)> fn);

 private:
  void MoveTo(Micros t);  // requires mu_
  void Notify(Micros now);

  std::atomic<Micros> now_;
  mutable std::mutex mu_;  // serialises moves; guards observers_ and drivers_
  std::vector<std::function<void(Micros)>> observers_;  // GUARDED_BY(mu_)
  mutable std::vector<TimerDriver*> drivers_;           // GUARDED_BY(mu_)
};

}  // namespace herald
