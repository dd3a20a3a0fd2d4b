#include "stream/windows.h"

namespace herald::stream {
namespace {

// Which counter an event type bumps, or nullptr for types that are not outcomes.
std::uint64_t* Slot(OutcomeCounts& c, EventType t) {
  switch (t) {
    case EventType::kSent: return &c.sent;
    case EventType::kDelivered: return &c.delivered;
    case EventType::kOpened: return &c.opened;
    case EventType::kConverted: return &c.converted;
    default: return nullptr;
  }
}

Micros Floor(Micros t, Micros size) {
  Micros r = t % size;
  return r < 0 ? t - r - size : t - r;
}

}  // namespace

void WindowCounts::Add(const Event& e, const std::string& user_class, int local_hour,
                       Micros watermark) {
  OutcomeCounts probe;
  if (!Slot(probe, e.type)) return;
  Expire(watermark);
  for (Micros size : {kMicrosPerMinute, kMicrosPerHour}) {
    Micros start = Floor(e.ts, size);
    if (start + size + retention_ <= watermark) {
      ++late_;  // its window is already gone
      continue;
    }
    ++*Slot(windows_[Key{e.tenant, user_class, size, start}], e.type);
  }
  if (local_hour >= 0 && local_hour < 24) {
    ++*Slot(by_hour_[{e.tenant, user_class}][static_cast<size_t>(local_hour)], e.type);
  }
}

void WindowCounts::Expire(Micros watermark) {
  // Cheap unless the watermark moved past a new minute.
  Micros horizon = Floor(watermark - retention_, kMicrosPerMinute);
  if (horizon <= expired_before_) return;
  expired_before_ = horizon;
  for (auto it = windows_.begin(); it != windows_.end();) {
    const auto& [tenant, cls, size, start] = it->first;
    it = start + size + retention_ <= watermark ? windows_.erase(it) : std::next(it);
  }
}

std::vector<WindowRow> WindowCounts::Windows(Micros size, const std::string& tenant,
                                             Micros since) const {
  std::vector<WindowRow> out;
  for (const auto& [key, counts] : windows_) {
    const auto& [t, cls, sz, start] = key;
    if (sz != size || start < since || (!tenant.empty() && t != tenant)) continue;
    out.push_back({t, cls, sz, start, counts});
  }
  return out;
}

std::array<OutcomeCounts, 24> WindowCounts::ByLocalHour(const std::string& tenant,
                                                        const std::string& user_class) const {
  auto it = by_hour_.find({tenant, user_class});
  return it == by_hour_.end() ? std::array<OutcomeCounts, 24>{} : it->second;
}

}  // namespace herald::stream
