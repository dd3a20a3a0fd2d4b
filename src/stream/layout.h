// The stream's records in the store: the partition checkpoint record, and the
// migration of a layout-1 data directory (store/keys.h) to the current layout.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"
#include "store/db.h"

namespace herald::stream {

// The kCheckpoint record of a partition: u8 version (1) | varint next offset to
// apply | zigzag watermark (micros, the latest event time applied).
std::string EncodeCheckpointRecord(std::uint64_t next, Micros watermark);
bool DecodeCheckpointRecord(std::string_view bytes, std::uint64_t* next, Micros* watermark);

// Rewrites the stream's layout-1 records (families "features", "users" and
// "stream_meta", keyed without a partition) as layout-2 records in the "state"
// family, then deletes the old ones. Idempotent: a migration cut short by a crash
// is finished by running it again. Families that do not exist hold nothing to
// migrate. Returns the number of records migrated. Corruption names the record
// that could not be read; nothing is deleted then.
Result<std::uint64_t> MigrateLayout1(store::Db* db, std::uint32_t partitions);

}  // namespace herald::stream
