// ShardExecutor timers on the system clock and on a virtual clock.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "core/shard.h"

namespace herald {
namespace {

constexpr Micros kStart = 1'767'571'200LL * kMicrosPerSecond;  // 2026-01-05T00:00:00Z

struct Fired {
  int tag;
  Micros now;  // the clock when it ran
  int shard;
};

// Records what fired, from any shard.
class Recorder {
 public:
  void Add(Fired f) {
    std::lock_guard<std::mutex> l(mu_);
    fired_.push_back(f);
  }
  std::vector<Fired> Take() {
    std::lock_guard<std::mutex> l(mu_);
    return std::move(fired_);
  }

 private:
  std::mutex mu_;
  std::vector<Fired> fired_;
};

TEST(ShardTimerTest, SystemClockTimerRunsOnItsShardAfterItsDueTime) {
  SystemClock clock;
  ShardExecutor exec(2, "timer", &clock);
  std::promise<Fired> p;
  Micros due = clock.Now() + 20 * 1000;
  exec.PostAt(1, due, [&] { p.set_value({0, clock.Now(), ShardExecutor::CurrentShard()}); });
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  Fired got = f.get();
  EXPECT_GE(got.now, due);
  EXPECT_EQ(got.shard, 1);
}

TEST(ShardTimerTest, SystemClockEarlierTimerPostedLaterWakesTheShard) {
  SystemClock clock;
  ShardExecutor exec(1, "timer", &clock);
  std::atomic<int> order{0};
  std::promise<int> early;
  exec.PostAt(0, clock.Now() + 60 * kMicrosPerSecond, [&] { order = 2; });
  exec.PostAt(0, clock.Now() + 10 * 1000, [&] { early.set_value(order.load()); });
  auto f = early.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(f.get(), 0);  // the minute-long timer had not run
}

TEST(ShardTimerTest, VirtualClockFiresWhatIsDueInTimeOrderAtEachDueTime) {
  VirtualClock clock(kStart);
  ShardExecutor exec(3, "vtimer", &clock);
  Recorder rec;
  // Posted out of order, over shards; ties keep their posting order.
  int tags[] = {3, 1, 2, 4, 5};
  Micros dues[] = {3, 1, 2, 3, 9};
  for (int i = 0; i < 5; ++i) {
    int tag = tags[i];
    exec.PostAt(static_cast<unsigned>(i), kStart + dues[i] * kMicrosPerHour,
                [&, tag] { rec.Add({tag, clock.Now(), ShardExecutor::CurrentShard()}); });
  }
  EXPECT_TRUE(rec.Take().empty());  // nothing is due before the clock moves
  clock.Advance(5 * kMicrosPerHour);
  auto fired = rec.Take();
  ASSERT_EQ(fired.size(), 4u);
  int want_tags[] = {1, 2, 3, 4};
  Micros want_at[] = {1, 2, 3, 3};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(fired[i].tag, want_tags[i]);
    EXPECT_EQ(fired[i].now, kStart + want_at[i] * kMicrosPerHour) << "tag " << fired[i].tag;
  }
  EXPECT_EQ(fired[0].shard, 1);
  EXPECT_EQ(clock.Now(), kStart + 5 * kMicrosPerHour);
  EXPECT_EQ(exec.NextDue(), kStart + 9 * kMicrosPerHour);
  clock.Set(kStart + 9 * kMicrosPerHour);  // exactly at the due time
  fired = rec.Take();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].tag, 5);
  EXPECT_EQ(exec.NextDue(), kNever);
}

TEST(ShardTimerTest, VirtualClockRunsTimersThatTimersPostWithinTheSameMove) {
  VirtualClock clock(kStart);
  ShardExecutor exec(2, "vtimer", &clock);
  Recorder rec;
  // A daily job that re-arms itself: a 3-day move runs it on each of the 3 days.
  std::function<void()> daily = [&] {
    rec.Add({0, clock.Now(), ShardExecutor::CurrentShard()});
    exec.PostAt(0, clock.Now() + kMicrosPerDay, daily);
  };
  exec.PostAt(0, kStart + kMicrosPerDay, daily);
  clock.Advance(3 * kMicrosPerDay + kMicrosPerHour);
  auto fired = rec.Take();
  ASSERT_EQ(fired.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(fired[i].now, kStart + (i + 1) * kMicrosPerDay);
  exec.Stop();  // the pending 4th run never happens
  EXPECT_EQ(exec.NextDue(), kNever);
}

TEST(ShardTimerTest, VirtualClockRunsATimerAlreadyDueWithoutMoving) {
  VirtualClock clock(kStart);
  ShardExecutor exec(2, "vtimer", &clock);
  std::promise<Micros> p;
  exec.PostAt(1, kStart - kMicrosPerHour, [&] { p.set_value(clock.Now()); });
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(f.get(), kStart);
}

TEST(ShardTimerTest, CancelledTimerNeverRuns) {
  VirtualClock clock(kStart);
  ShardExecutor exec(2, "vtimer", &clock);
  std::atomic<int> ran{0};
  auto a = exec.PostAt(0, kStart + 10, [&] { ran += 1; });
  auto b = exec.PostAt(0, kStart + 20, [&] { ran += 10; });
  EXPECT_TRUE(exec.Cancel(0, a));
  EXPECT_FALSE(exec.Cancel(0, a));
  clock.Advance(100);
  EXPECT_EQ(ran.load(), 10);
  EXPECT_FALSE(exec.Cancel(0, b));  // already ran
}

TEST(ShardTimerTest, StoppedExecutorRefusesTimersAndLeavesTheClockFree) {
  VirtualClock clock(kStart);
  {
    ShardExecutor exec(2, "vtimer", &clock);
    exec.PostAt(0, kStart + 10, [] {});
    exec.Stop();
    EXPECT_EQ(exec.PostAt(0, kStart + 10, [] {}), 0u);
  }
  clock.Advance(kMicrosPerHour);  // the destroyed executor is no longer a driver
  EXPECT_EQ(clock.Now(), kStart + kMicrosPerHour);
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

TEST(ShardTimerTest, PeriodicTimerRunsOncePerJumpAndOnSchedule) {
  VirtualClock clock(kStart);
  ShardExecutor exec(2, "vtimer", &clock);
  Recorder rec;
  auto id = exec.PostEvery(1, 10 * kMicrosPerSecond, [&] {
    rec.Add({0, clock.Now(), ShardExecutor::CurrentShard()});
  });
  clock.Advance(25 * kMicrosPerSecond);  // due at 10 s: one run for the move
  auto fired = rec.Take();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].now, kStart + 10 * kMicrosPerSecond);
  EXPECT_EQ(fired[0].shard, 1);
  EXPECT_EQ(exec.NextDue(), kStart + 35 * kMicrosPerSecond);  // one interval after the move
  clock.Advance(30 * kMicrosPerDay);  // a month in one move: still one run
  EXPECT_EQ(rec.Take().size(), 1u);
  for (int i = 0; i < 3; ++i) clock.Advance(10 * kMicrosPerSecond);  // small steps: each period
  EXPECT_EQ(rec.Take().size(), 3u);
  EXPECT_TRUE(exec.Cancel(1, id));
  clock.Advance(kMicrosPerHour);
  EXPECT_TRUE(rec.Take().empty());
  EXPECT_EQ(exec.NextDue(), kNever);
}

TEST(ShardTimerTest, PeriodicTimerCanCancelItself) {
  SystemClock clock;
  ShardExecutor exec(1, "ptimer", &clock);
  std::atomic<int> runs{0};
  std::promise<void> done;
  ShardExecutor::TimerId id = 0;
  std::atomic<bool> armed{false};
  id = exec.PostEvery(0, 2000, [&] {
    while (!armed) std::this_thread::yield();
    if (++runs == 3) {
      EXPECT_TRUE(exec.Cancel(0, id));
      done.set_value();
    }
  });
  armed = true;
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(runs.load(), 3);
}

}  // namespace
}  // namespace herald
