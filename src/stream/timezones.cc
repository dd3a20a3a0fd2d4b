#include "stream/timezones.h"

#include <cctz/time_zone.h>

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace herald::stream {
namespace {

// Unknown names are remembered too, so that a client repeating a bad name does
// not make us touch the file system each time; this bounds how many.
constexpr std::size_t kMaxUnknownNames = 1024;

bool PlausibleName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '/' || name.back() == '/') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '+' || c == '/';
    if (!ok) return false;
  }
  // "localtime" is a cctz alias for the host's zone, not an IANA zone.
  return name != "localtime" && name.find("//") == std::string_view::npos;
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class TimeZoneCache {
 public:
  // Null when `name` is not a loadable zone.
  const cctz::time_zone* Find(std::string_view name) {
    {
      std::shared_lock<std::shared_mutex> l(mu_);
      auto it = zones_.find(name);
      if (it != zones_.end()) return it->second.get();
    }
    if (!PlausibleName(name)) return nullptr;
    auto zone = std::make_unique<cctz::time_zone>();
    bool loaded = cctz::load_time_zone(std::string(name), zone.get());
    std::unique_lock<std::shared_mutex> l(mu_);
    auto it = zones_.find(name);
    if (it != zones_.end()) return it->second.get();  // another thread won the race
    if (!loaded) {
      if (unknown_ < kMaxUnknownNames) {
        ++unknown_;
        zones_.emplace(std::string(name), nullptr);
      }
      return nullptr;
    }
    return zones_.emplace(std::string(name), std::move(zone)).first->second.get();
  }

 private:
  std::shared_mutex mu_;
  // GUARDED_BY(mu_). Null values are names known not to load. Entries are never
  // erased, so the zones' addresses are stable.
  std::unordered_map<std::string, std::unique_ptr<cctz::time_zone>, StringHash, std::equal_to<>>
      zones_;
  std::size_t unknown_ = 0;  // GUARDED_BY(mu_)
};

TimeZoneCache& Cache() {
  static auto* cache = new TimeZoneCache;  // never destroyed: zones outlive every user
  return *cache;
}

}  // namespace

Result<const cctz::time_zone*> FindTimeZone(std::string_view name) {
  const cctz::time_zone* zone = Cache().Find(name);
  if (zone == nullptr) {
    return Status::InvalidArgument("unknown time zone \"" + std::string(name.substr(0, 64)) + "\"");
  }
  return zone;
}

bool ValidTimeZone(std::string_view name) {
  return Cache().Find(name) != nullptr;
}

const cctz::time_zone& TimeZoneOrUtc(std::string_view name) {
  if (!name.empty()) {
    if (const cctz::time_zone* zone = Cache().Find(name)) return *zone;
  }
  return UtcTimeZone();
}

const cctz::time_zone& UtcTimeZone() {
  static const auto* utc = new cctz::time_zone(cctz::utc_time_zone());
  return *utc;
}

std::string ZoneName(const cctz::time_zone& tz) { return tz.name(); }

}  // namespace herald::stream
