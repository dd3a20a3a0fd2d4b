// Wires the gateway's reports into the event pipeline: delivery outcomes and
// device receipts become events, like any ingested behaviour.
#pragma once

#include "mqtt/delivery.h"
#include "stream/pipeline.h"

namespace herald::app {

// Lives as long as the gateway that reports to it. Thread-safe.
class PipelineEventSink final : public mqtt::EventSink {
 public:
  explicit PipelineEventSink(stream::Pipeline* pipeline) : pipeline_(pipeline) {}

  // delivered and the receipts (opened, clicked, dismissed, not_interested,
  // complaint, converted) become events; queued, expired, refused and presence are
  // gateway facts that the event schema has no type for, and are only counted.
  void OnGatewayEvent(mqtt::GatewayEvent event) override;

 private:
  stream::Pipeline* pipeline_;
};

}  // namespace herald::app
