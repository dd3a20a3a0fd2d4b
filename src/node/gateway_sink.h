// Wires the gateway's reports into the event pipeline: delivery outcomes and
// device receipts become events, like any ingested behaviour.
#pragma once

#include <string>

#include "log/kafka.h"
#include "mqtt/delivery.h"
#include "stream/pipeline.h"

namespace herald::node {

// Lives as long as the gateway that reports to it. Thread-safe.
class GatewayEventSink final : public mqtt::EventSink {
 public:
  explicit GatewayEventSink(stream::Pipeline* pipeline) : pipeline_(pipeline) {}

  // Also produce every gateway event (outcomes, presence, receipts) as JSON to
  // `topic`, keyed by user id. `sink` must outlive this object.
  void ProduceTo(eventlog::KafkaSink* sink, std::string topic) {
    kafka_ = sink;
    topic_ = std::move(topic);
  }

  // Every gateway event becomes an event of the same type in the log: delivery
  // outcomes (delivered, queued, expired, refused) with the push's message,
  // account and campaign ids, presence (online, offline) and device receipts
  // (opened, clicked, dismissed, not_interested, complaint, converted), with the
  // device in attrs.device_id.
  void OnGatewayEvent(mqtt::GatewayEvent event) override;

 private:
  stream::Pipeline* pipeline_;
  eventlog::KafkaSink* kafka_ = nullptr;
  std::string topic_;
};

}  // namespace herald::node
