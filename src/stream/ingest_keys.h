// IngestKeys: the idempotency keys of one partition — which keyed ingests have
// their events in this partition's log — until they expire. A partition state
// (partition_state.h) fed by the ingest marks in the log (event_codec.h), so it
// is exactly as durable as the events themselves and is rebuilt by replay.
//
// Records, in the state family under kIngestKeys (store/keys.h):
//   tenant \0 key -> u8 version (1) | zigzag expires_at (micros) | str digest
//
// Lives on the partition's shard.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "stream/event_codec.h"
#include "stream/partition_state.h"

namespace herald::stream {

class IngestKeys final : public PartitionState {
 public:
  struct Entry {
    Micros expires_at = 0;
    std::string digest;
  };
  // Keys expire `ttl` after the append of their mark, on `clock`.
  IngestKeys(const Clock& clock, Micros ttl) : clock_(clock), ttl_(ttl) {}

  // The key's entry if its mark is in this partition and has not expired.
  const Entry* Find(std::string_view tenant, std::string_view key) const;
  // A mark appended at `appended_at` was applied.
  void OnMark(const IngestMark& mark, Micros appended_at);
  size_t size() const { return keys_.size(); }

  Status Load(StateReader& reader) override;
  void OnEvent(AppliedEvent&) override {}
  // Writes new keys and deletes the ones expired by now.
  void Checkpoint(CheckpointWriter& writer) override;

 private:
  static std::string KeyOf(std::string_view tenant, std::string_view key);

  const Clock& clock_;
  Micros ttl_;
  std::unordered_map<std::string, Entry> keys_;
  std::vector<std::string> added_;
};

}  // namespace herald::stream
