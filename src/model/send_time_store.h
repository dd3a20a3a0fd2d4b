// SendTimeStore: the send-time model's evidence of one partition's users, a
// PartitionState (stream/partition_state.h), learned online from their events.
//
// Every activity event (app_open, read, pay, share, follow, unfollow, location,
// opened, clicked, converted) marks its local hour in the user's current local
// day; when a later day begins, the finished day is added to the user's
// evidence and to the partition's population (users hash evenly over
// partitions, so a partition's population stands for everyone's). Events of days
// already finished are not applied.
//
// Records in the state family, tag kSendTime:
//   tenant \0 user_id -> u8 version 1 | varint days[2] | varint near[2][24] |
//                        u16 open day | u8 kind | u32 hours
//   \0 "population"   -> the same, for the population
//   \0 "group" \0 tenant \0 class -> the same, for a group: the tenant's users of
//                      a class (the pipeline's classifier), the level between the
//                      user and the population
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "model/send_time.h"
#include "stream/partition_state.h"

namespace herald::model {

class SendTimeStore final : public stream::PartitionState {
 public:
  SendTimeStore(store::Db* db, store::ColumnFamily cf, PartitionId p, size_t max_hot_users);

  // The user's evidence including the day in progress, or nullopt when the user
  // has none (or the store cannot be read: *failure).
  std::optional<SendTimeUser> Find(std::string_view tenant, std::string_view user_id, Status* failure = nullptr);
  // The evidence of the tenant's users of a class (null when none yet), for
  // SendTimeUser::group.
  const SendTimeUser* Group(std::string_view tenant, std::string_view user_class) const;
  // The model with this partition's population.
  const SendTimeModel& model() const { return model_; }

  Status Load(stream::StateReader& reader) override;
  void OnEvent(stream::AppliedEvent& e) override;
  void Checkpoint(stream::CheckpointWriter& writer) override;
  void OnCheckpointed() override;

  struct Entry {
    SendTimeUser stats;
    std::uint16_t day = 0;   // local day in progress (days since 1999-12-27), 0 = none
    std::uint8_t kind = 0;
    std::uint32_t hours = 0;
    bool dirty = false;
    std::string group;  // tenant \0 class of the day in progress (not stored)
  };
  static std::string Encode(const Entry& e);
  static Result<Entry> Decode(std::string_view bytes);

 private:
  Entry* Lookup(bool create, Status* failure, bool known_new = false);
  void Close(Entry& e);

  store::Db* db_;
  store::ColumnFamily cf_;
  PartitionId partition_;
  size_t max_hot_users_;
  SendTimeModel model_;
  Entry population_;  // its `stats` are the population's, kept in model_ too
  bool population_dirty_ = false;
  std::unordered_map<std::string, Entry> users_;
  std::unordered_map<std::string, Entry> groups_;  // tenant \0 class
  std::vector<std::string> dirty_groups_;
  std::vector<std::string> dirty_;
  std::string key_;
};

}  // namespace herald::model
