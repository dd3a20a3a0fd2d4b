#include "stream/stream_config.h"

namespace herald::stream {

config::Section<StreamConfig> StreamConfigSection() {
  using C = StreamConfig;
  config::Section<C> s("stream", "The event pipeline: ingest, per-partition state, checkpoints.");
  s.Uint("allowed_lateness_s", &C::allowed_lateness_s, 0, 30ull * 86400,
         "Events later than their partition's latest event time minus this are applied to\n"
         "no state (they stay in the log and are counted as late).");
  s.Uint("max_batch_events", &C::max_batch_events, 1, 10'000'000,
         "Most events accepted in one POST /v1/events batch or one Kafka record.");
  s.Uint("checkpoint_interval_ms", &C::checkpoint_interval_ms, 10, 86'400'000,
         "Clock time between two checkpoints of a partition (its states and the log offset\n"
         "they reflect). A virtual clock moved by twice this or more checkpoints every\n"
         "partition once.");
  s.Uint("max_hot_users", &C::max_hot_users, 1, 1'000'000'000,
         "Users whose features are kept in memory; beyond it, checkpointed users are\n"
         "evicted and reloaded from the store when next used.");
  s.Uint("idempotency_ttl_s", &C::idempotency_ttl_s, 60, 30ull * 86400,
         "How long an Idempotency-Key of POST /v1/events is remembered: a retry within it\n"
         "applies each event of the batch exactly once.");
  return s;
}

}  // namespace herald::stream
