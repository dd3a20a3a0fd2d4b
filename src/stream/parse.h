// Parsing event batches: the body of POST /v1/events.
//
// A body is either one JSON array of event objects or NDJSON (one event object
// per line). Each event is read independently: a valid event is accepted even
// when others in the same body are rejected, and each rejected one is reported
// with its index and a reason that names the field. Parsing uses simdjson's DOM
// API (which picks the SIMD kernel for the CPU at run time), behind this header.
//
// Rules beyond stream::Validate() (event.h):
//   - The top level of an event is an object holding only tenant, user_id, type,
//     ts, account_id, message_id, campaign_id and attrs; any other field, or one
//     given twice, rejects the event.
//   - user_id, type and ts are required (DESIGN.md: only the ids and attrs are
//     optional). ts is either an ISO-8601 string with a zone or unix seconds (a
//     number, fractions allowed). Event time is what features are computed in,
//     so it is never guessed from the time of receipt.
//   - tenant comes from the caller (the authenticated key). A tenant field in the
//     body must equal it.
//   - The optional ids and attrs may be null, which means absent. attrs must be an
//     object; it is kept as compact JSON (Event::attrs), and attrs.lat, attrs.lng
//     (numbers), attrs.item, attrs.category (strings) and attrs.tags (array of
//     strings) must have those types whatever the event type.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "stream/event.h"

namespace herald::stream {

enum class BatchFormat {
  kJsonArray,  // [ {...}, {...} ]; index = position in the array, from 0
  kNdjson,     // one object per line; index = line number, from 0 (see below)
};

// Default cap on the events in one body.
constexpr std::size_t kDefaultMaxBatchEvents = 10000;

struct Rejected {
  std::size_t index = 0;
  std::string error;  // e.g. "attrs.lat must be a number between -90 and 90"

  bool operator==(const Rejected&) const = default;
};

struct ParsedBatch {
  // Set when the body as a whole is refused (then `events` and `rejected` are
  // empty), with the reason: a JSON array body that is not valid JSON ("invalid
  // JSON at byte 812: expected ',' or '}'"), a body that is not an array, or
  // more than max_events events ("a batch may hold at most 10000 events").
  std::optional<std::string> fatal;
  std::vector<Event> events;       // accepted, in body order, each passing Validate()
  std::vector<Rejected> rejected;  // in body order
};

// Parses `body`. Every accepted event gets `tenant`.
// NDJSON: lines end with "\n" (a trailing "\r" is dropped); a line of only
// whitespace is skipped but still counted, so indexes are line numbers; a line
// that is not valid JSON is rejected as "invalid JSON at byte N: reason", N
// counted from the start of the line. At most `max_events` events (non-blank
// lines, array elements) per body.
// Thread-safe: each thread parses with its own (reused) simdjson parser.
ParsedBatch ParseEvents(std::string_view body, BatchFormat format, std::string_view tenant,
                        std::size_t max_events = kDefaultMaxBatchEvents);

// Parses one event object (e.g. a receipt turned into an event by the caller)
// under the same rules. InvalidArgument with the same messages on failure.
Result<Event> ParseEvent(std::string_view json, std::string_view tenant);

}  // namespace herald::stream
