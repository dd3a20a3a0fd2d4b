// KafkaSink on a librdkafka producer, plus the librdkafka edge that kafka_source.cc
// shares: configuration, error translation and logging.
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <memory>
#include <thread>

#include "core/log.h"
#include "core/metrics.h"
#include "log/kafka.h"

namespace herald::eventlog {
namespace kafka_internal {

// Every librdkafka error code becomes a herald Code here and nowhere else. The
// message keeps librdkafka's name for the error so it can be looked up.
Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view what) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  std::string msg =
      std::string(what) + ": " + rd_kafka_err2name(err) + ": " + rd_kafka_err2str(err);
  switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return Status::ResourceExhausted(std::move(msg));
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
      return Status::InvalidArgument(std::move(msg));
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return Status::NotFound(std::move(msg));
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return Status::PermissionDenied(std::move(msg));
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
      return Status::Unauthenticated(std::move(msg));
    // The consumer cannot go on without losing or re-reading records: an offset
    // fell out of retention under auto.offset.reset=error, or the client is dead.
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR__STATE:
      return Status::FailedPrecondition(std::move(msg));
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
      return Status::Unavailable(std::move(msg));
    default:
      return Status::IoError(std::move(msg));
  }
}

namespace {

// librdkafka logs from its own threads with syslog levels.
void LogLine(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  std::initializer_list<log::Field> fields = {{"client", rd_kafka_name(rk)}, {"facility", fac}};
  if (level <= 3) {
    log::Error(buf, fields);
  } else if (level == 4) {
    log::Warn(buf, fields);
  } else if (level <= 6) {
    log::Info(buf, fields);
  } else {
    log::Debug(buf, fields);
  }
}

}  // namespace

// Builds a configuration: bootstrap.servers, then `defaults`, then the caller's
// `extra`, then `forced` (properties herald's guarantees depend on). The caller
// owns the result and releases it with rd_kafka_conf_destroy unless rd_kafka_new
// took it.
Result<rd_kafka_conf_t*> MakeConfig(const std::string& brokers, const KafkaProperties& defaults,
                                    const KafkaProperties& extra, const KafkaProperties& forced) {
  if (brokers.empty()) return Status::InvalidArgument("kafka: brokers must not be empty");
  std::unique_ptr<rd_kafka_conf_t, void (*)(rd_kafka_conf_t*)> conf(rd_kafka_conf_new(),
                                                                    &rd_kafka_conf_destroy);
  auto set = [&conf](const std::string& key, const std::string& value) -> Status {
    char err[512];
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), err, sizeof err) !=
        RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument("kafka config " + key + "=" + value + ": " + err);
    }
    return Status::Ok();
  };
  HERALD_RETURN_IF_ERROR(set("bootstrap.servers", brokers));
  for (const KafkaProperties* list : {&defaults, &extra, &forced}) {
    for (const auto& [key, value] : *list) HERALD_RETURN_IF_ERROR(set(key, value));
  }
  rd_kafka_conf_set_log_cb(conf.get(), &LogLine);
  return conf.release();
}

}  // namespace kafka_internal

namespace {

using kafka_internal::KafkaStatus;

// Lives on its sink thread, which serves librdkafka's event queue and so runs
// every delivery callback; Produce() and Flush() may be called from any thread.
class KafkaSinkImpl final : public KafkaSink {
 public:
  explicit KafkaSinkImpl(const KafkaSinkOptions& options)
      : close_timeout_ms_(options.close_timeout_ms) {
    MetricsRegistry* m = options.metrics;
    if (m == nullptr) {
      own_metrics_ = std::make_unique<MetricsRegistry>();
      m = own_metrics_.get();
    }
    produced_ = &m->GetCounter("herald_kafka_produced_total",
                               "Records the Kafka sink got acknowledged by the broker.");
    errors_ = &m->GetCounter("herald_kafka_produce_errors_total",
                             "Records the Kafka sink failed to produce.");
  }

  ~KafkaSinkImpl() override {
    if (rk_ == nullptr) return;
    Status st = Flush(close_timeout_ms_);
    if (!st.ok()) {
      log::Warn("kafka sink closing with records in flight; failing them", {{"status", st}});
      rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      (void)Flush(close_timeout_ms_);  // the sink thread fails the purged records
    }
    stopping_.store(true);
    rd_kafka_queue_yield(queue_);
    if (thread_.joinable()) thread_.join();
    rd_kafka_queue_destroy(queue_);
    rd_kafka_destroy(rk_);
  }

  Status Init(const KafkaSinkOptions& options) {
    auto conf = kafka_internal::MakeConfig(
        options.brokers, {{"enable.idempotence", "true"}}, options.extra,
        {{"partitioner", "murmur2_random"}});  // core/partition.h: same homes as herald
    HERALD_RETURN_IF_ERROR(conf.status());
    // Delivery reports as events: then rd_kafka_flush() waits for the sink thread
    // to run them instead of running callbacks on the flushing thread.
    rd_kafka_conf_set_events(*conf, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
    char err[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, *conf, err, sizeof err);
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(*conf);
      return Status::InvalidArgument(std::string("kafka producer: ") + err);
    }
    queue_ = rd_kafka_queue_get_main(rk_);
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  void Produce(const std::string& topic, std::string_view key, std::string_view payload,
               DeliveryCallback done) override {
    auto cb = std::make_unique<DeliveryCallback>(std::move(done));
    // The RD_KAFKA_V_* macros paste their arguments unparenthesized: pass plain names.
    const void* key_ptr = key.empty() ? nullptr : key.data();
    const size_t key_len = key.size();
    void* value_ptr = const_cast<char*>(payload.data());  // copied: RD_KAFKA_MSG_F_COPY
    const size_t value_len = payload.size();
    const char* topic_name = topic.c_str();
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(topic_name), RD_KAFKA_V_KEY(key_ptr, key_len),
        RD_KAFKA_V_VALUE(value_ptr, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(cb.get()), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      errors_->Inc();
      (*cb)(KafkaStatus(err, "kafka produce to " + topic));
      return;
    }
    // Owned by the record until its delivery report frees it in OnDelivery().
    (void)cb.release();  // NOLINT(clang-analyzer-cplusplus.NewDeleteLeaks)
  }

  Status Flush(int timeout_ms) override {
    if (std::this_thread::get_id() == thread_.get_id()) {
      return Status::FailedPrecondition("kafka sink: Flush() called from a delivery callback");
    }
    if (rd_kafka_flush(rk_, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Unavailable("kafka sink: " + std::to_string(rd_kafka_outq_len(rk_)) +
                                 " records still in flight after " + std::to_string(timeout_ms) +
                                 " ms");
    }
    return Status::Ok();
  }

 private:
  void Run() {
    while (!stopping_.load()) {
      rd_kafka_event_t* ev = rd_kafka_queue_poll(queue_, 200);
      if (ev == nullptr) continue;
      switch (rd_kafka_event_type(ev)) {
        case RD_KAFKA_EVENT_DR:
          while (const rd_kafka_message_t* m = rd_kafka_event_message_next(ev)) OnDelivery(*m);
          break;
        case RD_KAFKA_EVENT_ERROR:
          OnError(ev);
          break;
        default:
          break;
      }
      rd_kafka_event_destroy(ev);
    }
  }

  void OnDelivery(const rd_kafka_message_t& m) {
    std::unique_ptr<DeliveryCallback> cb(static_cast<DeliveryCallback*>(m._private));
    if (m.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      produced_->Inc();
      (*cb)(KafkaDelivery{m.partition, m.offset});
      return;
    }
    errors_->Inc();
    std::string what = std::string("kafka produce to ") + rd_kafka_topic_name(m.rkt);
    if (m.err == RD_KAFKA_RESP_ERR__FATAL) {
      char reason[512];
      rd_kafka_fatal_error(rk_, reason, sizeof reason);
      what += std::string(" (") + reason + ")";
    }
    (*cb)(KafkaStatus(m.err, what));
  }

  void OnError(rd_kafka_event_t* ev) {
    Status st = KafkaStatus(rd_kafka_event_error(ev), rd_kafka_event_error_string(ev));
    if (rd_kafka_event_error_is_fatal(ev)) {
      log::Error("kafka producer failed for good; every later record fails", {{"status", st}});
    } else {
      log::Warn("kafka producer error", {{"status", st}});
    }
  }

  const int close_timeout_ms_;
  std::unique_ptr<MetricsRegistry> own_metrics_;  // when options.metrics is null
  Counter* produced_ = nullptr;
  Counter* errors_ = nullptr;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;  // the main queue: delivery reports and errors
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace

KafkaSink::~KafkaSink() = default;

Result<std::unique_ptr<KafkaSink>> KafkaSink::Open(const KafkaSinkOptions& options) {
  auto sink = std::make_unique<KafkaSinkImpl>(options);
  HERALD_RETURN_IF_ERROR(sink->Init(options));
  return std::unique_ptr<KafkaSink>(std::move(sink));
}

}  // namespace herald::eventlog
