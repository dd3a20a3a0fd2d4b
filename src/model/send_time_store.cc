#include "model/send_time_store.h"

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include "core/bytes.h"
#include "core/log.h"
#include "stream/features.h"
#include "stream/timezones.h"

namespace herald::model {
namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::string_view kPopulationKey("\0population", 11);
constexpr std::string_view kGroupPrefix("\0group\0", 7);
const cctz::civil_day kDayZero(1999, 12, 27);

}  // namespace

SendTimeStore::SendTimeStore(store::Db* db, store::ColumnFamily cf, PartitionId p, size_t max_hot_users)
    : db_(db), cf_(cf), partition_(p), max_hot_users_(max_hot_users) {}

std::string SendTimeStore::Encode(const Entry& e) {
  std::string out;
  ByteWriter w(&out);
  w.Byte(kVersion);
  for (int k = 0; k < kDayKinds; ++k) w.Varint(e.stats.days[k]);
  for (int k = 0; k < kDayKinds; ++k) {
    for (int h = 0; h < 24; ++h) w.Varint(e.stats.near[k][h]);
  }
  w.Fixed<std::uint16_t>(e.day);
  w.Byte(e.kind);
  w.Fixed<std::uint32_t>(e.hours);
  return out;
}

Result<SendTimeStore::Entry> SendTimeStore::Decode(std::string_view bytes) {
  ByteReader r(bytes);
  std::uint8_t version = 0;
  if (!r.Byte(&version) || version != kVersion) return Status::Corruption("send-time record: unknown version");
  Entry e;
  bool ok = true;
  for (int k = 0; k < kDayKinds; ++k) ok = ok && r.Uint(&e.stats.days[k]);
  for (int k = 0; k < kDayKinds; ++k) {
    for (int h = 0; h < 24; ++h) ok = ok && r.Uint(&e.stats.near[k][h]);
  }
  ok = ok && r.Fixed(&e.day) && r.Byte(&e.kind) && r.Fixed(&e.hours);
  if (!ok || !r.done() || e.kind >= kDayKinds) return Status::Corruption("send-time record: malformed");
  return e;
}

SendTimeStore::Entry* SendTimeStore::Lookup(bool create, Status* failure, bool known_new) {
  if (auto it = users_.find(key_); it != users_.end()) return &it->second;
  if (known_new) return &users_.emplace(key_, Entry{}).first->second;  // nothing stored yet
  auto v = db_->Get(cf_, store::PartitionKey(partition_, store::StateTag::kSendTime, key_));
  if (!v.ok()) {
    if (failure) *failure = v.status();
    return nullptr;
  }
  Entry e;
  bool found = false;
  if (v->has_value()) {
    auto d = Decode(**v);
    if (d.ok()) {
      e = *d;
      found = true;
    } else {
      log::Error("unreadable send-time record; the user starts over", {{"partition", partition_}});
    }
  }
  if (!found && !create) return nullptr;
  return &users_.emplace(key_, e).first->second;
}

void SendTimeStore::Close(Entry& e) {
  if (!e.day) return;
  model_.AddDay(e.stats, e.kind, e.hours);
  model_.AddPopulationDay(e.kind, e.hours);
  model_.AddDay(population_.stats, e.kind, e.hours);
  population_dirty_ = true;
  if (!e.group.empty()) {
    Entry& g = groups_[e.group];
    model_.AddDay(g.stats, e.kind, e.hours);
    if (!g.dirty) {
      g.dirty = true;
      dirty_groups_.push_back(e.group);
    }
  }
  e.hours = 0;
}

void SendTimeStore::OnEvent(stream::AppliedEvent& ae) {
  if (!stream::IsActivity(ae.event.type)) return;
  key_.assign(ae.event.tenant);
  key_.push_back('\0');
  key_.append(ae.event.user_id);
  // A user whose first event this is has no record to read.
  bool first = false;
  if (const stream::UserFeatures* f = ae.user.features; f && f->first_event == ae.event.ts) {
    std::uint64_t events = 0;
    for (std::uint32_t n : f->events_total) events += n;
    first = events == 1;
  }
  Entry* found = Lookup(true, &ae.failure, first);
  if (!found) return;
  Entry& e = *found;
  const cctz::time_zone& tz = ae.user.tz ? *ae.user.tz : stream::UtcTimeZone();
  using Seconds = std::chrono::time_point<std::chrono::system_clock, cctz::seconds>;
  const cctz::civil_second cs = cctz::convert(Seconds(cctz::seconds(ae.event.ts / kMicrosPerSecond)), tz);
  const cctz::civil_day civil(cs);
  const auto day = static_cast<std::uint16_t>(civil - kDayZero);
  if (e.day && day < e.day) return;  // a day already counted
  if (day != e.day) {
    Close(e);
    e.day = day;
    e.kind = static_cast<int>(cctz::get_weekday(civil)) >= 5 ? 1 : 0;
  }
  if (e.group.empty() || e.hours == 0) {
    // The user's group for the day, classified once a user-day.
    const std::string_view cls = ae.UserClass();
    e.group.clear();
    if (!cls.empty()) {
      e.group.assign(ae.event.tenant);
      e.group.push_back('\0');
      e.group.append(cls);
    }
  }
  e.hours |= 1u << cs.hour();
  if (!e.dirty) {
    e.dirty = true;
    dirty_.push_back(key_);
  }
}

std::optional<SendTimeUser> SendTimeStore::Find(std::string_view tenant, std::string_view user_id, Status* failure) {
  key_.assign(tenant);
  key_.push_back('\0');
  key_.append(user_id);
  Entry* e = Lookup(false, failure);
  if (!e) return std::nullopt;
  SendTimeUser s = e->stats;
  if (e->day && e->hours) model_.AddDay(s, e->kind, e->hours);  // the day so far counts too
  return s;
}

const SendTimeUser* SendTimeStore::Group(std::string_view tenant, std::string_view user_class) const {
  std::string k(tenant);
  k.push_back('\0');
  k.append(user_class);
  auto it = groups_.find(k);
  return it == groups_.end() ? nullptr : &it->second.stats;
}

Status SendTimeStore::Load(stream::StateReader& reader) {
  Status scanned = reader.Scan(kGroupPrefix, [&](std::string_view suffix, std::string_view value) {
    auto d = Decode(value);
    if (d.ok()) groups_[std::string(suffix.substr(kGroupPrefix.size()))] = *d;
    return true;
  });
  if (!scanned.ok()) return scanned;
  auto v = reader.Get(kPopulationKey);
  if (!v.ok()) return v.status();
  if (v->has_value()) {
    auto d = Decode(**v);
    if (!d.ok()) return Status::Corruption("send-time population: " + d.status().message());
    population_ = *d;
    model_.SetPopulation(population_.stats);  // the population's evidence, restored
  }
  return Status::Ok();
}

void SendTimeStore::Checkpoint(stream::CheckpointWriter& w) {
  for (const std::string& k : dirty_) {
    auto it = users_.find(k);
    if (it == users_.end()) continue;
    w.Put(k, Encode(it->second));
    it->second.dirty = false;
  }
  dirty_.clear();
  if (population_dirty_) {
    w.Put(kPopulationKey, Encode(population_));
    population_dirty_ = false;
  }
  for (const std::string& k : dirty_groups_) {
    Entry& g = groups_[k];
    std::string key(kGroupPrefix);
    key += k;
    w.Put(key, Encode(g));
    g.dirty = false;
  }
  dirty_groups_.clear();
}

void SendTimeStore::OnCheckpointed() {
  for (auto it = users_.begin(); it != users_.end() && users_.size() > max_hot_users_;) {
    if (it->second.dirty) {
      ++it;
      continue;
    }
    it = users_.erase(it);
  }
}

}  // namespace herald::model
