#include "core/clock.h"

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
  now_.store(now, std::memory_order_release);
  Notify(now);
  return now;
}

bool VirtualClock::Set(Micros t) {
  std::lock_guard<std::mutex> lock(mu_);
  if (t < now_.load(std::memory_order_relaxed)) return false;
  now_.store(t, std::memory_order_release);
  Notify(t);
  return true;
}

void VirtualClock::OnMove(std::function<void(Micros)> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  observers_.push_back(std::move(fn));
}

void VirtualClock::Notify(Micros now) {
  for (auto& fn : observers_) fn(now);
}

}  // namespace herald
