// Kafka source and sink: herald's cluster-mode edge (librdkafka underneath).
//
// KafkaSource consumes one topic (herald.events by default) in a consumer group
// and hands records to the event pipeline in batches. Offsets are committed to
// the group only for records the pipeline has declared durable, so a crash or a
// restart resumes at the first record that was not yet durable: delivery is
// at-least-once, and exactly-once for a clean Stop() where every batch succeeded.
//
// KafkaSink produces herald's own events (push outcomes, forwarded deliveries)
// with an idempotent producer. Keys are partitioned with Kafka's murmur2, the
// same function as core/partition.h, so a record keyed by a user id lands in the
// Kafka partition whose number is the user's herald partition (provided the topic
// has as many partitions as the deployment).
//
// librdkafka stays behind this header: its errors become herald::Status here,
// its log lines go to herald::log, and its types never appear in the API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace herald {
class MetricsRegistry;
}

namespace herald::eventlog {

// librdkafka configuration properties ("session.timeout.ms", "6000"), applied in
// order after herald's defaults, so they override them; a few properties that
// herald's guarantees rest on are applied last and cannot be overridden.
using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

// One consumed record. `key` is empty when the producer sent none; `timestamp`
// is the record's Kafka timestamp in microseconds, or 0 when it has none.
struct KafkaRecord {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string payload;
  Micros timestamp = 0;
};

struct KafkaSourceOptions {
  std::string brokers;  // "host:port,host:port"; required
  std::string topic = "herald.events";
  std::string group = "herald";
  // Most records per handler call. At least 1.
  std::size_t max_batch = 1000;
  // Most records polled but not yet handed out, over all partitions (they wait
  // while their partition has a batch in flight). At this bound the source stops
  // polling until a done() frees its partition. At least 1.
  std::size_t max_buffered = 10000;
  // Pause after a failed batch before its partition's records are delivered
  // again; doubles after each consecutive failure of that partition, up to
  // max_retry_backoff_ms.
  int retry_backoff_ms = 100;
  int max_retry_backoff_ms = 5000;
  // Extra librdkafka consumer properties. Default auto.offset.reset=earliest;
  // fixed group.id=group, enable.auto.commit=false, enable.auto.offset.store=false.
  // Tests should set auto.offset.reset=error so that records lost to retention
  // fail loudly instead of being skipped.
  KafkaProperties extra;
  // Consumer errors librdkafka reports (broker trouble, an offset out of range
  // under auto.offset.reset=error, a fatal error). Runs on the poll thread; must
  // be short and must not call Stop(). Null: errors are only logged and counted.
  std::function<void(const Status&)> on_error;
  // Where to publish herald_kafka_* consumer metrics (labelled topic=...); null
  // keeps them private.
  MetricsRegistry* metrics = nullptr;
};

// Receives a batch: records of one partition in ascending offset order (gaps only
// where Kafka has no record), so it can go to EventLog::Append(partition, ...)
// whole; Kafka partition p is herald partition p when the topic has the
// deployment's P partitions and producers key it by user id. Each partition has
// at most one batch in flight: its next batch comes only after this one's done();
// other partitions' batches keep coming meanwhile. The handler runs on the
// source's poll thread and should only hand the batch off; it must not block for
// long and must not call Stop().
//
// `done` must be called exactly once, from any thread (also from inside the
// handler), once the batch is durable or has failed. Calling it twice aborts;
// destroying every copy of it uncalled counts as done(Internal).
//  - done(Ok): the offset after the batch's last record becomes the partition's
//    committed offset: asynchronously soon after, synchronously on Stop() and on
//    a rebalance that revokes the partition.
//  - done(error): nothing from the batch's first record on is committed. The
//    source drops the records it holds for that partition, seeks it back to the
//    batch's first record and, after the retry backoff, delivers the same
//    records again (the next batch may be cut differently). A restart instead
//    resumes at the committed offset, which is the same record.
// So within one run every record is made durable once, in order; across a crash
// or a revoke that outlives a done(), records after the last commit come again.
using KafkaBatchHandler =
    std::function<void(std::vector<KafkaRecord> batch, std::function<void(Status)> done)>;

// A consumer-group member with its own poll thread. When a rebalance revokes
// partitions it waits up to 30 s for their batches in flight, then commits what
// is durable before letting the partitions go.
//
// Metrics: herald_kafka_consumed_total (records handed to the handler, retries
// included), herald_kafka_redelivered_total (records rewound after a failed
// batch), herald_kafka_committed_offsets_total (how far the group's committed
// offsets advanced, summed over partitions), herald_kafka_commit_errors_total,
// herald_kafka_consume_errors_total, herald_kafka_assigned_partitions (gauge),
// herald_kafka_consumer_lag (gauge: high watermark minus committed offset,
// summed over the assigned partitions, refreshed about once a second).
class KafkaSource {
 public:
  // Creates the consumer, subscribes to options.topic and starts polling. Joining
  // the group and the first assignment happen in the background. A new group (no
  // committed offset for a partition) starts at the beginning of the partition.
  // Fails with InvalidArgument for bad options or a librdkafka property it
  // rejects.
  static Result<std::unique_ptr<KafkaSource>> Start(const KafkaSourceOptions& options,
                                                    KafkaBatchHandler handler);

  // Stops polling, waits (without a limit) for the done() of every batch in
  // flight, commits what is durable synchronously, and closes the consumer, which
  // leaves the group so the partitions move to other members at once. Idempotent.
  // Call it from any thread but the handler's. The destructor calls it.
  virtual void Stop() = 0;

  virtual ~KafkaSource();
};

struct KafkaSinkOptions {
  std::string brokers;  // "host:port,host:port"; required
  // Extra librdkafka producer properties. Default enable.idempotence=true; fixed
  // partitioner=murmur2_random (Kafka's murmur2 for keyed records).
  KafkaProperties extra;
  // How long the destructor waits for records still in flight before it fails
  // them with Unavailable.
  int close_timeout_ms = 10000;
  // Where to publish herald_kafka_produced_total and
  // herald_kafka_produce_errors_total; null keeps them private.
  MetricsRegistry* metrics = nullptr;
};

// Where the broker stored a produced record.
struct KafkaDelivery {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

// A producer with its own thread, which runs every delivery callback.
class KafkaSink {
 public:
  // Runs once per Produce(): with the record's partition and offset after the
  // broker acknowledged it, or with the error (Unavailable once message.timeout.ms
  // ran out or the sink closed, NotFound for an unknown topic, ...).
  using DeliveryCallback = std::function<void(Result<KafkaDelivery>)>;

  // Creates the producer. Fails with InvalidArgument for bad options or a
  // librdkafka property it rejects. Brokers are contacted in the background.
  static Result<std::unique_ptr<KafkaSink>> Open(const KafkaSinkOptions& options);

  // Queues one record for `topic`; key and payload are copied before it returns.
  // An empty key means none (the partition is then random). Never blocks: when
  // the record is refused locally (ResourceExhausted when the producer queue is
  // full, InvalidArgument when it is too large, ...) `done` runs on the calling
  // thread before Produce returns; otherwise it runs later on the sink's thread.
  // `done` must be short; it may call Produce(). Callable from any thread.
  virtual void Produce(const std::string& topic, std::string_view key, std::string_view payload,
                       DeliveryCallback done) = 0;

  // Waits up to timeout_ms until every record produced before the call has been
  // acknowledged or failed and its `done` has returned. Unavailable on timeout;
  // FailedPrecondition when called from a delivery callback. Any thread.
  virtual Status Flush(int timeout_ms) = 0;

  // Flushes for up to close_timeout_ms, fails what is left (their `done` runs with
  // Unavailable), then closes. Must not run inside a delivery callback.
  virtual ~KafkaSink();
};

}  // namespace herald::eventlog
