// KafkaBridge: events from a Kafka topic into the pipeline, in cluster mode.
//
// Each record's payload is one event (JSON object) or several (NDJSON); the record
// key is ignored (the user id decides the partition). A batch's offsets are
// committed only after its events are durable in the event log. A record that is
// not a valid event is counted and skipped: replaying it would fail the same way.
#pragma once

#include <memory>

#include "log/log_config.h"
#include "core/metrics.h"
#include "log/kafka.h"
#include "stream/pipeline.h"

namespace herald::node {

class KafkaBridge {
 public:
  static Result<std::unique_ptr<KafkaBridge>> Start(const eventlog::KafkaConfig& config, size_t max_batch_events,
                                                    stream::Pipeline* pipeline,
                                                    MetricsRegistry* metrics);
  // Stops consuming; waits for outstanding batches and commits. Idempotent.
  void Stop();

 private:
  std::unique_ptr<eventlog::KafkaSource> source_;
};

}  // namespace herald::node
