// The store's settings: [store].
#pragma once

#include <cstdint>

#include "core/config.h"

namespace herald::store {

struct StoreConfig {
  SyncMode sync = SyncMode::kProcess;
  std::uint64_t block_cache_mb = 256;
  std::uint64_t write_buffer_mb = 64;
  unsigned max_batch_ops = 4096;
};

config::Section<StoreConfig> StoreConfigSection();

}  // namespace herald::store
