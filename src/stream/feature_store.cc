#include "stream/feature_store.h"

#include "core/bytes.h"
#include "core/log.h"
#include "core/metrics.h"
#include "stream/timezones.h"

namespace herald::stream {
namespace {

constexpr std::uint8_t kUserRecordVersion = 1;

}  // namespace

std::string EncodeUserRecord(std::string_view tz_name) {
  std::string out;
  ByteWriter w(&out);
  w.Byte(kUserRecordVersion);
  w.String(tz_name);
  return out;
}

Result<std::string> DecodeUserRecord(std::string_view bytes) {
  ByteReader r(bytes);
  std::uint8_t version;
  std::string tz;
  if (!r.Byte(&version)) return Status::Corruption("user record: empty");
  if (version != kUserRecordVersion) {
    return Status::Corruption("user record: unknown version " + std::to_string(version));
  }
  if (!r.String(&tz) || !r.done()) return Status::Corruption("user record: malformed");
  return tz;
}

FeatureStore::FeatureStore(store::Db* db, store::ColumnFamily cf, PartitionId p,
                           size_t max_hot_users, Gauge* hot_users)
    : db_(db), cf_(cf), partition_(p), max_hot_users_(max_hot_users), hot_users_(hot_users) {}

FeatureStore::~FeatureStore() {
  if (hot_users_) hot_users_->Add(-static_cast<std::int64_t>(users_.size()));
}

void FeatureStore::BuildKey(std::string_view tenant, std::string_view user_id) {
  key_.assign(tenant);
  key_.push_back('\0');
  key_.append(user_id);
}

FeatureStore::Entry* FeatureStore::Lookup(bool create, Status* failure) {
  if (auto it = users_.find(std::string_view(key_)); it != users_.end()) return &it->second;
  // Cold path: the features and the time zone from the store.
  Entry loaded;
  loaded.tz = &UtcTimeZone();
  bool found = false;
  store_key_ = store::PartitionTagPrefix(partition_, store::StateTag::kFeatures);
  store_key_.append(key_);
  auto f = db_->Get(cf_, store_key_);
  if (f.ok() && f->has_value()) {
    auto parsed = Deserialize(**f);
    if (parsed.ok()) {
      loaded.features = *parsed;
      loaded.exists = true;
      found = true;
    } else {
      log::Error("unreadable features record; the user starts over",
                 {{"partition", partition_}, {"error", parsed.status()}});
    }
  } else if (!f.ok()) {
    // Never start the user over from nothing: the next checkpoint would replace
    // what the store holds.
    log::Error("features read failed", {{"partition", partition_}, {"error", f.status()}});
    if (failure) *failure = f.status();
    return nullptr;
  }
  store_key_[2] = static_cast<char>(store::StateTag::kUser);
  auto u = db_->Get(cf_, store_key_);
  if (!u.ok()) {
    if (failure) *failure = u.status();
    return nullptr;
  }
  if (u->has_value()) {
    auto tz = DecodeUserRecord(**u);
    if (tz.ok()) {
      loaded.tz = &TimeZoneOrUtc(*tz);
      found = true;
    }
  }
  if (!found && !create) return nullptr;
  if (hot_users_) hot_users_->Add(1);
  return &users_.try_emplace(key_, loaded).first->second;
}

const UserFeatures* FeatureStore::Find(std::string_view tenant, std::string_view user_id) {
  BuildKey(tenant, user_id);
  Entry* e = Lookup(false);
  return e && e->exists ? &e->features : nullptr;
}

bool FeatureStore::Known(std::string_view tenant, std::string_view user_id) {
  BuildKey(tenant, user_id);
  return Lookup(false) != nullptr;
}

const cctz::time_zone& FeatureStore::ZoneOf(std::string_view tenant, std::string_view user_id) {
  BuildKey(tenant, user_id);
  Entry* e = Lookup(false);
  return e ? *e->tz : UtcTimeZone();
}

void FeatureStore::MarkDirty(Entry& e) {
  if (e.dirty) return;
  e.dirty = true;
  dirty_.push_back(key_);
}

void FeatureStore::Apply(const UserUpdate& update) {
  if (!update.tz) return;
  BuildKey(update.tenant, update.user_id);
  Status failure;
  Entry* e = Lookup(true, &failure);
  if (!e) return;  // logged; the zone stays as stored
  e->tz = &TimeZoneOrUtc(*update.tz);
  e->zone_dirty = true;
  MarkDirty(*e);
}

Status FeatureStore::Load(StateReader&) {
  return Status::Ok();  // users load lazily, on first use
}

void FeatureStore::OnEvent(AppliedEvent& e) {
  BuildKey(e.event.tenant, e.event.user_id);
  Entry* found = Lookup(true, &e.failure);
  if (!found) return;  // the store cannot be read: the pipeline stops the partition
  Entry& u = *found;
  stream::Apply(u.features, e.event, *u.tz);
  u.exists = true;
  MarkDirty(u);
  e.user.tz = u.tz;
  e.user.features = &u.features;
  e.user.slots = &u.slots;
}

void FeatureStore::Checkpoint(CheckpointWriter& w) {
  CheckpointWriter zones = w.For(store::StateTag::kUser);
  for (const std::string& key : dirty_) {
    auto it = users_.find(key);
    if (it == users_.end()) continue;
    Entry& e = it->second;
    if (e.exists) w.Put(key, Serialize(e.features));
    if (e.zone_dirty) zones.Put(key, EncodeUserRecord(ZoneName(*e.tz)));
    e.dirty = false;
    e.zone_dirty = false;
  }
  dirty_.clear();
}

void FeatureStore::OnCheckpointed() {
  // Everything not dirty is in the store, so evicted users come back through it.
  for (auto it = users_.begin(); it != users_.end() && users_.size() > max_hot_users_;) {
    if (it->second.dirty) {
      ++it;
      continue;
    }
    it = users_.erase(it);
    if (hot_users_) hot_users_->Add(-1);
  }
}

}  // namespace herald::stream
