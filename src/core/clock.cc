#include "core/clock.h"

#include <algorithm>
#include <chrono>

namespace herald {

Micros SystemClock::Now() const {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

Micros VirtualClock::Advance(Micros delta) {
  if (delta < 0) delta = 0;
  std::lock_guard<std::mutex> lock(mu_);
  Micros now = now_.load(std::memory_order_relaxed) + delta;
  MoveTo(now);
  return now;
}

bool VirtualClock::Set(Micros t) {
  std::lock_guard<std::mutex> lock(mu_);
  if (t < now_.load(std::memory_order_relaxed)) return false;
  MoveTo(t);
  return true;
}

void VirtualClock::MoveTo(Micros t) {
  // Step from one due time to the next, so that each timer runs with the clock at
  // its own due time and after every timer due before it.
  for (;;) {
    Micros next = kNever;
    for (TimerDriver* d : drivers_) next = std::min(next, d->NextDue());
    if (next > t) {
      if (now_.load(std::memory_order_acquire) >= t) break;
      // The clock reads `t` before the last look: a timer armed meanwhile for a
      // time already passed either saw `t` (and runs at once) or is seen here.
      now_.store(t, std::memory_order_release);
      continue;
    }
    Micros step = std::max(next, now_.load(std::memory_order_relaxed));
    now_.store(step, std::memory_order_release);
    for (TimerDriver* d : drivers_) d->RunDue(step, t);
  }
  now_.store(t, std::memory_order_release);
  Notify(t);
}

void VirtualClock::AddTimerDriver(TimerDriver* d) const {
  std::lock_guard<std::mutex> lock(mu_);
  drivers_.push_back(d);
}

void VirtualClock::RemoveTimerDriver(TimerDriver* d) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase(drivers_, d);
}

void VirtualClock::OnMove(std::function<void(Micros)> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  observers_.push_back(std::move(fn));
}

void VirtualClock::Notify(Micros now) {
  for (auto& fn : observers_) fn(now);
}

}  // namespace herald
