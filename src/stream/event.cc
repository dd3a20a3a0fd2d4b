#include "stream/event.h"

#include <array>
#include <cmath>

#include "core/ids.h"

namespace herald::stream {
namespace {

// Indexed by the numeric value of EventType.
constexpr std::array<std::string_view, kEventTypeCount> kTypeNames = {
    "register",  "app_open",  "read",           "pay",       "share",     "follow",
    "unfollow",  "location",  "sent",           "delivered", "opened",    "clicked",
    "converted", "dismissed", "not_interested", "complaint", "uninstall", "queued",
    "expired",   "refused",   "online",         "offline",
};

Status Invalid(std::string message) {
  return Status::InvalidArgument(std::move(message));
}

Status ValidateOptionalId(std::string_view field, const std::string& id) {
  return id.empty() ? Status::Ok() : ValidateId(field, id);
}

Status ValidateCoordinate(std::string_view field, const std::optional<double>& v, double limit) {
  if (!v) {
    return Invalid(std::string(field) + " is required for a location event");
  }
  if (!std::isfinite(*v) || *v < -limit || *v > limit) {
    return Invalid(std::string(field) + " must be a number between -" +
                   std::to_string(static_cast<int>(limit)) + " and " +
                   std::to_string(static_cast<int>(limit)));
  }
  return Status::Ok();
}

Status ValidateAttrs(const Event& e) {
  if (e.attrs.size() > kMaxAttrsBytes) {
    return Invalid("attrs is longer than " + std::to_string(kMaxAttrsBytes) + " bytes");
  }
  if (!e.attrs.empty() && (e.attrs.front() != '{' || e.attrs.back() != '}')) {
    return Invalid("attrs must be an object");
  }
  if (e.type == EventType::kLocation && !e.cell) {  // a cell stands for the coordinates
    HERALD_RETURN_IF_ERROR(ValidateCoordinate("attrs.lat", e.lat, 90));
    HERALD_RETURN_IF_ERROR(ValidateCoordinate("attrs.lng", e.lng, 180));
  }
  if (e.type == EventType::kRead && e.item.empty()) {
    return Invalid("attrs.item is required for a read event");
  }
  if (e.item.size() > kMaxItemBytes) {
    return Invalid("attrs.item is longer than " + std::to_string(kMaxItemBytes) + " bytes");
  }
  if (e.tags.size() > kMaxTags + 1) {  // + attrs.category
    return Invalid("attrs.tags has more than " + std::to_string(kMaxTags) + " entries");
  }
  for (const std::string& tag : e.tags) {
    if (tag.empty() || tag.size() > kMaxTagBytes) {
      return Invalid("attrs.tags entries must be 1.." + std::to_string(kMaxTagBytes) + " bytes");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view EventTypeName(EventType type) {
  auto i = static_cast<std::size_t>(type);
  return i < kEventTypeCount ? kTypeNames[i] : std::string_view("unknown");
}

std::optional<EventType> ParseEventType(std::string_view name) {
  for (std::size_t i = 0; i < kEventTypeCount; ++i) {
    if (kTypeNames[i] == name) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

bool IsBehaviour(EventType type) {
  return type >= EventType::kAppOpen && type <= EventType::kLocation;
}

bool IsGatewayFact(EventType type) {
  return type >= EventType::kQueued && type <= EventType::kOffline;
}

bool IsActivity(EventType type) {
  return IsBehaviour(type) || type == EventType::kOpened || type == EventType::kClicked ||
         type == EventType::kConverted;
}

Status Validate(const Event& e) {
  HERALD_RETURN_IF_ERROR(ValidateId("tenant", e.tenant));
  HERALD_RETURN_IF_ERROR(ValidateId("user_id", e.user_id));
  if (static_cast<std::size_t>(e.type) >= kEventTypeCount) {
    return Invalid("type " + std::to_string(static_cast<int>(e.type)) + " is not an event type");
  }
  if (e.ts < kMinEventTime || e.ts >= kMaxEventTime) {
    return Invalid("ts must be between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z");
  }
  HERALD_RETURN_IF_ERROR(ValidateOptionalId("account_id", e.account_id));
  HERALD_RETURN_IF_ERROR(ValidateOptionalId("message_id", e.message_id));
  HERALD_RETURN_IF_ERROR(ValidateOptionalId("campaign_id", e.campaign_id));
  return ValidateAttrs(e);
}

}  // namespace herald::stream
