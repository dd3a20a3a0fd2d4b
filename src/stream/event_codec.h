// Binary encoding of an Event: the payload of an event log record.
//
// This is a durable format: the event log keeps records for days and replays
// them after upgrades, so every later herald must decode what an earlier one
// wrote. Layout, version 2 (varint = LEB128 unsigned; str = varint length then
// the bytes):
//
//   u8      version (2; 1 is still decoded: it ends after the tags)
//   u8      type (EventType's numeric value)
//   varint  ts, zigzag-encoded microseconds since the Unix epoch
//   u8      presence flags: 0x01 account_id, 0x02 message_id, 0x04 campaign_id,
//           0x08 attrs, 0x10 lat, 0x20 lng, 0x40 item, 0x80 tags
//   str     tenant
//   str     user_id
//   str     account_id, message_id, campaign_id, attrs   (each only if flagged)
//   f64     lat, lng            (little-endian IEEE 754, each only if flagged)
//   str     item                (only if flagged)
//   varint  tag count, then str each tag   (only if flagged)
//   u8      extension flags (version 2): 0x01 cell
//   u64     cell                (little-endian, only if flagged)
//
// The fields extracted from attrs (lat, lng, item, tags) are stored next to the
// attrs text so that replay never parses JSON. Compatibility: a new version
// gets a new version byte, and DecodeEvent keeps decoding every older one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "stream/event.h"

namespace herald::stream {

constexpr std::uint8_t kEventEncodingVersion = 2;

// The other kind of log record: the mark an idempotent ingest leaves as the last
// record of its append to each partition (Pipeline::IngestOnce), so that a retry
// with the same key appends only what is not in the log yet. Layout:
//
//   u8      kIngestMarkTag (0x80; an event record starts with its version, 1)
//   str     tenant
//   str     idempotency key
//   str     digest of the request body (so a key reused for another body is caught)
constexpr std::uint8_t kIngestMarkTag = 0x80;
struct IngestMark {
  std::string tenant, key, digest;
  bool operator==(const IngestMark&) const = default;
};
void EncodeIngestMark(const IngestMark& mark, std::string* out);
// True when `payload` is an ingest mark rather than an event.
inline bool IsIngestMark(std::string_view payload) {
  return !payload.empty() && static_cast<std::uint8_t>(payload[0]) == kIngestMarkTag;
}
// Corruption when `bytes` is not exactly one mark.
Status DecodeIngestMark(std::string_view bytes, IngestMark* mark);

// The third kind: an update of a user's attributes (POST /v1/users), applied in
// log order with the user's events, so that a replay computes every local hour
// in the zone the user had at that point. Layout:
//
//   u8      kUserUpdateTag (0x81)
//   str     tenant
//   str     user_id
//   u8      fields: 0x01 tz
//   str     tz (IANA name; only with 0x01)
constexpr std::uint8_t kUserUpdateTag = 0x81;
struct UserUpdate {
  std::string tenant, user_id;
  std::optional<std::string> tz;
  // The profile fields given, encoded by the profile module (opaque here).
  std::optional<std::string> profile;
  bool operator==(const UserUpdate&) const = default;
};
void EncodeUserUpdate(const UserUpdate& update, std::string* out);
inline bool IsUserUpdate(std::string_view payload) {
  return !payload.empty() && static_cast<std::uint8_t>(payload[0]) == kUserUpdateTag;
}
Status DecodeUserUpdate(std::string_view bytes, UserUpdate* update);

// Appends the encoding of `event` to `out`. Never fails.
void EncodeEvent(const Event& event, std::string* out);
std::string EncodeEvent(const Event& event);

// Decodes one encoded event into `*event` (reusing its allocations). Corruption
// when the bytes are truncated, have trailing bytes, an unknown version or an
// unknown type; then `*event` is unspecified.
Status DecodeEvent(std::string_view bytes, Event* event);
Result<Event> DecodeEvent(std::string_view bytes);

}  // namespace herald::stream
