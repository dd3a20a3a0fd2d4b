// Event: one thing that happened to one user, as ingested by herald.
//
//   {"user_id":"u1","type":"app_open","ts":TIME,"account_id":..,"message_id":..,
//    "campaign_id":..,"attrs":{...}}
//
// Events come from app backends (POST /v1/events, parsed by stream/parse.h), from
// the gateway's device receipts and from herald's own deliveries. They flow through
// the durable event log (encoded by stream/event_codec.h) into the per-user
// features (stream/features.h). The type list and the attrs rules are part of the
// REST contract (shared API.md, "Events").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace herald::stream {

// The event types. The numeric values are a durable format (event_codec.h and
// the serialised features store them): append new types at the end, never
// renumber or reuse a value.
enum class EventType : std::uint8_t {
  // lifecycle
  kRegister = 0,
  // behaviour
  kAppOpen = 1,
  kRead = 2,
  kPay = 3,
  kShare = 4,
  kFollow = 5,
  kUnfollow = 6,
  kLocation = 7,
  // push outcomes
  kSent = 8,
  kDelivered = 9,
  kOpened = 10,
  kClicked = 11,
  kConverted = 12,
  kDismissed = 13,
  kNotInterested = 14,
  kComplaint = 15,
  // lifecycle
  kUninstall = 16,
  // gateway facts: reported by herald's MQTT gateway, never ingested from outside
  kQueued = 17,    // a push was stored for offline devices
  kExpired = 18,   // a push expired before any device took it
  kRefused = 19,   // no device session subscribes to the user's topic
  kOnline = 20,    // a device connected
  kOffline = 21,   // a device disconnected
};
constexpr std::size_t kEventTypeCount = 22;

// The wire name of a type, e.g. "not_interested". Every value below
// kEventTypeCount has one; other values give "unknown".
std::string_view EventTypeName(EventType type);
// The type named `name` (exact, case-sensitive), or nullopt.
std::optional<EventType> ParseEventType(std::string_view name);

// Behaviour: app_open, read, pay, share, follow, unfollow, location.
bool IsBehaviour(EventType type);
// Gateway facts: queued, expired, refused, online, offline. Only herald's own
// gateway reports them; the parser refuses them from clients.
bool IsGatewayFact(EventType type);
// Activity: the user doing something in the app. Behaviour plus the push
// outcomes that mean the user engaged with a push (opened, clicked, converted).
// Activity feeds last_active, the hour-of-week profile and sessions.
bool IsActivity(EventType type);

// Limits of the attrs object, enforced by the parser and by Validate().
constexpr std::size_t kMaxAttrsBytes = 4096;  // compact JSON text
constexpr int kMaxAttrsDepth = 8;             // attrs itself is depth 1
constexpr std::size_t kMaxItemBytes = 256;    // attrs.item
constexpr std::size_t kMaxTagBytes = 64;      // each of attrs.tags, attrs.category
constexpr std::size_t kMaxTags = 16;          // attrs.tags entries
// Event time must fall in [kMinEventTime, kMaxEventTime): 2000-01-01 .. 2100-01-01
// UTC. This keeps local day numbers in 16 bits (features.h) and catches
// milliseconds sent where seconds were meant.
constexpr Micros kMinEventTime = 946'684'800LL * kMicrosPerSecond;
constexpr Micros kMaxEventTime = 4'102'444'800LL * kMicrosPerSecond;

struct Event {
  std::string tenant;
  std::string user_id;
  EventType type = EventType::kAppOpen;
  Micros ts = 0;  // event time, microseconds since the Unix epoch (UTC)
  // Optional ids; empty means absent.
  std::string account_id;
  std::string message_id;
  std::string campaign_id;
  // The attrs object as compact JSON ("{...}", no insignificant whitespace);
  // empty means no attrs were given (the same as "{}").
  std::string attrs;

  // Fields extracted from attrs that the pipeline reads, so that nothing
  // downstream re-parses JSON. They always agree with `attrs`.
  std::optional<double> lat;      // attrs.lat (location)
  std::optional<double> lng;      // attrs.lng (location)
  std::string item;               // attrs.item (read); empty if absent
  std::vector<std::string> tags;  // attrs.tags, then attrs.category if given
  // The location as a grid cell (an S2 cell id of about 500 m), set in place of
  // lat/lng by the ingest privacy transform before the event reaches the log;
  // attrs then holds "cell" (the cell's token) and no coordinates. 0: none.
  std::uint64_t cell = 0;

  bool operator==(const Event&) const = default;
};

// Ok when `event` satisfies the schema; otherwise InvalidArgument whose message
// names the field, e.g. "attrs.lat must be a number between -90 and 90".
// Checks: tenant, user_id and the optional ids with ValidateId (at most 128
// bytes); the type is a known one; ts in [kMinEventTime, kMaxEventTime); attrs
// size; location needs attrs.lat and attrs.lng in range; read needs attrs.item;
// item and tag sizes. JSON-level rules (attrs is an object, no unknown
// top-level fields) are the parser's, since an Event can no longer break them.
Status Validate(const Event& event);

// Rewrites an event on its way into the log (Pipeline::Ingest), before it is
// encoded: the profile module's privacy transform turns coordinates into a grid
// cell and item ids into keyed hashes, so that neither reaches the disk.
// Called on ingest threads: Apply must be thread-safe.
class EventTransform {
 public:
  virtual ~EventTransform() = default;
  virtual void Apply(Event& event) const = 0;
};

}  // namespace herald::stream
