// FeatureStore: the per-user features of one partition, the first state of every
// partition (see partition_state.h).
//
// Users are kept in memory while hot (L1) and loaded from the store on first use
// (the RocksDB block cache and disk are L2 and L3). Applying an event creates the
// user; reading never does, so reads of unknown ids cost no memory. Above
// `max_hot_users`, users whose features are already checkpointed are evicted
// after each checkpoint and come back through the store when next used.
//
// Records, in the state family (store/keys.h):
//   kFeatures  tenant \0 user_id -> Serialize(UserFeatures)   (features_codec.cc)
//   kUser      tenant \0 user_id -> u8 version (1) | string tz name
//
// Lives on the partition's shard.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "stream/event_codec.h"
#include "stream/features.h"
#include "stream/partition_state.h"

namespace herald {
class Gauge;
}

namespace herald::stream {

// The kUser record: the user's time zone name (empty: UTC).
std::string EncodeUserRecord(std::string_view tz_name);
Result<std::string> DecodeUserRecord(std::string_view bytes);

class FeatureStore final : public PartitionState {
 public:
  FeatureStore(store::Db* db, store::ColumnFamily cf, PartitionId p, size_t max_hot_users,
               Gauge* hot_users);
  ~FeatureStore() override;

  // The user's features, from memory or the store; null when the user has none
  // (no event was ever applied). Never creates an entry for an unknown user. The
  // pointer is valid until the next event or checkpoint of this partition.
  const UserFeatures* Find(std::string_view tenant, std::string_view user_id);
  // True when the user has features or a user record (a zone from POST /v1/users).
  bool Known(std::string_view tenant, std::string_view user_id);
  // The user's time zone, or UTC when none is set.
  const cctz::time_zone& ZoneOf(std::string_view tenant, std::string_view user_id);
  // Applies a user update from the log: the user's zone (creating the user's
  // entry); written with the next checkpoint.
  void Apply(const UserUpdate& update);
  size_t hot_users() const { return users_.size(); }

  Status Load(StateReader& reader) override;
  void OnEvent(AppliedEvent& e) override;
  void Checkpoint(CheckpointWriter& writer) override;
  void OnCheckpointed() override;

 private:
  struct Entry {
    UserFeatures features;
    UserSlots slots;  // the states' own row numbers for this user (UserView::slots)
    const cctz::time_zone* tz = nullptr;
    bool exists = false;      // has features (applied or loaded)
    bool dirty = false;       // changed since the last checkpoint
    bool zone_dirty = false;  // its zone changed since the last checkpoint
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  // key_ = tenant \0 user_id
  void BuildKey(std::string_view tenant, std::string_view user_id);
  // The entry of key_, loading it from the store; null when neither features nor
  // a user record exist and `create` is false, or when the store cannot be read
  // (then *failure says why).
  Entry* Lookup(bool create, Status* failure = nullptr);
  void MarkDirty(Entry& e);

  store::Db* db_;
  store::ColumnFamily cf_;
  PartitionId partition_;
  size_t max_hot_users_;
  Gauge* hot_users_;
  std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>> users_;
  std::vector<std::string> dirty_;  // keys of entries with dirty == true
  std::string key_;                 // reused lookup key
  std::string store_key_;           // reused store key
};

}  // namespace herald::stream
