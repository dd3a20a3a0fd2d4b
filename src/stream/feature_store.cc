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

FeatureStore::Entry* FeatureStore::Lookup(bool create) {
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
    log::Error("features read failed", {{"partition", partition_}, {"error", f.status()}});
  }
  store_key_[2] = static_cast<char>(store::StateTag::kUser);
  auto u = db_->Get(cf_, store_key_);
  if (u.ok() && u->has_value()) {
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

const cctz::time_zone& FeatureStore::ZoneOf(std::string_view tenant, std::string_view user_id) {
  BuildKey(tenant, user_id);
  Entry* e = Lookup(false);
  return e ? *e->tz : UtcTimeZone();
}

void FeatureStore::SetZone(std::string_view tenant, std::string_view user_id,
                           const cctz::time_zone* tz) {
  BuildKey(tenant, user_id);
  if (auto it = users_.find(std::string_view(key_)); it != users_.end()) it->second.tz = tz;
}

Status FeatureStore::Load(StateReader&) {
  return Status::Ok();  // users load lazily, on first use
}

void FeatureStore::OnEvent(AppliedEvent& e) {
  BuildKey(e.event.tenant, e.event.user_id);
  Entry& u = *Lookup(true);
  Apply(u.features, e.event, *u.tz);
  u.exists = true;
  if (!u.dirty) {
    u.dirty = true;
    dirty_.push_back(key_);
  }
  e.user.tz = u.tz;
  e.user.features = &u.features;
}

void FeatureStore::Checkpoint(CheckpointWriter& w) {
  for (const std::string& key : dirty_) {
    auto it = users_.find(key);
    if (it == users_.end()) continue;
    w.Put(key, Serialize(it->second.features));
    it->second.dirty = false;
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
