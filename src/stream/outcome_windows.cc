#include "stream/outcome_windows.h"

#include <cctz/time_zone.h>

#include "core/bytes.h"

namespace herald::stream {
namespace {

// Until user classes exist (the profile module), every user is in class "all".
constexpr std::string_view kAllUsers = "all";

void PutCounts(ByteWriter& w, const OutcomeCounts& c) {
  w.Varint(c.sent);
  w.Varint(c.delivered);
  w.Varint(c.opened);
  w.Varint(c.converted);
}

bool ReadCounts(ByteReader& r, OutcomeCounts* c) {
  return r.Varint(&c->sent) && r.Varint(&c->delivered) && r.Varint(&c->opened) &&
         r.Varint(&c->converted);
}

// tenant \0 class [\0 ...]: splits off the first two NUL-terminated parts.
bool SplitNames(std::string_view* s, std::string* tenant, std::string* cls, bool need_tail) {
  size_t a = s->find('\0');
  if (a == std::string_view::npos) return false;
  *tenant = std::string(s->substr(0, a));
  s->remove_prefix(a + 1);
  if (!need_tail) {
    *cls = std::string(*s);
    s->remove_prefix(s->size());
    return true;
  }
  size_t b = s->find('\0');
  if (b == std::string_view::npos) return false;
  *cls = std::string(s->substr(0, b));
  s->remove_prefix(b + 1);
  return true;
}

std::string HourKey(std::string_view tenant, std::string_view cls) {
  std::string k(tenant);
  k.push_back('\0');
  k.append(cls);
  return k;
}

}  // namespace

std::string EncodeWindowKey(const WindowRow& row) {
  std::string k = HourKey(row.tenant, row.user_class);
  k.push_back('\0');
  ByteWriter w(&k);
  w.Byte(row.size == kMicrosPerHour ? 1 : 0);
  w.FixedBE(static_cast<std::uint64_t>(row.start));
  return k;
}

bool DecodeWindowKey(std::string_view s, WindowRow* row) {
  if (!SplitNames(&s, &row->tenant, &row->user_class, true)) return false;
  ByteReader r(s);
  std::uint8_t size;
  std::uint64_t start;
  if (!r.Byte(&size) || size > 1 || !r.FixedBE(&start) || !r.done()) return false;
  row->size = size ? kMicrosPerHour : kMicrosPerMinute;
  row->start = static_cast<Micros>(start);
  return true;
}

std::string EncodeCounts(const OutcomeCounts& c) {
  std::string out;
  ByteWriter w(&out);
  PutCounts(w, c);
  return out;
}

std::string EncodeHourCounts(const std::array<OutcomeCounts, 24>& c) {
  std::string out;
  ByteWriter w(&out);
  for (const auto& h : c) PutCounts(w, h);
  return out;
}

Status OutcomeWindows::Load(StateReader& reader) {
  Status bad;
  // Hour rows start with 0xff, which no tenant id does; window rows with a tenant.
  HERALD_RETURN_IF_ERROR(reader.Scan("", [&](std::string_view suffix, std::string_view value) {
    ByteReader r(value);
    if (!suffix.empty() && static_cast<unsigned char>(suffix[0]) == 0xff) {
      WindowCounts::HourRow row;
      std::string_view names = suffix.substr(1);
      if (!SplitNames(&names, &row.tenant, &row.user_class, false)) {
        bad = Status::Corruption("outcome hour counts: malformed key");
        return false;
      }
      for (auto& h : row.counts) {
        if (!ReadCounts(r, &h)) break;
      }
      if (!r.done()) {
        bad = Status::Corruption("outcome hour counts: malformed record");
        return false;
      }
      counts_.Restore(row);
      return true;
    }
    WindowRow row;
    if (!DecodeWindowKey(suffix, &row) || !ReadCounts(r, &row.counts) || !r.done()) {
      bad = Status::Corruption("outcome window: malformed record");
      return false;
    }
    counts_.Restore(row);
    return true;
  }));
  return bad;
}

void OutcomeWindows::OnEvent(AppliedEvent& e) {
  auto local = cctz::convert(
      std::chrono::system_clock::time_point(std::chrono::microseconds(e.event.ts)), *e.user.tz);
  static const std::string kAll(kAllUsers);
  counts_.Add(e.event, kAll, local.hour(), e.watermark);
  if (!e.user.user_class.empty()) {
    counts_.Add(e.event, std::string(e.user.user_class), local.hour(), e.watermark);
  }
}

void OutcomeWindows::Checkpoint(CheckpointWriter& w) {
  WindowCounts::Changes c = counts_.TakeChanges();
  for (const auto& row : c.expired) w.Delete(EncodeWindowKey(row));
  for (const auto& row : c.windows) w.Put(EncodeWindowKey(row), EncodeCounts(row.counts));
  for (const auto& row : c.hours) {
    std::string key(1, '\xff');
    key += HourKey(row.tenant, row.user_class);
    w.Put(key, EncodeHourCounts(row.counts));
  }
}

}  // namespace herald::stream
