// UserFeatures: what the stream knows about one user, computed from their events
// in event time.
//
// Apply() folds one event into a user's features. It is pure and deterministic:
// the result depends only on the features, the event and the user's time zone,
// never on the wall clock. Values that decay are read at a time the caller gives
// (`now`), so a feature read is reproducible too.
//
// Late events. The pipeline applies events in log order, which is not quite
// event-time order; it drops events later than its allowed lateness and applies
// the rest through Apply(), which tolerates disorder:
//   - decayed values (activity, interests) use forward decay: an event adds
//     2^((ts - decay_ref) / half_life) at a landmark `decay_ref` that only moves
//     forward in whole half-lives, so a late event adds exactly what it would have
//     added in order (up to 16-bit rounding);
//   - counts, hour buckets and the "latest" times (max) do not depend on order;
//   - sends per account count a late send in each period (day, week, month) it
//     shares with the account's latest send, and not in periods already over;
//   - consecutive unopened pushes are computed from the times of the 8 latest
//     pushes and of the latest open, so a late open or send lands where it
//     belongs in time;
//   - sessions: a late event within the gap of the current session's start
//     extends it backwards; one older than that leaves sessions unchanged.
//
// Thread-compatible: a UserFeatures has no internal locking; the shard that owns
// the user's partition is its only writer. The free functions are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "stream/event.h"

namespace cctz {
class time_zone;
}

namespace herald::stream {

// Tunables. They shape stored values, so changing one needs care (see each).
// Half-life of the decayed activity and interest weights. Stored values are
// relative to it; changing it reinterprets them rather than corrupting them.
constexpr Micros kDecayHalfLife = 14 * kMicrosPerDay;
// Two activity events at most this far apart belong to one session.
constexpr Micros kSessionGap = 30 * kMicrosPerMinute;
constexpr std::size_t kTrackedAccounts = 16;  // send counters kept, least recent evicted
constexpr std::size_t kTopInterests = 8;      // interest tags kept, weakest evicted
constexpr std::size_t kRecentPushes = 8;      // push times kept for the unopened counts
constexpr std::size_t kHoursPerWeek = 168;

// The features of one user. Fixed size, no heap: 968 bytes. All zeros is the
// empty state; a time of 0 means "never". Layout (offsets in bytes):
//
//     0  Micros first_event, last_event    earliest and latest event time applied
//    16  Micros last_active                latest activity event (event.h IsActivity)
//    24  Micros last_push, last_open       latest counted push; latest opened/clicked
//    40  Micros session_start, session_end the current (latest) session
//    56  Micros decay_ref                  landmark of the decayed values
//    64  u64    tag_key[8]                 KeyOf(tag) of the interest tags, 0 = free
//   128  u64    account_key[16]            KeyOf(account_id), 0 = free
//   256  u32    events_total[22]           lifetime count per EventType (saturating)
//   344  u32    sessions, session_seconds  sessions started; length of those closed
//   352  u32    push_time[8]               unix seconds of the latest pushes, 0 = free
//   384  u32    push_message[8]            MessageKey(message_id) of each, 0 = none
//   416  f32    tag_weight[8]              decayed weight at decay_ref
//   448  i16    activity_exp               activity[i] * 2^activity_exp = weight at decay_ref
//   450  u16    unopened_evicted           unopened pushes no longer in push_time
//   452  u16    activity[168]              by local hour of the week, Monday 00h = 0
//   788  u16    sent_by_hour[24]           pushes by local hour sent
//   836  u16    opened_by_hour[24]         opened pushes by local hour *sent* (see Apply)
//   884  u16    account_day[16]            local day of the account's latest send
//   916  u8     sends_day/week/month[16]   sends in that day, its week and month
//   964  u8     push_opened                bit i: push i has been opened
//
// Activity is block floating point: 168 16-bit mantissas share one exponent,
// renormalised so that the largest uses the top bit (~5 significant digits for
// the busiest hour). Local days count from Monday 1999-12-27, so weeks (Monday
// to Sunday) are day / 7. Hour buckets are in the zone the user had when the
// event was applied.
struct UserFeatures {
  Micros first_event = 0;
  Micros last_event = 0;
  Micros last_active = 0;
  Micros last_push = 0;
  Micros last_open = 0;
  Micros session_start = 0;
  Micros session_end = 0;
  Micros decay_ref = 0;
  std::uint64_t tag_key[kTopInterests] = {};
  std::uint64_t account_key[kTrackedAccounts] = {};
  std::uint32_t events_total[kEventTypeCount] = {};
  std::uint32_t sessions = 0;
  std::uint32_t session_seconds = 0;
  std::uint32_t push_time[kRecentPushes] = {};
  std::uint32_t push_message[kRecentPushes] = {};
  float tag_weight[kTopInterests] = {};
  std::int16_t activity_exp = 0;
  std::uint16_t unopened_evicted = 0;
  std::uint16_t activity[kHoursPerWeek] = {};
  std::uint16_t sent_by_hour[24] = {};
  std::uint16_t opened_by_hour[24] = {};
  std::uint16_t account_day[kTrackedAccounts] = {};
  std::uint8_t sends_day[kTrackedAccounts] = {};
  std::uint8_t sends_week[kTrackedAccounts] = {};
  std::uint8_t sends_month[kTrackedAccounts] = {};
  std::uint8_t push_opened = 0;

  bool operator==(const UserFeatures&) const = default;
};
static_assert(std::is_trivially_copyable_v<UserFeatures>);
static_assert(sizeof(UserFeatures) <= 1024, "UserFeatures must stay under 1 KiB per user");

// Folds `event` into `f`, with local hours, days, weeks and months in `tz`.
// Counts: events_total by type. Activity events: last_active, activity, sessions.
// read: interest tags from Event::tags (attrs.tags, attrs.category), 1 each.
// sent, delivered: one push per message (a push is counted by whichever of its
// sent and delivered events comes first, by message_id among the latest 8
// pushes; a delivered event without message_id is not counted, a sent one is):
// sent_by_hour, send counts of its account, and the unopened count.
// opened, clicked: last_open (resetting the unopened count), and opened_by_hour
// at the hour the opened push was sent (at the open's own hour when the push is
// unknown; once per push; a click without a known push is not counted there).
void Apply(UserFeatures& f, const Event& event, const cctz::time_zone& tz);

// The stable 64-bit key of an account id or tag (FNV-1a, never 0), and the 32-bit
// key of a message id. Durable: serialised features hold these keys.
std::uint64_t KeyOf(std::string_view name);
std::uint32_t MessageKey(std::string_view message_id);

// Decayed activity in local hour of the week `hour` (0 = Monday 00:00-00:59),
// evaluated at `now`, in events (an event counts 1 when it happens and half that
// after each kDecayHalfLife).
double ActivityAt(const UserFeatures& f, std::size_t hour, Micros now);
std::array<double, kHoursPerWeek> ActivityByHourOfWeek(const UserFeatures& f, Micros now);

// Pushes counted since the latest opened/clicked event: the count behind "3
// consecutive unopened pushes" and "5 unopened since the last open". Exact
// while the unopened pushes are among the 8 latest; older ones are counted too,
// except that an open older than the 8 latest pushes no longer clears them.
std::uint32_t UnopenedSinceLastOpen(const UserFeatures& f);

struct SendCounts {
  std::uint32_t day = 0, week = 0, month = 0;
  bool operator==(const SendCounts&) const = default;
};
// Pushes counted for `account_id` in the local day, week (Monday to Sunday) and
// month that contain `now` in `tz`. Zero for untracked accounts. Counts saturate
// at 255.
SendCounts SendsFromAccount(const UserFeatures& f, std::string_view account_id, Micros now,
                            const cctz::time_zone& tz);

struct Interest {
  std::uint64_t key = 0;  // KeyOf(tag)
  double weight = 0;      // decayed count of read events with the tag, at `now`
};
// The tracked interest tags, heaviest first.
std::vector<Interest> Interests(const UserFeatures& f, Micros now);

// Sessions: how many, and total and latest length (the latest may be ongoing).
struct SessionStats {
  std::uint32_t count = 0;
  Micros total = 0;
  Micros last = 0;
};
SessionStats Sessions(const UserFeatures& f);

// Durable encoding of `f` for the feature store (format and compatibility in
// features_codec.cc). Includes the names behind the account and tag keys that
// this process has seen, so that ToJson can show them after a restart.
std::string Serialize(const UserFeatures& f);
// Corruption when `bytes` is not a Serialize() output of a known version.
Result<UserFeatures> Deserialize(std::string_view bytes);

// Appends the GET /v1/users/{id}/features answer to `out`:
//   {"user_id":..,"events_total":{"register":N,...every type},"first_event":..,
//    "last_event":..,"last_active":TIME|null,"tz":..,"activity":{...},
//    "sessions":{...},"pushes":{...},"sends_by_account":[...],"interests":[...]}
// Decayed values and current periods are evaluated at `now` in `tz`. Accounts
// and tags whose names this process does not know are shown as "#<16 hex>".
void ToJson(const UserFeatures& f, std::string_view user_id, const cctz::time_zone& tz, Micros now,
            std::string* out);

}  // namespace herald::stream
