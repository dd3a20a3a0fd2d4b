// OutcomeWindows: one partition's push outcome windows and counts by local hour
// (windows.h), as a partition state, so that they are checkpointed with the
// partition and survive restarts.
//
// Records, in the state family under kWindows (store/keys.h):
//   tenant \0 class \0 u8 size (0: minute, 1: hour) u64BE start
//       -> varint sent, delivered, opened, converted
//   0xff tenant \0 class -> 24 x (varint sent, delivered, opened, converted)
// (0xff starts no tenant id, so the two kinds never collide.) Expired windows are
// deleted by the first checkpoint after they expire.
//
// Lives on the partition's shard.
#pragma once

#include <string>
#include <string_view>

#include "stream/partition_state.h"
#include "stream/windows.h"

namespace herald::stream {

// The record encodings, exposed for the format tests.
std::string EncodeWindowKey(const WindowRow& row);
bool DecodeWindowKey(std::string_view suffix, WindowRow* row);
std::string EncodeCounts(const OutcomeCounts& c);
std::string EncodeHourCounts(const std::array<OutcomeCounts, 24>& c);

class OutcomeWindows final : public PartitionState {
 public:
  OutcomeWindows() = default;

  const WindowCounts& counts() const { return counts_; }

  Status Load(StateReader& reader) override;
  void OnEvent(AppliedEvent& e) override;
  void Checkpoint(CheckpointWriter& writer) override;

 private:
  WindowCounts counts_;
};

}  // namespace herald::stream
