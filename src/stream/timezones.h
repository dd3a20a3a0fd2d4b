// Users' time zones: IANA names ("Asia/Shanghai") to cctz zones, loaded once.
//
// Loading a zone reads and parses a tzfile under /usr/share/zoneinfo, which is
// far too slow for the per-event path, so every zone is loaded at most once per
// process and kept for the life of the process (there are only a few hundred).
// The returned references and pointers stay valid until the process exits.
//
// Thread-safe: every function may be called from any thread. Lookups of a zone
// already loaded take a shared lock only.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace cctz {
class time_zone;
}

namespace herald::stream {

// The zone named `name`. InvalidArgument ("unknown time zone \"Mars/Base\"")
// when the name is not an IANA zone name or no such zone is installed. Names
// are checked before they reach the file system: 1..64 bytes of letters,
// digits, '_', '-', '+' and '/', without "." components, no leading '/'.
Result<const cctz::time_zone*> FindTimeZone(std::string_view name);

// True when FindTimeZone(name) succeeds.
bool ValidTimeZone(std::string_view name);

// The zone named `name`, or UTC when `name` is empty or unknown (users without
// a known zone are bucketed in UTC).
const cctz::time_zone& TimeZoneOrUtc(std::string_view name);

// UTC.
const cctz::time_zone& UtcTimeZone();

// The IANA name of a zone ("UTC" for UTC).
std::string ZoneName(const cctz::time_zone& tz);

}  // namespace herald::stream
