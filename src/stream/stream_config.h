// The event pipeline's settings: [stream].
#pragma once

#include <cstdint>

#include "core/config.h"

namespace herald::stream {

struct StreamConfig {
  std::uint64_t allowed_lateness_s = 600;
  std::uint64_t max_batch_events = 100000;
  std::uint64_t checkpoint_interval_ms = 10000;
  std::uint64_t max_hot_users = 1'000'000;
  std::uint64_t idempotency_ttl_s = 86400;
};

config::Section<StreamConfig> StreamConfigSection();

}  // namespace herald::stream
