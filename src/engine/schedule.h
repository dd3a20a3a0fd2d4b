// The schedule: a durable timer queue per partition, in RocksDB.
//
// Entries are records of the partition's state family under kEngineSchedule,
// keyed by their due time, so that the partition's earliest entries are the
// first keys:
//   kEngineSchedule  u64BE due | message_id -> tenant, user, account, campaign
//                    (v2: then the expiry and holds of an entry held back)
// They are written (durably) when a campaign is planned and deleted once the
// push's `sent` event is durable; only the partition's timer lives in memory, so
// ten million pending entries cost disk, not memory. An entry found again after
// a crash whose push is already in the log (EngineStore has its message) is
// dropped, not sent: each entry fires once.
//
// ScheduleState is the partition state that holds the timer; Engine does the
// rest (engine.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "core/shard.h"
#include "stream/partition_state.h"

namespace herald::engine {

struct ScheduleEntry {
  Micros due = 0;
  std::string message_id, tenant, user_id, account_id, campaign_id;
  // Once held back after the policy allowed it (it lost the slot, or an ad was
  // paced): when its message expires, counted from that first firing (0: never
  // held), and how many times it was held.
  Micros expires_at = 0;
  std::uint32_t holds = 0;
};
std::string ScheduleKey(Micros due, std::string_view message_id);  // the suffix
std::string EncodeScheduleEntry(const ScheduleEntry& e);
bool DecodeScheduleEntry(std::string_view suffix, std::string_view value, ScheduleEntry* e);

class ScheduleState final : public stream::PartitionState {
 public:
  // `recovered` runs once the partition is live (it arms the timer).
  explicit ScheduleState(std::function<void(stream::Partition&)> recovered) : recovered_(std::move(recovered)) {}
  Status Load(stream::StateReader&) override { return Status::Ok(); }
  void OnEvent(stream::AppliedEvent&) override {}
  void Checkpoint(stream::CheckpointWriter&) override {}
  void OnRecovered(stream::Partition& p) override {
    recovered_at = p.clock().Now();
    if (recovered_) recovered_(p);
  }

  ShardExecutor::TimerId timer = 0;
  Micros armed = 0;                          // due time of the timer, 0: none
  bool firing = false;                       // entries are being fired: no new timer
  // Entries due by this time may have fired before a crash: they are looked up
  // in the messages before they fire. Later ones cannot have.
  Micros recovered_at = 0;
  std::unordered_set<std::string> in_flight;  // message ids fired, not yet deleted
  // Where the scans of the schedule start: every entry due before it was fired and
  // deleted, so a scan does not walk over their deletion markers.
  Micros scan_from = 0;

  // The samples' harvest (Engine::Harvest): where its scans start (every entry
  // closing before it was written), the harvests so far (every 60th scans from
  // the start, for an entry written late), and the day of the open files.
  Micros harvest_from = 0;
  std::uint64_t harvests = 0;
  std::string harvest_day;
  ShardExecutor::TimerId harvest_timer = 0;
  Micros harvest_at = 0;  // when harvest_timer fires
  bool harvest_busy = false;  // its writes are in flight: it arms itself when done

 private:
  std::function<void(stream::Partition&)> recovered_;
};

}  // namespace herald::engine
