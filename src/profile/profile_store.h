// ProfileStore: the profiles of one partition's users, in columns, as a
// partition state (stream/partition_state.h).
//
// Each user is one row. The four dimensions of the profile live in compact
// columns, every user of the partition in memory, so that a segment expression
// is evaluated as a few scans of arrays (a bitmap per predicate), not a lookup
// per user:
//   - basic attributes: age, gender, region, city, language, device, os and
//     occupation (dictionary codes), the name, registered_at;
//   - behaviour, from the stream features after each event: last active, the
//     decayed activity and its night share, lifetime reads, pays, shares,
//     conversions and activity events, and the tenant's ltv;
//   - interest tags: the features' top 8, each as its share (0..1) of the
//     user's decayed interest weight;
//   - social relations: friend count, groups (with the group features the
//     tenant sends) and follows (posting lists by account and by group).
// The latest location is a level-14 grid cell (profile/privacy.h); no answer
// ever shows it.
//
// The class (profile/classes.h) is kept per row with the time until which it
// holds; it is recomputed when the row changes or that time passes.
//
// Records, in the state family (store/keys.h):
//   kProfile          tenant \0 user -> attributes (EncodeAttributes)
//   kProfileActivity  tenant \0 user -> behaviour, tags and cell
//   kProfileFollow    tenant \0 user \0 u64BE KeyOf(account) -> ""
// Load reads them all: profiles are never evicted (see docs/benchmarks.md for
// what a row costs).
//
// Lives on the partition's shard.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "profile/classes.h"
#include "profile/segment.h"
#include "stream/event_codec.h"
#include "stream/partition_state.h"

namespace herald::profile {

// The fields of the profile object (POST /v1/users), as the log carries them.
struct ProfilePatch {
  enum Field : std::uint8_t {
    kName = 0, kAge, kGender, kRegion, kCity, kLanguage, kDevice, kOs, kOccupation,
    kRegisteredAt, kLtv, kFriends, kGroups, kGroupFeatures, kFieldCount
  };
  std::uint32_t given = 0;    // bit per field: present in the patch
  std::uint32_t cleared = 0;  // bit per field: given as null
  std::string name, gender, region, city, language, device, os, occupation;
  int age = -1;
  Micros registered_at = 0;
  double ltv = 0;
  std::uint32_t friends = 0;
  std::vector<std::string> groups;
  std::vector<std::pair<std::string, double>> group_features;

  bool Has(Field f) const { return given & (1u << f); }
};
std::string EncodePatch(const ProfilePatch& p);
Status DecodePatch(std::string_view bytes, ProfilePatch* p);

// Limits of the profile object.
inline constexpr size_t kMaxTextBytes = 128;
inline constexpr size_t kMaxGroups = 32;
inline constexpr size_t kMaxGroupFeatures = 16;

// Parses the POST /v1/users body {"users":[{"id","tz","profile":{...}}]} of
// `tenant` into user updates (stream::UserUpdate with the encoded patch).
// InvalidArgument naming the field ("users[3].profile.age: ...") for anything
// malformed, unknown or out of range; nothing is returned then.
Result<std::vector<stream::UserUpdate>> ParseUsers(std::string_view body, std::string_view tenant,
                                                   size_t max_users);

// Answers follows("account") for the rows of a partition (implemented by the
// store from its posting lists; exposed for tests).
class ProfileStore final : public stream::PartitionState {
 public:
  ProfileStore(const ProfileConfig* classes, PartitionId p);
  ~ProfileStore() override;

  // Appends {"id":..,"tz":..,"class":..,"profile":{...},"behaviour":{...},
  // "interests":[...],"social":{...}} for a known user; false when unknown.
  bool UserJson(std::string_view tenant, std::string_view user, std::string_view tz, Micros now,
                std::string* out);
  // True when the user has a row (a profile or an event).
  bool Has(std::string_view tenant, std::string_view user) const;
  // The user's class at `now` (low_frequency for an unknown user).
  UserClass ClassOf(std::string_view tenant, std::string_view user, Micros now);
  // The class of the user of an event being applied, at its time.
  UserClass ClassOf(const stream::AppliedEvent& e);
  // A text field of the profile for templates ({{user.name}},
  // {{user.profile.city}}); false when the user or the field is unknown.
  bool TextField(std::string_view tenant, std::string_view user, std::string_view field,
                 std::string* out) const;

  // The rows of `tenant` that match `segment` at `now`: their count, and
  // fn(user_id) for each in row order until fn returns false.
  size_t Match(const Segment& segment, std::string_view tenant, Micros now,
               const std::function<bool(std::string_view user_id)>& fn = nullptr);
  // fn(user_id) for each of the tenant's users that follow `account`, until fn
  // returns false; their count.
  size_t ForEachFollower(std::string_view tenant, std::string_view account,
                         const std::function<bool(std::string_view user_id)>& fn);
  // Per class, the tenant's users at `now`.
  std::array<size_t, kClassCount> ClassCounts(std::string_view tenant, Micros now);

  // The row's values as a ProfileView at `now` (for the per-user evaluator and
  // tests); valid until the next change of this store.
  std::unique_ptr<ProfileView> View(std::string_view tenant, std::string_view user, Micros now);

  size_t rows() const;
  // Bytes held by this partition's columns, dictionaries and indexes.
  size_t MemoryBytes() const;

  Status Load(stream::StateReader& reader) override;
  void OnEvent(stream::AppliedEvent& e) override;
  void OnUserUpdate(const stream::UserUpdate& u, const Clock& clock) override;
  void Checkpoint(stream::CheckpointWriter& writer) override;

  struct Table;

 private:
  std::unique_ptr<Table> t_;
};

}  // namespace herald::profile
