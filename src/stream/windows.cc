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

bool IsWindowOutcome(EventType t) {
  OutcomeCounts probe;
  return Slot(probe, t) != nullptr;
}

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
    auto [it, fresh] = windows_.try_emplace(Key{e.tenant, user_class, size, start});
    ++*Slot(it->second.counts, e.type);
    if (!it->second.changed) {
      it->second.changed = true;
      changed_windows_.push_back(it->first);
    }
  }
  if (local_hour >= 0 && local_hour < 24) {
    auto [it, fresh] = by_hour_.try_emplace(HourKey{e.tenant, user_class});
    ++*Slot(it->second.counts[static_cast<size_t>(local_hour)], e.type);
    if (!it->second.changed) {
      it->second.changed = true;
      changed_hours_.push_back(it->first);
    }
  }
}

WindowCounts::Changes WindowCounts::TakeChanges() {
  Changes c;
  for (const Key& k : changed_windows_) {
    auto it = windows_.find(k);
    if (it == windows_.end()) continue;  // expired since; listed there
    const auto& [t, cls, size, start] = k;
    c.windows.push_back({t, cls, size, start, it->second.counts});
    it->second.changed = false;
  }
  for (const HourKey& k : changed_hours_) {
    auto it = by_hour_.find(k);
    c.hours.push_back({k.first, k.second, it->second.counts});
    it->second.changed = false;
  }
  for (const Key& k : expired_) {
    const auto& [t, cls, size, start] = k;
    c.expired.push_back({t, cls, size, start, {}});
  }
  changed_windows_.clear();
  changed_hours_.clear();
  expired_.clear();
  return c;
}

void WindowCounts::Restore(const WindowRow& row) {
  windows_[Key{row.tenant, row.user_class, row.size, row.start}].counts = row.counts;
}

void WindowCounts::Restore(const HourRow& row) {
  by_hour_[HourKey{row.tenant, row.user_class}].counts = row.counts;
}

void WindowCounts::Expire(Micros watermark) {
  // Cheap unless the watermark moved past a new minute.
  Micros horizon = Floor(watermark - retention_, kMicrosPerMinute);
  if (horizon <= expired_before_) return;
  expired_before_ = horizon;
  for (auto it = windows_.begin(); it != windows_.end();) {
    const auto& [tenant, cls, size, start] = it->first;
    if (start + size + retention_ <= watermark) {
      expired_.push_back(it->first);
      it = windows_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<WindowRow> WindowCounts::Windows(Micros size, const std::string& tenant,
                                             Micros since) const {
  std::vector<WindowRow> out;
  for (const auto& [key, cell] : windows_) {
    const auto& [t, cls, sz, start] = key;
    if (sz != size || start < since || (!tenant.empty() && t != tenant)) continue;
    out.push_back({t, cls, sz, start, cell.counts});
  }
  return out;
}

std::array<OutcomeCounts, 24> WindowCounts::ByLocalHour(const std::string& tenant,
                                                        const std::string& user_class) const {
  auto it = by_hour_.find({tenant, user_class});
  return it == by_hour_.end() ? std::array<OutcomeCounts, 24>{} : it->second.counts;
}

}  // namespace herald::stream
