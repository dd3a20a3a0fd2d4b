#include "node/kafka_bridge.h"

#include "core/log.h"
#include "stream/parse.h"

namespace herald::node {

Result<std::unique_ptr<KafkaBridge>> KafkaBridge::Start(const eventlog::KafkaConfig& config, size_t max_batch_events,
                                                       stream::Pipeline* pipeline,
                                                       MetricsRegistry* metrics) {
  eventlog::KafkaSourceOptions o;
  o.brokers = config.brokers;
  o.topic = config.topic;
  o.group = config.group;
  o.metrics = metrics;
  o.on_error = [](const Status& s) { log::Warn("kafka", {{"error", s}}); };
  o.extra.emplace_back("session.timeout.ms", std::to_string(config.session_timeout_ms));
  o.extra.emplace_back("heartbeat.interval.ms",
                       std::to_string(std::max<std::uint64_t>(config.session_timeout_ms / 5, 100)));
  const size_t max_events = max_batch_events;
  Counter* invalid = &metrics->GetCounter("herald_kafka_invalid_events_total",
                                          "Kafka records that were not valid events.");
  auto handler = [pipeline, invalid, max_events](std::vector<eventlog::KafkaRecord> batch,
                                     std::function<void(Status)> done) {
    std::vector<stream::Event> events;
    for (const auto& r : batch) {
      // A record carries no tenant: events from Kafka belong to the default tenant
      // unless the event itself names one in attrs (not supported yet).
      auto parsed =
          stream::ParseEvents(r.payload, stream::BatchFormat::kNdjson, "default", max_events);
      if (parsed.fatal || !parsed.rejected.empty()) {
        invalid->Inc(parsed.rejected.size() + (parsed.fatal ? 1 : 0));
        log::Warn("invalid events in a kafka record",
                  {{"partition", r.partition},
                   {"offset", static_cast<std::int64_t>(r.offset)},
                   {"error", parsed.fatal ? *parsed.fatal : parsed.rejected[0].error}});
      }
      for (auto& e : parsed.events) events.push_back(std::move(e));
    }
    pipeline->Ingest(std::move(events), std::move(done));
  };
  auto source = eventlog::KafkaSource::Start(o, handler);
  if (!source.ok()) return source.status();
  auto bridge = std::make_unique<KafkaBridge>();
  bridge->source_ = std::move(*source);
  return bridge;
}

void KafkaBridge::Stop() {
  if (source_) source_->Stop();
}

}  // namespace herald::node
