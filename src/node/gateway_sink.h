// Wires the gateway's reports into the event pipeline: delivery outcomes,
// presence and device receipts become events, like any ingested behaviour.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "core/metrics.h"
#include "log/kafka.h"
#include "mqtt/delivery.h"
#include "stream/pipeline.h"

namespace herald::node {

// The gateway's loop never waits for the log: OnGatewayEvent only queues, and one
// thread of the sink hands the queue to the pipeline in batches (the pipeline's
// appends may wait for the log). Above `high_water` queued events the sink says
// so, and the gateway stops reading the devices whose receipts it is queueing
// until the queue is back below half of it. The queue is bounded at four times
// `high_water`: past that, an event that waits for an answer (a receipt) is refused
// with ResourceExhausted (the device is not acknowledged and sends it again), and
// one that does not (an outcome or presence) is dropped and counted in
// herald_gateway_events_dropped_total.
//
// Lives as long as the gateway that reports to it. Thread-safe.
class GatewayEventSink final : public mqtt::EventSink {
 public:
  explicit GatewayEventSink(stream::Pipeline* pipeline, MetricsRegistry* metrics = nullptr,
                            size_t high_water = 16384);
  ~GatewayEventSink() override;

  // Also produce every gateway event (outcomes, presence, receipts) as JSON to
  // `topic`, keyed by user id. `sink` must outlive this object. Before the
  // gateway starts.
  void ProduceTo(eventlog::KafkaSink* sink, std::string topic) {
    kafka_ = sink;
    topic_ = std::move(topic);
  }

  // Every gateway event becomes an event of the same type in the log: delivery
  // outcomes (delivered, queued, expired, refused) with the push's message,
  // account and campaign ids, presence (online, offline) and device receipts
  // (opened, clicked, dismissed, not_interested, complaint, converted), with the
  // device in attrs.device_id.
  bool OnGatewayEvent(mqtt::GatewayEvent event, Done done = nullptr) override;
  void NotifyWhenDrained(std::function<void()> fn) override;

  // Hands everything queued to the pipeline, waits for it to be durable and
  // stops the thread. Idempotent; later events are refused with Unavailable.
  void Stop();

 private:
  struct Item {
    stream::Event event;
    Done done;
  };
  void Run();

  stream::Pipeline* pipeline_;
  eventlog::KafkaSink* kafka_ = nullptr;
  std::string topic_;
  const size_t high_water_;
  const size_t max_queued_;
  Gauge* m_queued_ = nullptr;
  Counter* m_dropped_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<Item> queue_;                          // GUARDED_BY(mu_)
  std::vector<std::function<void()>> drained_;      // GUARDED_BY(mu_)
  size_t in_flight_ = 0;                            // GUARDED_BY(mu_): batches not yet durable
  bool stopping_ = false;                           // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace herald::node
