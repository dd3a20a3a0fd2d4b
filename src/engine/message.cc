#include "engine/message.h"

#include <nlohmann/json.hpp>

#include "core/time_format.h"
#include "stream/json_text.h"

namespace herald::engine {

namespace {

using json = nlohmann::json;

constexpr const char* kForms[] = {"text", "image_text", "video", "mini_program", "service_card"};
constexpr const char* kProfileFields[] = {"name",   "age", "gender", "region",    "city",
                                          "language", "device", "os", "occupation"};

Status Bad(const std::string& field, const std::string& why) {
  return Status::InvalidArgument(field + ": " + why);
}

// The variables of `text`, each checked: "at most N bytes", "{{...}} not closed",
// "unknown template variable {{x}}".
Status CheckTemplate(std::string_view text, const std::map<std::string, std::string>& vars,
                     const std::string& field) {
  for (size_t i = text.find("{{"); i != std::string_view::npos; i = text.find("{{", i)) {
    const size_t end = text.find("}}", i + 2);
    if (end == std::string_view::npos) return Bad(field, "a template variable {{ is not closed");
    std::string_view name = text.substr(i + 2, end - i - 2);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    bool known = name == "user.id" || name == "user.name";
    if (name.starts_with("user.profile.")) {
      for (const char* f : kProfileFields) known |= name.substr(13) == f;
    }
    if (name.starts_with("vars.")) known = vars.count(std::string(name.substr(5))) > 0;
    if (!known) {
      return Bad(field, "unknown template variable {{" + std::string(name) +
                            "}} (user.id, user.name, user.profile.FIELD, vars.KEY of message.vars)");
    }
    i = end + 2;
  }
  return Status::Ok();
}

}  // namespace

const char* FormName(Form f) { return kForms[static_cast<size_t>(f)]; }

Result<Message> ParseMessage(const json& m, const std::string& where) {
  if (!m.is_object()) return Bad(where, "must be an object");
  Message out;
  auto field = [&](const char* k) { return where + "." + k; };
  auto text = [&](const char* k, std::string* to, size_t max) -> Status {
    auto it = m.find(k);
    if (it == m.end()) return Status::Ok();
    if (!it->is_string()) return Bad(field(k), "must be a string");
    const std::string& s = it->get_ref<const std::string&>();
    if (s.size() > max) return Bad(field(k), "must be at most " + std::to_string(max) + " bytes");
    *to = s;
    return Status::Ok();
  };
  for (const auto& [k, v] : m.items()) {
    static const char* kKnown[] = {"form",  "title", "body",     "media",        "deep_link",       "vars",
                                   "ttl_s", "priority", "urgent", "collapse_key", "idempotency_key"};
    bool known = false;
    for (const char* x : kKnown) known |= k == x;
    if (!known) return Bad(where + "." + k, "unknown field");
  }
  if (auto it = m.find("form"); it != m.end()) {
    bool ok = false;
    for (size_t i = 0; it->is_string() && i < std::size(kForms); ++i) {
      if (*it == kForms[i]) {
        out.form = static_cast<Form>(i);
        ok = true;
      }
    }
    if (!ok) return Bad(field("form"), "must be one of text, image_text, video, mini_program, service_card");
  }
  HERALD_RETURN_IF_ERROR(text("title", &out.title, kMaxTitleBytes));
  HERALD_RETURN_IF_ERROR(text("body", &out.body, kMaxBodyBytes));
  HERALD_RETURN_IF_ERROR(text("deep_link", &out.deep_link, 2048));
  HERALD_RETURN_IF_ERROR(text("collapse_key", &out.collapse_key, 128));
  HERALD_RETURN_IF_ERROR(text("idempotency_key", &out.idempotency_key, 128));
  if (out.title.empty() && out.body.empty()) return Bad(field("title"), "a message needs a title or a body");
  if (auto it = m.find("media"); it != m.end()) {
    if (!it->is_array() || it->size() > kMaxMedia) return Bad(field("media"), "must be an array of at most 9 URLs");
    for (const auto& u : *it) {
      if (!u.is_string() || u.get_ref<const std::string&>().empty() || u.get_ref<const std::string&>().size() > 2048) {
        return Bad(field("media"), "must be an array of URLs (1 to 2048 bytes)");
      }
      out.media.push_back(u.get<std::string>());
    }
  }
  if (auto it = m.find("vars"); it != m.end()) {
    if (!it->is_object() || it->size() > kMaxVars) return Bad(field("vars"), "must be an object of at most 32 strings");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string() || v.get_ref<const std::string&>().size() > 1024 || k.empty() || k.size() > 64) {
        return Bad(field("vars") + "." + k, "must be a string of at most 1024 bytes");
      }
      out.vars[k] = v.get<std::string>();
    }
  }
  if (auto it = m.find("ttl_s"); it != m.end()) {
    if (!it->is_number_integer() || it->get<long long>() < 1 || it->get<long long>() > static_cast<long long>(kMaxTtlS)) {
      return Bad(field("ttl_s"), "must be an integer between 1 and 2592000");
    }
    out.ttl_s = it->get<std::uint64_t>();
  }
  if (auto it = m.find("priority"); it != m.end()) {
    if (!it->is_string() || (*it != "normal" && *it != "high" && *it != "transactional")) {
      return Bad(field("priority"), "must be \"normal\", \"high\" or \"transactional\"");
    }
    out.priority = it->get<std::string>();
  }
  if (auto it = m.find("urgent"); it != m.end()) {
    if (!it->is_boolean()) return Bad(field("urgent"), "must be true or false");
    out.urgent = it->get<bool>();
  }
  HERALD_RETURN_IF_ERROR(CheckTemplate(out.title, out.vars, field("title")));
  HERALD_RETURN_IF_ERROR(CheckTemplate(out.body, out.vars, field("body")));
  return out;
}

std::string Render(std::string_view text, const Message& m, const Lookup& user) {
  std::string out;
  size_t at = 0;
  for (size_t i = text.find("{{"); i != std::string_view::npos; i = text.find("{{", at)) {
    const size_t end = text.find("}}", i + 2);
    if (end == std::string_view::npos) break;
    out.append(text.substr(at, i - at));
    std::string_view name = text.substr(i + 2, end - i - 2);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    std::string value;
    if (name.starts_with("vars.")) {
      auto it = m.vars.find(std::string(name.substr(5)));
      if (it != m.vars.end()) value = it->second;
    } else if (user) {
      user(name, &value);
    }
    out += value;
    at = end + 2;
  }
  out.append(text.substr(at));
  return out;
}

namespace {

// Compact JSON objects written field by field (no document is built).
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string* out) : out_(out) { out_->push_back('{'); }
  std::string* Key(std::string_view k) {
    if (out_->size() > 1) out_->push_back(',');
    stream::json::AppendString(out_, k);
    out_->push_back(':');
    return out_;
  }
  void String(std::string_view k, std::string_view v) { stream::json::AppendString(Key(k), v); }
  void Raw(std::string_view k, std::string_view v) { Key(k)->append(v); }
  void Close() { out_->push_back('}'); }

 private:
  std::string* out_;
};

}  // namespace

std::string Payload(const Message& m, std::string_view title, std::string_view body, const PayloadIds& ids) {
  std::string out;
  out.reserve(160 + title.size() + body.size() + m.deep_link.size() + m.media.size() * 64);
  ObjectWriter w(&out);
  w.String("id", ids.message_id);
  if (ids.campaign_id.empty()) {
    w.Raw("campaign_id", "null");
  } else {
    w.String("campaign_id", ids.campaign_id);
  }
  w.String("account_id", ids.account_id);
  w.String("form", FormName(m.form));
  w.String("title", title);
  w.String("body", body);
  w.String("expires_at", FormatIsoTime(ids.expires_at));
  if (!m.media.empty()) {
    std::string* o = w.Key("media");
    o->push_back('[');
    for (size_t i = 0; i < m.media.size(); ++i) {
      if (i) o->push_back(',');
      stream::json::AppendString(o, m.media[i]);
    }
    o->push_back(']');
  }
  if (!m.deep_link.empty()) w.String("deep_link", m.deep_link);
  if (!m.collapse_key.empty()) w.String("collapse_key", m.collapse_key);
  if (ids.folded) w.Raw("folded", "true");
  if (m.priority != "normal") w.String("priority", m.priority);
  w.Close();
  return out;
}

std::string SentAttrs(const Message& m, Micros expires_at) {
  std::string out;
  ObjectWriter w(&out);
  w.String("form", FormName(m.form));
  w.String("priority", m.priority);
  w.Raw("expires_at", std::to_string(expires_at / kMicrosPerSecond));
  if (m.urgent) w.Raw("urgent", "true");
  if (!m.collapse_key.empty()) w.String("collapse_key", m.collapse_key);
  if (!m.idempotency_key.empty()) w.String("idempotency_key", m.idempotency_key);
  w.Close();
  return out;
}

}  // namespace herald::engine
