// Messages: what a push says, as a campaign or POST /v1/push gives it, its
// templates, and the JSON payload a device receives over MQTT (docs/payloads.md).
//
//   {"form":"text","title":"Hi {{user.name}}","body":"...","ttl_s":86400,
//    "priority":"normal|high|transactional","urgent":false,"collapse_key":"..",
//    "idempotency_key":"..","media":["https://..."],"deep_link":"app://..",
//    "vars":{"code":"42"}}
//
// Templates: {{user.id}}, {{user.name}}, {{user.profile.FIELD}} (FIELD one of the
// profile's text fields and age), {{vars.KEY}} for a KEY of the message's vars.
// An unknown variable is refused when the message is parsed; a known one the
// user lacks renders as "".
//
// Pure: no I/O, thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace herald::engine {

enum class Form : std::uint8_t { kText, kImageText, kVideo, kMiniProgram, kServiceCard };
const char* FormName(Form f);

inline constexpr size_t kMaxTitleBytes = 256;
inline constexpr size_t kMaxBodyBytes = 8192;
inline constexpr size_t kMaxMedia = 9;
inline constexpr size_t kMaxVars = 32;
inline constexpr std::uint64_t kDefaultTtlS = 86400;
inline constexpr std::uint64_t kMaxTtlS = 30ull * 86400;

struct Message {
  Form form = Form::kText;
  std::string title, body, deep_link, collapse_key, idempotency_key;
  std::vector<std::string> media;
  std::map<std::string, std::string> vars;
  std::uint64_t ttl_s = kDefaultTtlS;
  std::string priority = "normal";  // normal, high, transactional
  bool urgent = false;
  bool transactional() const { return priority == "transactional"; }
};

// Parses and checks `m` (a JSON object); errors name the field under `where`
// ("message.ttl_s: must be an integer between 1 and 2592000").
Result<Message> ParseMessage(const nlohmann::json& m, const std::string& where = "message");

// Looks a template variable up for one user ("user.name", "user.profile.city",
// "vars.code" are resolved by the caller); false: the user has no value.
using Lookup = std::function<bool(std::string_view name, std::string* out)>;
// Renders `text`, replacing each {{name}} with lookup(name) ("" when absent).
std::string Render(std::string_view text, const Message& m, const Lookup& user);

// What the device receives, as JSON (docs/payloads.md).
struct PayloadIds {
  std::string message_id, campaign_id, account_id;
  bool folded = false;  // shown in the folded entry (service accounts)
  Micros expires_at = 0;
};
std::string Payload(const Message& m, std::string_view title, std::string_view body, const PayloadIds& ids);

// The push's policy-relevant attrs for its `sent` event (policy::ParsePushAttrs
// reads them back): priority, urgent, expires_at, collapse_key, idempotency_key,
// form.
std::string SentAttrs(const Message& m, Micros expires_at);

}  // namespace herald::engine
