#include "stream/parse.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/time_format.h"
#include "stream/json_text.h"

namespace herald::stream {
namespace {

namespace dom = simdjson::dom;
using simdjson::error_code;

// Reads one event from a parsed (hence valid) JSON value, and keeps the first
// schema error. Parsing with the DOM API validates the whole text up front, and
// picks the fastest SIMD kernel for the CPU at run time.
class EventReader {
 public:
  explicit EventReader(std::string_view tenant) : tenant_(tenant) {}

  // Fills `*out`; returns the first schema error, or an empty string.
  std::string Read(dom::element v, Event* out);

 private:
  // Field bits for duplicate detection.
  enum : unsigned {
    kUser = 1,
    kType = 2,
    kTs = 4,
    kAccount = 8,
    kMessage = 16,
    kCampaign = 32,
    kAttrs = 64,
    kTenant = 128,
    kLat = 256,
    kLng = 512,
    kItem = 1024,
    kTags = 2048,
    kCategory = 4096,
  };

  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }
  bool Seen(unsigned bit, std::string_view name);
  void Field(std::string_view key, dom::element v);
  bool String(dom::element v, std::string_view field, std::string* out);
  void Ts(dom::element v);
  void Attrs(dom::element v);
  void AttrsField(std::string_view key, dom::element v);
  void Tags(dom::element v);
  void Copy(dom::element v, int depth);
  void Finish();

  std::string_view tenant_;
  Event* ev_ = nullptr;
  unsigned seen_ = 0;
  bool has_user_ = false;
  bool has_type_ = false;
  bool has_ts_ = false;
  std::string category_;
  std::string error_;
};

std::string EventReader::Read(dom::element v, Event* out) {
  ev_ = out;
  dom::object obj;
  if (v.get(obj)) return "event must be a JSON object";
  for (dom::key_value_pair field : obj) Field(field.key, field.value);
  Finish();
  return std::move(error_);
}

// True (and a schema error) when the field was already given.
bool EventReader::Seen(unsigned bit, std::string_view name) {
  if (seen_ & bit) {
    Fail("duplicate field \"" + std::string(name) + "\"");
    return true;
  }
  seen_ |= bit;
  return false;
}

void EventReader::Field(std::string_view key, dom::element v) {
  if (key == "user_id") {
    if (!Seen(kUser, key)) has_user_ = String(v, key, &ev_->user_id);
  } else if (key == "type") {
    std::string name;
    if (Seen(kType, key) || !String(v, key, &name)) return;
    if (auto t = ParseEventType(name); t && IsGatewayFact(*t)) {
      Fail("type \"" + name + "\" is reported by herald's gateway and cannot be ingested");
    } else if (t) {
      ev_->type = *t;
      has_type_ = true;
    } else {
      Fail("type \"" + name.substr(0, 64) + "\" is not an event type");
    }
  } else if (key == "ts") {
    if (!Seen(kTs, key)) Ts(v);
  } else if (key == "attrs") {
    if (!Seen(kAttrs, key)) Attrs(v);
  } else if (key == "account_id") {
    if (!Seen(kAccount, key)) String(v, key, &ev_->account_id);
  } else if (key == "message_id") {
    if (!Seen(kMessage, key)) String(v, key, &ev_->message_id);
  } else if (key == "campaign_id") {
    if (!Seen(kCampaign, key)) String(v, key, &ev_->campaign_id);
  } else if (key == "tenant") {
    std::string tenant;
    if (!Seen(kTenant, key) && String(v, key, &tenant) && tenant != tenant_) {
      Fail("tenant \"" + tenant.substr(0, 128) + "\" does not match the authenticated tenant");
    }
  } else {
    Fail("unknown field \"" + std::string(key.substr(0, 64)) + "\"");
  }
}

// A string field; null means absent. Returns true when a string was read.
bool EventReader::String(dom::element v, std::string_view field, std::string* out) {
  std::string_view s;
  if (!v.get(s)) {
    out->assign(s);
    return true;
  }
  if (!v.is_null()) Fail(std::string(field) + " must be a string");
  return false;
}

void EventReader::Ts(dom::element v) {
  std::string_view text;
  double seconds;
  if (!v.get(text)) {
    Result<Micros> t = ParseIsoTime(text);
    if (!t.ok()) return Fail("ts: " + t.status().message());
    ev_->ts = *t;
    has_ts_ = true;
  } else if (!v.get(seconds)) {
    if (!(seconds >= kMinEventTime / 1e6 && seconds < kMaxEventTime / 1e6)) {
      return Fail("ts must be between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z");
    }
    ev_->ts = std::llround(seconds * 1e6);
    has_ts_ = true;
  } else if (!v.is_null()) {
    Fail("ts must be an ISO-8601 string with a zone or unix seconds");
  }
}

void EventReader::Attrs(dom::element v) {
  dom::object obj;
  if (v.get(obj)) {
    if (!v.is_null()) Fail("attrs must be an object");
    return;
  }
  std::string& out = ev_->attrs;
  out.push_back('{');
  for (dom::key_value_pair field : obj) {
    if (out.size() > 1) out.push_back(',');
    json::AppendString(&out, field.key);
    out.push_back(':');
    AttrsField(field.key, field.value);
  }
  out.push_back('}');
  if (!category_.empty() &&
      std::find(ev_->tags.begin(), ev_->tags.end(), category_) == ev_->tags.end()) {
    ev_->tags.push_back(category_);
  }
}

// One attrs member: copied to Event::attrs, and extracted when it is a known one.
void EventReader::AttrsField(std::string_view key, dom::element v) {
  if (key == "lat" || key == "lng") {
    const bool is_lat = key == "lat";
    const std::string field = is_lat ? "attrs.lat" : "attrs.lng";
    double d;
    if (v.get(d)) {
      Fail(field + " must be a number");
    } else if (!Seen(is_lat ? kLat : kLng, field)) {
      (is_lat ? ev_->lat : ev_->lng) = d;
    }
  } else if (key == "item" || key == "category") {
    const bool item = key == "item";
    const std::string field = item ? "attrs.item" : "attrs.category";
    std::string_view s;
    if (v.get(s)) {
      Fail(field + " must be a string");
    } else if (!Seen(item ? kItem : kCategory, field)) {
      (item ? ev_->item : category_).assign(s);
    }
  } else if (key == "tags") {
    if (!Seen(kTags, "attrs.tags")) Tags(v);
  }
  Copy(v, 2);
}

void EventReader::Tags(dom::element v) {
  dom::array arr;
  if (v.get(arr)) return Fail("attrs.tags must be an array of strings");
  for (dom::element element : arr) {
    std::string_view tag;
    if (element.get(tag)) return Fail("attrs.tags must be an array of strings");
    if (ev_->tags.size() == kMaxTags) {
      return Fail("attrs.tags has more than " + std::to_string(kMaxTags) + " entries");
    }
    ev_->tags.emplace_back(tag);
  }
}

// Appends `v` to Event::attrs as compact JSON. `depth` is its nesting level in
// the event (attrs members are at 2).
void EventReader::Copy(dom::element v, int depth) {
  std::string* out = &ev_->attrs;
  switch (v.type()) {
    case dom::element_type::OBJECT: {
      if (depth > kMaxAttrsDepth) {
        return Fail("attrs nests deeper than " + std::to_string(kMaxAttrsDepth) + " levels");
      }
      out->push_back('{');
      bool first = true;
      for (dom::key_value_pair field : dom::object(v)) {
        if (!first) out->push_back(',');
        first = false;
        json::AppendString(out, field.key);
        out->push_back(':');
        Copy(field.value, depth + 1);
      }
      out->push_back('}');
      return;
    }
    case dom::element_type::ARRAY: {
      if (depth > kMaxAttrsDepth) {
        return Fail("attrs nests deeper than " + std::to_string(kMaxAttrsDepth) + " levels");
      }
      out->push_back('[');
      bool first = true;
      for (dom::element element : dom::array(v)) {
        if (!first) out->push_back(',');
        first = false;
        Copy(element, depth + 1);
      }
      out->push_back(']');
      return;
    }
    case dom::element_type::STRING:
      return json::AppendString(out, std::string_view(v));
    case dom::element_type::INT64:
      out->append(std::to_string(int64_t(v)));
      return;
    case dom::element_type::UINT64:
      out->append(std::to_string(uint64_t(v)));
      return;
    case dom::element_type::DOUBLE:
      return json::AppendNumber(out, double(v));
    case dom::element_type::BOOL:
      out->append(bool(v) ? "true" : "false");
      return;
    case dom::element_type::NULL_VALUE:
      out->append("null");
      return;
  }
}

void EventReader::Finish() {
  if (!has_user_) Fail("user_id is required");
  if (!has_type_) Fail("type is required");
  if (!has_ts_) Fail("ts is required");
  ev_->tenant.assign(tenant_);
  if (!error_.empty()) return;
  Status st = Validate(*ev_);
  if (!st.ok()) Fail(st.message());
}

// A simdjson parser and a padded copy of the body, reused by each thread.
struct ThreadParser {
  dom::parser parser;
  std::string buffer;

  // Copies `text` into the buffer followed by SIMDJSON_PADDING spaces and
  // returns the copy, which simdjson may then read past its end.
  std::string_view Pad(std::string_view text) {
    buffer.resize(text.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(buffer.data(), text.data(), text.size());
    std::memset(buffer.data() + text.size(), ' ', simdjson::SIMDJSON_PADDING);
    return {buffer.data(), text.size()};
  }
};

ThreadParser& LocalParser() {
  thread_local ThreadParser p;
  return p;
}

// "invalid JSON at byte N: reason", with N and the reason from our own
// validator since simdjson's errors carry no position.
std::string SyntaxMessage(std::string_view text, error_code e) {
  if (auto err = json::FindSyntaxError(text)) {
    return "invalid JSON at byte " + std::to_string(err->offset) + ": " + err->reason;
  }
  return std::string("invalid JSON: ") + simdjson::error_message(e);
}

// Parses one event document, text[0, len) with SIMDJSON_PADDING readable bytes
// after it. Returns the reason it was rejected, or an empty string.
std::string ParseDocument(dom::parser& parser, const char* text, std::size_t len,
                          std::string_view tenant, Event* ev) {
  dom::element root;
  if (error_code e = parser.parse(text, len, false).get(root)) {
    return SyntaxMessage({text, len}, e);
  }
  return EventReader(tenant).Read(root, ev);
}

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

ParsedBatch Refused(std::string why) {
  return ParsedBatch{std::move(why), {}, {}};
}

ParsedBatch TooMany(std::size_t max_events) {
  return Refused("a batch may hold at most " + std::to_string(max_events) + " events");
}

ParsedBatch ParseNdjson(std::string_view body, std::string_view tenant, std::size_t max_events) {
  ParsedBatch batch;
  const auto lines = static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n')) + 1;
  batch.events.reserve(std::min(lines, max_events));
  ThreadParser& tp = LocalParser();
  const std::string_view buf = tp.Pad(body);
  std::size_t pos = 0, line = 0, count = 0;
  while (pos < buf.size()) {
    const void* nl = std::memchr(buf.data() + pos, '\n', buf.size() - pos);
    const std::size_t end = nl ? static_cast<const char*>(nl) - buf.data() : buf.size();
    std::size_t len = end - pos;
    if (len > 0 && buf[end - 1] == '\r') --len;
    if (!IsBlank(buf.substr(pos, len))) {
      if (++count > max_events) return TooMany(max_events);
      Event ev;
      std::string error = ParseDocument(tp.parser, buf.data() + pos, len, tenant, &ev);
      if (error.empty()) {
        batch.events.push_back(std::move(ev));
      } else {
        batch.rejected.push_back({line, std::move(error)});
      }
    }
    pos = end + 1;
    ++line;
  }
  return batch;
}

ParsedBatch ParseArray(std::string_view body, std::string_view tenant, std::size_t max_events) {
  ThreadParser& tp = LocalParser();
  const std::string_view buf = tp.Pad(body);
  dom::element root;
  if (error_code e = tp.parser.parse(buf.data(), buf.size(), false).get(root)) {
    return Refused(SyntaxMessage(body, e));
  }
  dom::array events;
  if (root.get(events)) return Refused("the body must be a JSON array of events");
  if (events.size() > max_events) return TooMany(max_events);
  ParsedBatch batch;
  batch.events.reserve(events.size());
  std::size_t index = 0;
  for (dom::element element : events) {
    Event ev;
    std::string error = EventReader(tenant).Read(element, &ev);
    if (error.empty()) {
      batch.events.push_back(std::move(ev));
    } else {
      batch.rejected.push_back({index, std::move(error)});
    }
    ++index;
  }
  return batch;
}

}  // namespace

ParsedBatch ParseEvents(std::string_view body, BatchFormat format, std::string_view tenant,
                        std::size_t max_events) {
  return format == BatchFormat::kNdjson ? ParseNdjson(body, tenant, max_events)
                                        : ParseArray(body, tenant, max_events);
}

Result<Event> ParseEvent(std::string_view json, std::string_view tenant) {
  ThreadParser& tp = LocalParser();
  const std::string_view buf = tp.Pad(json);
  Event ev;
  std::string error = ParseDocument(tp.parser, buf.data(), buf.size(), tenant, &ev);
  if (!error.empty()) return Status::InvalidArgument(std::move(error));
  return ev;
}

}  // namespace herald::stream
