// Serialize / Deserialize of UserFeatures: the records of the feature store.
//
// Durable format, version 2 (varint = LEB128 unsigned, zz = zigzag varint,
// fixed-width integers and floats little-endian; core/bytes.h):
//
//   u8      version (2)
//   zz      first_event, last_event, last_active, last_push, last_open,
//           session_start, session_end, decay_ref
//   varint  n event types, then events_total[n]   (n <= kEventTypeCount)
//   varint  sessions, session_seconds
//   zz      activity_exp
//   varint  unopened_evicted
//   u8      push_opened
//   varint  push_time[8], push_message[8]
//   sparse  activity[168], sent_by_hour[24], opened_by_hour[24]: a bitmap of
//           the non-zero entries (ceil(n/8) bytes, bit i%8 of byte i/8), then a
//           varint for each non-zero entry in order
//   u8      n accounts, then n x (u64 key, varint day, u8 day, u8 week, u8 month)
//   u8      n tags, then n x (u64 key, f32 weight)
//   varint  n names, then n x (u64 key, varint length, bytes)
//
// Only the occupied account and tag slots and the non-zero buckets are
// written, so a typical record is 100-300 bytes instead of the 968 in memory. The names are
// those of the written keys that this process knows; Deserialize gives them back to the name
// table. Compatibility: a new layout gets a new version byte and Deserialize keeps reading every
// older one. Version 1 was version 2 without the event type count: exactly 17 counts (the types
// before the gateway facts).
#include <limits>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "stream/features.h"
#include "stream/features_internal.h"

namespace herald::stream {
namespace {

constexpr std::uint8_t kFeaturesVersion = 2;
constexpr std::size_t kVersion1EventTypes = 17;

// The record's reader and writer (core/bytes.h); Bytes is the length-prefixed string.
class Writer : public ByteWriter {
 public:
  Writer() : ByteWriter(&buf_) {}
  void Bytes(std::string_view s) { String(s); }
  std::string Take() { return std::move(buf_); }

 private:
  std::string buf_;
};

class Reader : public ByteReader {
 public:
  using ByteReader::ByteReader;
  bool Bytes(std::string_view* s) { return String(s); }
};

void WriteSlots(const UserFeatures& f, Writer& w) {
  std::uint8_t accounts = 0, tags = 0;
  for (std::uint64_t k : f.account_key) accounts += k != 0;
  for (std::uint64_t k : f.tag_key) tags += k != 0;
  w.Byte(accounts);
  for (std::size_t i = 0; i < kTrackedAccounts; ++i) {
    if (f.account_key[i] == 0) continue;
    w.Fixed(f.account_key[i]);
    w.Varint(f.account_day[i]);
    w.Byte(f.sends_day[i]);
    w.Byte(f.sends_week[i]);
    w.Byte(f.sends_month[i]);
  }
  w.Byte(tags);
  for (std::size_t i = 0; i < kTopInterests; ++i) {
    if (f.tag_key[i] == 0) continue;
    w.Fixed(f.tag_key[i]);
    w.Fixed(f.tag_weight[i]);
  }
}

void WriteNames(const UserFeatures& f, Writer& w) {
  std::vector<std::pair<std::uint64_t, std::string>> names;
  std::string name;
  auto add = [&](std::uint64_t key) {
    if (key != 0 && internal::LookupName(key, &name)) names.emplace_back(key, name);
  };
  for (std::uint64_t k : f.account_key) add(k);
  for (std::uint64_t k : f.tag_key) add(k);
  w.Varint(names.size());
  for (const auto& [key, n] : names) {
    w.Fixed(key);
    w.Bytes(n);
  }
}

bool ReadSlots(Reader& r, UserFeatures* f) {
  std::uint8_t accounts, tags;
  if (!r.Byte(&accounts) || accounts > kTrackedAccounts) return false;
  for (std::size_t i = 0; i < accounts; ++i) {
    if (!r.Fixed(&f->account_key[i]) || f->account_key[i] == 0 || !r.Uint(&f->account_day[i]) ||
        !r.Byte(&f->sends_day[i]) || !r.Byte(&f->sends_week[i]) || !r.Byte(&f->sends_month[i])) {
      return false;
    }
  }
  if (!r.Byte(&tags) || tags > kTopInterests) return false;
  for (std::size_t i = 0; i < tags; ++i) {
    if (!r.Fixed(&f->tag_key[i]) || f->tag_key[i] == 0 || !r.Fixed(&f->tag_weight[i])) {
      return false;
    }
  }
  return true;
}

bool ReadNames(Reader& r) {
  std::uint64_t n;
  if (!r.Varint(&n) || n > kTrackedAccounts + kTopInterests) return false;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t key;
    std::string_view name;
    if (!r.Fixed(&key) || !r.Bytes(&name) || name.size() > 1024) return false;
    internal::RememberName(key, name);
  }
  return true;
}

// Mostly-zero arrays: a bitmap of the non-zero entries, then each of them.
template <std::size_t N>
void WriteSparse(Writer& w, const std::uint16_t (&a)[N]) {
  std::uint8_t bitmap[(N + 7) / 8] = {};
  for (std::size_t i = 0; i < N; ++i) {
    if (a[i]) bitmap[i / 8] = static_cast<std::uint8_t>(bitmap[i / 8] | 1u << (i % 8));
  }
  for (std::uint8_t b : bitmap) w.Byte(b);
  for (std::uint16_t v : a) {
    if (v) w.Varint(v);
  }
}

template <std::size_t N>
bool ReadSparse(Reader& r, std::uint16_t (&a)[N]) {
  std::uint8_t bitmap[(N + 7) / 8];
  for (std::uint8_t& b : bitmap) {
    if (!r.Byte(&b)) return false;
  }
  for (std::size_t i = 0; i < N; ++i) {
    if ((bitmap[i / 8] >> (i % 8) & 1) && (!r.Uint(&a[i]) || a[i] == 0)) return false;
  }
  return true;
}

template <typename T, std::size_t N>
bool ReadArray(Reader& r, T (&a)[N]) {
  for (T& v : a) {
    if (!r.Uint(&v)) return false;
  }
  return true;
}

}  // namespace

std::string Serialize(const UserFeatures& f) {
  Writer w;
  w.Byte(kFeaturesVersion);
  for (Micros t : {f.first_event, f.last_event, f.last_active, f.last_push, f.last_open,
                   f.session_start, f.session_end, f.decay_ref}) {
    w.Zigzag(t);
  }
  w.Varint(kEventTypeCount);
  for (std::uint32_t v : f.events_total) w.Varint(v);
  w.Varint(f.sessions);
  w.Varint(f.session_seconds);
  w.Zigzag(f.activity_exp);
  w.Varint(f.unopened_evicted);
  w.Byte(f.push_opened);
  for (std::uint32_t v : f.push_time) w.Varint(v);
  for (std::uint32_t v : f.push_message) w.Varint(v);
  WriteSparse(w, f.activity);
  WriteSparse(w, f.sent_by_hour);
  WriteSparse(w, f.opened_by_hour);
  WriteSlots(f, w);
  WriteNames(f, w);
  return w.Take();
}

Result<UserFeatures> Deserialize(std::string_view bytes) {
  Reader r(bytes);
  std::uint8_t version;
  if (!r.Byte(&version)) return Status::Corruption("features: empty record");
  if (version != kFeaturesVersion && version != 1) {
    return Status::Corruption("features: unknown version " + std::to_string(version));
  }
  UserFeatures f;
  bool ok = true;
  for (Micros* t : {&f.first_event, &f.last_event, &f.last_active, &f.last_push, &f.last_open,
                    &f.session_start, &f.session_end, &f.decay_ref}) {
    ok = ok && r.Zigzag(t);
  }
  std::uint64_t types = kVersion1EventTypes;
  if (version >= 2) ok = ok && r.Varint(&types) && types <= kEventTypeCount;
  for (std::uint64_t i = 0; ok && i < types; ++i) ok = r.Uint(&f.events_total[i]);
  ok = ok && r.Uint(&f.sessions) && r.Uint(&f.session_seconds) &&
       r.Zigzag(&f.activity_exp) && r.Uint(&f.unopened_evicted) && r.Byte(&f.push_opened) &&
       ReadArray(r, f.push_time) && ReadArray(r, f.push_message) && ReadSparse(r, f.activity) &&
       ReadSparse(r, f.sent_by_hour) && ReadSparse(r, f.opened_by_hour) && ReadSlots(r, &f) &&
       ReadNames(r);
  if (!ok) return Status::Corruption("features: truncated or malformed record");
  if (!r.done()) return Status::Corruption("features: trailing bytes");
  return f;
}

}  // namespace herald::stream
