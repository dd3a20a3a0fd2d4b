// WindowCounts: tumbling windows of push outcomes per tenant and user class.
//
// For each (tenant, class) it counts sends, deliveries, opens and conversions in
// 1-minute and 1-hour tumbling windows of event time, and cumulatively by the
// user's local hour of day (the cold-start prior of send-time optimisation). A
// window is kept until the watermark passes its end by `retention`; older events
// are counted as late. One instance per shard; the owner merges shards on read.
//
// Not thread-safe: lives on its shard.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/clock.h"
#include "stream/event.h"

namespace herald::stream {

// True for the push outcomes the windows count: sent, delivered, opened, converted.
bool IsWindowOutcome(EventType type);

struct OutcomeCounts {
  std::uint64_t sent = 0, delivered = 0, opened = 0, converted = 0;
  OutcomeCounts& operator+=(const OutcomeCounts& o) {
    sent += o.sent;
    delivered += o.delivered;
    opened += o.opened;
    converted += o.converted;
    return *this;
  }
  bool operator==(const OutcomeCounts&) const = default;
};

struct WindowRow {
  std::string tenant;
  std::string user_class;
  Micros size = 0;   // kMicrosPerMinute or kMicrosPerHour
  Micros start = 0;  // window start, UTC, a multiple of size
  OutcomeCounts counts;
};

class WindowCounts {
 public:
  // Windows are dropped once the watermark is `retention` past their end.
  explicit WindowCounts(Micros retention = 48 * kMicrosPerHour) : retention_(retention) {}

  // Counts `e` if it is a push outcome (sent, delivered, opened, converted).
  // `local_hour` is the hour of day of e.ts in the user's time zone.
  void Add(const Event& e, const std::string& user_class, int local_hour, Micros watermark);

  // Windows of one size (and tenant, when not empty) with start >= since, oldest first.
  std::vector<WindowRow> Windows(Micros size, const std::string& tenant, Micros since) const;
  // Cumulative counts by local hour of day for (tenant, class).
  std::array<OutcomeCounts, 24> ByLocalHour(const std::string& tenant,
                                            const std::string& user_class) const;
  std::uint64_t late() const { return late_; }

  // What changed since the last TakeChanges(), for a checkpoint: windows and
  // hour rows with their current counts, and windows that expired since.
  struct HourRow {
    std::string tenant, user_class;
    std::array<OutcomeCounts, 24> counts;
  };
  struct Changes {
    std::vector<WindowRow> windows;
    std::vector<HourRow> hours;
    std::vector<WindowRow> expired;  // counts not meaningful
  };
  Changes TakeChanges();
  // Puts back what a checkpoint held (not marked as changed).
  void Restore(const WindowRow& row);
  void Restore(const HourRow& row);

 private:
  using Key = std::tuple<std::string, std::string, Micros, Micros>;  // tenant, class, size, start
  using HourKey = std::pair<std::string, std::string>;               // tenant, class
  struct Cell {
    OutcomeCounts counts;
    bool changed = false;
  };
  struct HourCell {
    std::array<OutcomeCounts, 24> counts{};
    bool changed = false;
  };
  void Expire(Micros watermark);

  Micros retention_;
  std::map<Key, Cell> windows_;
  std::map<HourKey, HourCell> by_hour_;
  std::vector<Key> changed_windows_, expired_;
  std::vector<HourKey> changed_hours_;
  std::uint64_t late_ = 0;
  Micros expired_before_ = 0;
};

}  // namespace herald::stream
