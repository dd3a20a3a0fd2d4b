// ISO-8601 / RFC 3339 times on the wire.
//
// The REST contract accepts a time either as an ISO-8601 string with a zone
// ("2026-01-05T08:00:00+08:00", "2026-01-05T00:00:00Z", fractional seconds allowed)
// or as unix seconds (a number). herald always answers in UTC with a "Z" suffix.
#pragma once

#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace herald {

// Parses "YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM|±HHMM)". A time without a zone is
// rejected: "08:00" in a user's local time is a different type (see profile).
Result<Micros> ParseIsoTime(std::string_view text);

// Formats as "YYYY-MM-DDTHH:MM:SSZ", adding ".ffffff" only when t has a
// sub-second part.
std::string FormatIsoTime(Micros t);

// Days since 1970-01-01 for a proleptic Gregorian civil date, and back.
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d);
void CivilFromDays(std::int64_t days, std::int64_t* y, unsigned* m, unsigned* d);

}  // namespace herald
