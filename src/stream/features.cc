#include "stream/features.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "stream/features_internal.h"

namespace herald::stream {
namespace {

using internal::LocalTime;

template <typename T>
void SaturatingIncrement(T& v) {
  if (v < std::numeric_limits<T>::max()) ++v;
}

// Half-lives from the decay landmark to `t` (negative for late events).
double HalfLivesSince(const UserFeatures& f, Micros t) {
  return static_cast<double>(t - f.decay_ref) / static_cast<double>(kDecayHalfLife);
}

// Moves the decay landmark forward by whole half-lives so that `t` is less than
// one half-life past it. Moving by n half-lives halves every stored value n
// times, which for activity is exact (activity_exp -= n) and for the float tag
// weights too (ldexp).
void Rebase(UserFeatures& f, Micros t) {
  if (f.decay_ref == 0) {
    f.decay_ref = t;
    return;
  }
  if (t < f.decay_ref + kDecayHalfLife) return;
  const Micros n = (t - f.decay_ref) / kDecayHalfLife;
  f.decay_ref += n * kDecayHalfLife;
  if (f.activity_exp - n < -30000) {  // all activity decayed below 2^-30000
    std::fill(std::begin(f.activity), std::end(f.activity), 0);
    f.activity_exp = 0;
  } else {
    f.activity_exp = static_cast<std::int16_t>(f.activity_exp - n);
  }
  for (float& w : f.tag_weight) w = std::ldexp(w, static_cast<int>(-std::min<Micros>(n, 300)));
}

// A deterministic number in [0, 1) drawn from `t` (SplitMix64's finaliser).
double Dither(Micros t) {
  auto z = static_cast<std::uint64_t>(t) + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

// Adds 2^x (x = half-lives since the landmark) to activity[bucket], then
// renormalises so that the largest mantissa is in [32768, 65535]. The addition
// is rounded up or down at random (seeded by the event time, so Apply stays
// deterministic): a heavy user's increments are only a few mantissa units, and
// rounding them to nearest would bias every one the same way.
void AddActivity(UserFeatures& f, int bucket, Micros t) {
  const double x = HalfLivesSince(f, t);
  if (x < -64) return;  // below 2^-64 of an event: nothing to add
  if (x - f.activity_exp > 40) {
    // The new event dwarfs everything stored (by 2^24 or more): start afresh.
    std::fill(std::begin(f.activity), std::end(f.activity), 0);
    f.activity_exp = static_cast<std::int16_t>(std::floor(x) - 15);
  }
  const double add = std::exp2(x - f.activity_exp);
  const double want = f.activity[bucket] + add;
  const double top =
      std::max<double>(want, *std::max_element(std::begin(f.activity), std::end(f.activity)));
  const int shift = static_cast<int>(std::ceil(std::log2(top / 65535.0)));
  if (shift != 0) {
    for (std::uint16_t& q : f.activity) {
      q = static_cast<std::uint16_t>(std::min(65535.0, std::round(std::ldexp(q, -shift))));
    }
    f.activity_exp = static_cast<std::int16_t>(f.activity_exp + shift);
  }
  const double v = f.activity[bucket] + std::ldexp(add, -shift);
  f.activity[bucket] = static_cast<std::uint16_t>(std::min(65535.0, std::floor(v + Dither(t))));
}

// A session is a run of activity events with gaps of at most kSessionGap.
void AddToSession(UserFeatures& f, Micros t) {
  if (f.sessions == 0) {
    f.sessions = 1;
    f.session_start = f.session_end = t;
  } else if (t > f.session_end + kSessionGap) {
    Micros closed = (f.session_end - f.session_start) / kMicrosPerSecond;
    f.session_seconds = static_cast<std::uint32_t>(
        std::min<Micros>(f.session_seconds + closed, std::numeric_limits<std::uint32_t>::max()));
    SaturatingIncrement(f.sessions);
    f.session_start = f.session_end = t;
  } else if (t >= f.session_start - kSessionGap) {
    f.session_start = std::min(f.session_start, t);
    f.session_end = std::max(f.session_end, t);
  }
  // else: too late for the current session, and earlier ones are closed.
}

void AddInterests(UserFeatures& f, const std::vector<std::string>& tags, Micros t) {
  const auto add = static_cast<float>(std::exp2(HalfLivesSince(f, t)));
  for (const std::string& tag : tags) {
    const std::uint64_t key = KeyOf(tag);
    std::size_t slot = kTopInterests;
    for (std::size_t i = 0; i < kTopInterests && slot == kTopInterests; ++i) {
      if (f.tag_key[i] == key) slot = i;
    }
    if (slot == kTopInterests) {  // new tag: take a free slot, or evict the weakest
      slot = 0;
      for (std::size_t i = 1; i < kTopInterests; ++i) {
        if (f.tag_key[slot] != 0 && (f.tag_key[i] == 0 || f.tag_weight[i] < f.tag_weight[slot])) {
          slot = i;
        }
      }
      f.tag_key[slot] = key;
      f.tag_weight[slot] = 0;
      internal::RememberName(key, tag);
    }
    f.tag_weight[slot] += add;
  }
}

// The account slot for `key`: its own, a free one, or the least recently sent to.
std::size_t AccountSlot(UserFeatures& f, std::uint64_t key, bool* fresh) {
  std::size_t lru = 0;
  for (std::size_t i = 0; i < kTrackedAccounts; ++i) {
    if (f.account_key[i] == key) {
      *fresh = false;
      return i;
    }
    if (f.account_key[lru] != 0 &&
        (f.account_key[i] == 0 || f.account_day[i] < f.account_day[lru])) {
      lru = i;
    }
  }
  *fresh = true;
  return lru;
}

void CountAccountSend(UserFeatures& f, std::string_view account_id, int day) {
  const std::uint64_t key = KeyOf(account_id);
  bool fresh;
  const std::size_t i = AccountSlot(f, key, &fresh);
  if (fresh) {
    internal::RememberName(key, account_id);
    f.account_key[i] = key;
    f.account_day[i] = static_cast<std::uint16_t>(day);
    f.sends_day[i] = f.sends_week[i] = f.sends_month[i] = 1;
    return;
  }
  const int last = f.account_day[i];
  const bool same_week = internal::WeekOf(day) == internal::WeekOf(last);
  const bool same_month = internal::MonthOf(day) == internal::MonthOf(last);
  if (day > last) {  // a new day: periods that ended start again from this send
    f.account_day[i] = static_cast<std::uint16_t>(day);
    f.sends_day[i] = 1;
    if (!same_week) f.sends_week[i] = 0;
    if (!same_month) f.sends_month[i] = 0;
  } else if (day == last) {
    SaturatingIncrement(f.sends_day[i]);
  }
  // A late send (day < last) counts only in the periods it shares with `last`.
  if (same_week || day > last) SaturatingIncrement(f.sends_week[i]);
  if (same_month || day > last) SaturatingIncrement(f.sends_month[i]);
}

// Halves both hour histograms when one bucket is full, keeping their ratios.
void IncrementHour(UserFeatures& f, std::uint16_t* hours, int hour) {
  if (hours[hour] == std::numeric_limits<std::uint16_t>::max()) {
    for (auto& v : f.sent_by_hour) v = static_cast<std::uint16_t>(v / 2);
    for (auto& v : f.opened_by_hour) v = static_cast<std::uint16_t>(v / 2);
  }
  ++hours[hour];
}

int FindPush(const UserFeatures& f, std::uint32_t message) {
  for (std::size_t i = 0; message != 0 && i < kRecentPushes; ++i) {
    if (f.push_time[i] != 0 && f.push_message[i] == message) return static_cast<int>(i);
  }
  return -1;
}

bool AfterLastOpen(const UserFeatures& f, std::uint32_t push_seconds) {
  return static_cast<Micros>(push_seconds) * kMicrosPerSecond > f.last_open;
}

// Records a push in the ring of the latest kRecentPushes, evicting the oldest.
void RememberPush(UserFeatures& f, std::uint32_t seconds, std::uint32_t message) {
  std::size_t slot = 0;
  for (std::size_t i = 1; i < kRecentPushes; ++i) {
    if (f.push_time[slot] != 0 && (f.push_time[i] == 0 || f.push_time[i] < f.push_time[slot])) {
      slot = i;
    }
  }
  const bool full = f.push_time[slot] != 0;
  if (full && f.push_time[slot] > seconds) {  // older than every push kept
    if (AfterLastOpen(f, seconds)) SaturatingIncrement(f.unopened_evicted);
    return;
  }
  if (full && AfterLastOpen(f, f.push_time[slot]) && !(f.push_opened & (1u << slot))) {
    SaturatingIncrement(f.unopened_evicted);
  }
  f.push_time[slot] = seconds;
  f.push_message[slot] = message;
  f.push_opened = static_cast<std::uint8_t>(f.push_opened & ~(1u << slot));
}

void ApplyPush(UserFeatures& f, const Event& e, const LocalTime& lt) {
  const std::uint32_t message = e.message_id.empty() ? 0 : MessageKey(e.message_id);
  if (FindPush(f, message) >= 0) return;  // its sent or delivered was counted
  if (message == 0 && e.type == EventType::kDelivered) return;
  RememberPush(f, static_cast<std::uint32_t>(e.ts / kMicrosPerSecond), message);
  f.last_push = std::max(f.last_push, e.ts);
  IncrementHour(f, f.sent_by_hour, lt.hour);
  if (!e.account_id.empty()) CountAccountSend(f, e.account_id, lt.day);
}

void ApplyOpen(UserFeatures& f, const Event& e, const LocalTime& lt, const cctz::time_zone& tz) {
  if (e.ts > f.last_open) {
    // Evicted pushes are older than every kept one: an open at or after the
    // oldest kept push comes after all of them.
    std::uint32_t oldest = std::numeric_limits<std::uint32_t>::max();
    for (std::uint32_t t : f.push_time) {
      if (t != 0) oldest = std::min(oldest, t);
    }
    if (static_cast<Micros>(oldest) * kMicrosPerSecond <= e.ts) f.unopened_evicted = 0;
    f.last_open = e.ts;
  }
  const int i = FindPush(f, e.message_id.empty() ? 0 : MessageKey(e.message_id));
  if (i >= 0) {
    if (f.push_opened & (1u << i)) return;  // opened and clicked count once
    f.push_opened = static_cast<std::uint8_t>(f.push_opened | (1u << i));
    Micros sent = static_cast<Micros>(f.push_time[i]) * kMicrosPerSecond;
    IncrementHour(f, f.opened_by_hour, internal::ToLocal(sent, tz).hour);
  } else if (e.type == EventType::kOpened) {
    IncrementHour(f, f.opened_by_hour, lt.hour);
  }
}

}  // namespace

std::uint64_t KeyOf(std::string_view name) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

std::uint32_t MessageKey(std::string_view message_id) {
  const std::uint64_t h = KeyOf(message_id);
  const auto k = static_cast<std::uint32_t>(h ^ (h >> 32));
  return k == 0 ? 1 : k;
}

void Apply(UserFeatures& f, const Event& e, const cctz::time_zone& tz) {
  const auto type_index = static_cast<std::size_t>(e.type);
  if (type_index >= kEventTypeCount) return;  // Validate() rejects these
  SaturatingIncrement(f.events_total[type_index]);
  f.first_event = f.first_event == 0 ? e.ts : std::min(f.first_event, e.ts);
  f.last_event = std::max(f.last_event, e.ts);
  const LocalTime lt = internal::ToLocal(e.ts, tz);
  if (IsActivity(e.type)) {
    f.last_active = std::max(f.last_active, e.ts);
    Rebase(f, e.ts);
    AddActivity(f, lt.hour_of_week, e.ts);
    AddToSession(f, e.ts);
  }
  if (e.type == EventType::kRead && !e.tags.empty()) {
    Rebase(f, e.ts);
    AddInterests(f, e.tags, e.ts);
  }
  if (e.type == EventType::kSent || e.type == EventType::kDelivered) ApplyPush(f, e, lt);
  if (e.type == EventType::kOpened || e.type == EventType::kClicked) ApplyOpen(f, e, lt, tz);
}

double ActivityAt(const UserFeatures& f, std::size_t hour, Micros now) {
  if (hour >= kHoursPerWeek || f.activity[hour] == 0) return 0;
  return std::ldexp(static_cast<double>(f.activity[hour]), f.activity_exp) *
         std::exp2(-HalfLivesSince(f, now));
}

std::array<double, kHoursPerWeek> ActivityByHourOfWeek(const UserFeatures& f, Micros now) {
  std::array<double, kHoursPerWeek> out{};
  for (std::size_t h = 0; h < kHoursPerWeek; ++h) out[h] = ActivityAt(f, h, now);
  return out;
}

std::uint32_t UnopenedSinceLastOpen(const UserFeatures& f) {
  std::uint32_t n = f.unopened_evicted;
  for (std::size_t i = 0; i < kRecentPushes; ++i) {
    if (f.push_time[i] != 0 && AfterLastOpen(f, f.push_time[i]) && !(f.push_opened & (1u << i))) {
      ++n;
    }
  }
  return n;
}

SendCounts SendsFromAccount(const UserFeatures& f, std::string_view account_id, Micros now,
                            const cctz::time_zone& tz) {
  const std::uint64_t key = KeyOf(account_id);
  for (std::size_t i = 0; i < kTrackedAccounts; ++i) {
    if (f.account_key[i] != key) continue;
    const int today = internal::ToLocal(now, tz).day;
    const int last = f.account_day[i];
    SendCounts c;
    if (today == last) c.day = f.sends_day[i];
    if (internal::WeekOf(today) == internal::WeekOf(last)) c.week = f.sends_week[i];
    if (internal::MonthOf(today) == internal::MonthOf(last)) c.month = f.sends_month[i];
    return c;
  }
  return {};
}

std::vector<Interest> Interests(const UserFeatures& f, Micros now) {
  std::vector<Interest> out;
  const double decay = std::exp2(-HalfLivesSince(f, now));
  for (std::size_t i = 0; i < kTopInterests; ++i) {
    if (f.tag_key[i] != 0) out.push_back({f.tag_key[i], f.tag_weight[i] * decay});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Interest& a, const Interest& b) { return a.weight > b.weight; });
  return out;
}

SessionStats Sessions(const UserFeatures& f) {
  SessionStats s;
  s.count = f.sessions;
  s.last = f.session_end - f.session_start;
  s.total = static_cast<Micros>(f.session_seconds) * kMicrosPerSecond + s.last;
  return s;
}

}  // namespace herald::stream
