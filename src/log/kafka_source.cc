// KafkaSource on a librdkafka high-level consumer: batches out, done() back in,
// and offsets committed only behind the contiguous durable prefix of each partition.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/log.h"
#include "core/metrics.h"
#include "log/kafka.h"

namespace herald::eventlog {

// Defined in kafka_sink.cc, the other half of the librdkafka edge.
namespace kafka_internal {
Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view what);
Result<rd_kafka_conf_t*> MakeConfig(const std::string& brokers, const KafkaProperties& defaults,
                                    const KafkaProperties& extra, const KafkaProperties& forced);
}  // namespace kafka_internal

namespace {

using kafka_internal::KafkaStatus;
using SteadyTime = std::chrono::steady_clock::time_point;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

// done() results on their way from any thread to the poll thread. Shared with every
// outstanding done(), so one that runs after the source is gone is harmless.
class Completions {
 public:
  void Post(std::uint64_t batch, Status status) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      items_.emplace_back(batch, std::move(status));
    }
    cv_.notify_all();
  }
  // Makes the current or next WaitUntil() return (Stop() uses it).
  void Wake() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }
  std::vector<std::pair<std::uint64_t, Status>> Take() {
    std::lock_guard<std::mutex> lk(mu_);
    return std::exchange(items_, {});
  }
  void WaitUntil(SteadyTime deadline) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_until(lk, deadline, [this] { return !items_.empty() || woken_; });
    woken_ = false;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::uint64_t, Status>> items_;  // GUARDED_BY(mu_)
  bool woken_ = false;                                   // GUARDED_BY(mu_)
};

// Behind every copy of one batch's done(): enforces "exactly once".
class DoneToken {
 public:
  DoneToken(std::shared_ptr<Completions> inbox, std::uint64_t batch)
      : inbox_(std::move(inbox)), batch_(batch) {}
  ~DoneToken() {
    if (!called_.load()) {
      inbox_->Post(batch_, Status::Internal("kafka batch handler dropped done() uncalled"));
    }
  }
  void Call(Status status) {
    if (called_.exchange(true)) {
      log::Error("kafka batch handler called done() twice", {{"batch", batch_}});
      std::abort();
    }
    inbox_->Post(batch_, std::move(status));
  }

 private:
  std::shared_ptr<Completions> inbox_;
  std::uint64_t batch_;
  std::atomic<bool> called_{false};
};

// What the poll thread knows about one assigned partition. Offsets are "next"
// offsets (one past the last record), as Kafka commits them; -1 is unknown.
struct PartitionState {
  std::uint64_t epoch = 0;           // the assignment this state belongs to
  std::int64_t durable_next = -1;    // after the last record of a done(Ok) batch
  std::int64_t committed_next = -1;  // what the group coordinator acknowledged
  std::int64_t commit_sent = -1;     // the offset of an unanswered async commit
  std::int64_t rewind_to = -1;       // a seek back to a failed batch, still to do
  std::deque<KafkaRecord> held;      // polled, waiting for the batch in flight
  bool in_flight = false;
  int backoff_ms = 0;
  SteadyTime retry_at{};
};

struct InFlightBatch {
  std::int32_t partition;
  std::uint64_t epoch;
  std::int64_t first, last;
  std::uint64_t records;
};

// Lives on its poll thread: every member below the options is touched only there,
// including from librdkafka's callbacks, which run inside consumer_poll() and
// consumer_close() on that thread. Other threads reach it through Completions.
class KafkaSourceImpl final : public KafkaSource {
 public:
  KafkaSourceImpl(const KafkaSourceOptions& options, KafkaBatchHandler handler);
  ~KafkaSourceImpl() override;
  Status Init();
  void Stop() override;

 private:
  void Run();
  void Poll(int timeout_ms);
  void DeliverReady();
  void ApplyCompletions();
  void Apply(const InFlightBatch& batch, const Status& status);
  bool Seek(std::int32_t partition, PartitionState& ps);
  bool WaitInFlight(const std::set<std::int32_t>* only, SteadyTime deadline);
  void CommitAsync();
  void CommitSync(const std::set<std::int32_t>* only);
  void OnCommitted(rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t* offsets,
                   bool async);
  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void Assign(rd_kafka_topic_partition_list_t* parts, bool cooperative);
  void Revoke(rd_kafka_topic_partition_list_t* parts, bool cooperative);
  void ReportError(const Status& st, bool fatal);
  void UpdateLag();
  void Shutdown();

  static void RebalanceCb(rd_kafka_t*, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* parts, void* opaque) {
    static_cast<KafkaSourceImpl*>(opaque)->OnRebalance(err, parts);
  }
  static void ErrorCb(rd_kafka_t*, int err, const char* reason, void* opaque) {
    auto e = static_cast<rd_kafka_resp_err_t>(err);
    static_cast<KafkaSourceImpl*>(opaque)->ReportError(KafkaStatus(e, reason),
                                                       e == RD_KAFKA_RESP_ERR__FATAL);
  }
  static void AsyncCommitCb(rd_kafka_t*, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t* offsets, void* opaque) {
    static_cast<KafkaSourceImpl*>(opaque)->OnCommitted(err, offsets, true);
  }
  static void SyncCommitCb(rd_kafka_t*, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* offsets, void* opaque) {
    static_cast<KafkaSourceImpl*>(opaque)->OnCommitted(err, offsets, false);
  }

  const KafkaSourceOptions options_;
  const KafkaBatchHandler handler_;
  std::unique_ptr<MetricsRegistry> own_metrics_;  // when options.metrics is null
  Counter* consumed_;
  Counter* redelivered_;
  Counter* committed_;
  Counter* commit_errors_;
  Counter* consume_errors_;
  Gauge* assigned_;
  Gauge* lag_;

  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* commit_queue_ = nullptr;  // async commit results, served by Run()
  std::shared_ptr<Completions> inbox_ = std::make_shared<Completions>();
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;    // serializes Stop()
  bool stopped_ = false;  // GUARDED_BY(stop_mu_)
  std::thread thread_;

  std::map<std::int32_t, PartitionState> parts_;
  std::map<std::uint64_t, InFlightBatch> in_flight_;  // by batch id
  std::size_t held_ = 0;                              // records held over all partitions
  std::uint64_t next_batch_ = 0;
  std::uint64_t next_epoch_ = 0;
  bool commit_outstanding_ = false;
  bool failed_ = false;  // a fatal consumer error: stop polling until Stop()
  SteadyTime next_lag_update_{};
};

KafkaSourceImpl::KafkaSourceImpl(const KafkaSourceOptions& options, KafkaBatchHandler handler)
    : options_(options), handler_(std::move(handler)) {
  MetricsRegistry* m = options.metrics;
  if (m == nullptr) {
    own_metrics_ = std::make_unique<MetricsRegistry>();
    m = own_metrics_.get();
  }
  const Labels labels = {{"topic", options.topic}};
  consumed_ = &m->GetCounter("herald_kafka_consumed_total",
                             "Records handed to the pipeline, retries included.", labels);
  redelivered_ =
      &m->GetCounter("herald_kafka_redelivered_total",
                     "Records of failed batches, rewound to be delivered again.", labels);
  committed_ = &m->GetCounter("herald_kafka_committed_offsets_total",
                              "Advance of the group's committed offsets, summed.", labels);
  commit_errors_ =
      &m->GetCounter("herald_kafka_commit_errors_total", "Offset commits that failed.", labels);
  consume_errors_ = &m->GetCounter("herald_kafka_consume_errors_total",
                                   "Errors the Kafka consumer reported.", labels);
  assigned_ = &m->GetGauge("herald_kafka_assigned_partitions",
                           "Partitions the consumer group assigned to this node.", labels);
  lag_ = &m->GetGauge("herald_kafka_consumer_lag",
                      "High watermark minus committed offset, over assigned partitions.", labels);
}

KafkaSourceImpl::~KafkaSourceImpl() {
  Stop();
  if (rk_ != nullptr) {  // Init() failed after creating the consumer
    rd_kafka_consumer_close(rk_);
    if (commit_queue_ != nullptr) rd_kafka_queue_destroy(commit_queue_);
    rd_kafka_destroy(rk_);
  }
}

Status KafkaSourceImpl::Init() {
  const KafkaSourceOptions& o = options_;
  if (o.topic.empty() || o.group.empty() || o.max_batch == 0 || o.max_buffered == 0 ||
      o.retry_backoff_ms < 0 || !handler_) {
    return Status::InvalidArgument(
        "kafka source: needs a topic, a group, a handler, max_batch and max_buffered >= 1 and "
        "retry_backoff_ms >= 0");
  }
  auto conf = kafka_internal::MakeConfig(o.brokers, {{"auto.offset.reset", "earliest"}}, o.extra,
                                         {{"group.id", o.group},
                                          {"enable.auto.commit", "false"},
                                          {"enable.auto.offset.store", "false"}});
  HERALD_RETURN_IF_ERROR(conf.status());
  rd_kafka_conf_set_opaque(*conf, this);
  rd_kafka_conf_set_rebalance_cb(*conf, &RebalanceCb);
  rd_kafka_conf_set_error_cb(*conf, &ErrorCb);
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, *conf, err, sizeof err);
  if (rk_ == nullptr) {
    rd_kafka_conf_destroy(*conf);
    return Status::InvalidArgument(std::string("kafka consumer: ") + err);
  }
  rd_kafka_poll_set_consumer(rk_);
  commit_queue_ = rd_kafka_queue_new(rk_);
  PartitionList topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), o.topic.c_str(), RD_KAFKA_PARTITION_UA);
  HERALD_RETURN_IF_ERROR(
      KafkaStatus(rd_kafka_subscribe(rk_, topics.get()), "kafka subscribe to " + o.topic));
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void KafkaSourceImpl::Stop() {
  std::lock_guard<std::mutex> lk(stop_mu_);
  if (stopped_ || !thread_.joinable()) return;
  if (std::this_thread::get_id() == thread_.get_id()) {
    log::Error("KafkaSource::Stop() called from its own batch handler");
    std::abort();
  }
  stopping_.store(true);
  inbox_->Wake();
  thread_.join();
  stopped_ = true;
}

void KafkaSourceImpl::Run() {
  while (!stopping_.load()) {
    ApplyCompletions();
    rd_kafka_queue_poll_callback(commit_queue_, 0);
    CommitAsync();
    UpdateLag();
    DeliverReady();
    if (failed_ || held_ >= options_.max_buffered) {
      // Not polling: wait for a done(), a retry to come due or Stop().
      inbox_->WaitUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
      continue;
    }
    // Poll briefly while batches are in flight or held, so neither waits long.
    Poll(in_flight_.empty() && held_ == 0 ? 100 : 5);
  }
  Shutdown();
}

// Moves fetched records into their partitions' held queues.
void KafkaSourceImpl::Poll(int timeout_ms) {
  for (std::size_t n = 0; n < options_.max_batch && held_ < options_.max_buffered; ++n) {
    MessagePtr m(rd_kafka_consumer_poll(rk_, timeout_ms));
    if (!m) return;
    timeout_ms = 0;  // take what is already fetched, wait no more
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
      ReportError(
          KafkaStatus(m->err, "kafka consumer: " + std::string(rd_kafka_message_errstr(m.get()))),
          m->err == RD_KAFKA_RESP_ERR__FATAL);
      continue;
    }
    auto it = parts_.find(m->partition);
    // Not ours any more, or past a failed batch whose seek is still to do.
    if (it == parts_.end() || it->second.rewind_to >= 0) continue;
    KafkaRecord& r = it->second.held.emplace_back();
    ++held_;
    r.partition = m->partition;
    r.offset = m->offset;
    if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
    if (m->payload != nullptr) r.payload.assign(static_cast<const char*>(m->payload), m->len);
    const std::int64_t ts_ms = rd_kafka_message_timestamp(m.get(), nullptr);
    r.timestamp = ts_ms >= 0 ? ts_ms * 1000 : 0;
  }
}

// Hands each idle partition its next batch.
void KafkaSourceImpl::DeliverReady() {
  const SteadyTime now = std::chrono::steady_clock::now();
  for (auto& [p, ps] : parts_) {
    if (ps.in_flight || now < ps.retry_at) continue;
    if (ps.rewind_to >= 0 && !Seek(p, ps)) continue;
    if (ps.held.empty()) continue;
    const std::size_t n = std::min(options_.max_batch, ps.held.size());
    std::vector<KafkaRecord> batch(std::make_move_iterator(ps.held.begin()),
                                   std::make_move_iterator(ps.held.begin() + n));
    ps.held.erase(ps.held.begin(), ps.held.begin() + n);
    held_ -= n;
    if (ps.durable_next < 0) ps.durable_next = ps.committed_next = batch.front().offset;
    const std::uint64_t id = next_batch_++;
    in_flight_[id] = {p, ps.epoch, batch.front().offset, batch.back().offset, n};
    ps.in_flight = true;
    consumed_->Inc(n);
    auto token = std::make_shared<DoneToken>(inbox_, id);
    handler_(std::move(batch), [token](Status st) { token->Call(std::move(st)); });
  }
}

void KafkaSourceImpl::ApplyCompletions() {
  for (auto& [id, status] : inbox_->Take()) {
    auto node = in_flight_.extract(id);
    if (!node.empty()) Apply(node.mapped(), status);  // else given up on at a revoke
  }
}

void KafkaSourceImpl::Apply(const InFlightBatch& b, const Status& status) {
  auto it = parts_.find(b.partition);
  if (it == parts_.end() || it->second.epoch != b.epoch) return;  // revoked meanwhile
  PartitionState& ps = it->second;
  ps.in_flight = false;
  if (status.ok()) {
    ps.durable_next = b.last + 1;
    ps.backoff_ms = 0;
    return;
  }
  // The records held behind the failed batch would land after a gap: drop them
  // and fetch again from the failed batch's first record.
  redelivered_->Inc(b.records);
  held_ -= ps.held.size();
  ps.held.clear();
  ps.rewind_to = b.first;
  ps.backoff_ms = ps.backoff_ms == 0 ? options_.retry_backoff_ms
                                     : std::min(ps.backoff_ms * 2, options_.max_retry_backoff_ms);
  ps.retry_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(ps.backoff_ms);
  log::Warn("kafka batch failed; its records will be delivered again",
            {{"topic", options_.topic},
             {"partition", b.partition},
             {"offset", b.first},
             {"status", status},
             {"backoff_ms", ps.backoff_ms}});
  Seek(b.partition, ps);
}

// Seeks back to ps.rewind_to. A seek that fails is tried again after the backoff:
// going on without it would commit past the failed records.
bool KafkaSourceImpl::Seek(std::int32_t partition, PartitionState& ps) {
  PartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), partition)->offset =
      ps.rewind_to;
  // With a timeout, librdkafka also discards what it fetched from the old position.
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (rd_kafka_error_t* e = rd_kafka_seek_partitions(rk_, list.get(), 5000)) {
    err = rd_kafka_error_code(e);
    rd_kafka_error_destroy(e);
  } else {
    err = list->elems[0].err;
  }
  Status st = KafkaStatus(err, "kafka seek back to a failed batch");
  if (st.ok()) {
    ps.rewind_to = -1;
    return true;
  }
  ps.retry_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(ps.backoff_ms);
  ReportError(st, false);
  return false;
}

// Waits for the batches in flight of `only` (all when null) until `deadline`.
bool KafkaSourceImpl::WaitInFlight(const std::set<std::int32_t>* only, SteadyTime deadline) {
  auto waiting = [&] {
    return std::any_of(in_flight_.begin(), in_flight_.end(), [&](const auto& kv) {
      return only == nullptr || only->count(kv.second.partition) > 0;
    });
  };
  for (;;) {
    ApplyCompletions();
    if (!waiting()) return true;
    const SteadyTime now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    inbox_->WaitUntil(std::min(deadline, now + std::chrono::milliseconds(100)));
  }
}

// Commits, without waiting, every partition whose durable prefix passed what was
// committed. One request at a time, so under load the commits coalesce.
void KafkaSourceImpl::CommitAsync() {
  if (commit_outstanding_ || failed_) return;
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts_.size())));
  for (auto& [p, ps] : parts_) {
    if (ps.durable_next > std::max(ps.committed_next, ps.commit_sent)) {
      rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), p)->offset =
          ps.durable_next;
      ps.commit_sent = ps.durable_next;
    }
  }
  if (list->cnt == 0) return;
  commit_outstanding_ = true;
  rd_kafka_resp_err_t err =
      rd_kafka_commit_queue(rk_, list.get(), commit_queue_, &AsyncCommitCb, this);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) OnCommitted(err, list.get(), true);
}

// Commits the durable offsets of `only` (all when null) and waits for the answer.
void KafkaSourceImpl::CommitSync(const std::set<std::int32_t>* only) {
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts_.size())));
  for (const auto& [p, ps] : parts_) {
    if ((only == nullptr || only->count(p) > 0) && ps.durable_next > ps.committed_next) {
      rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), p)->offset =
          ps.durable_next;
    }
  }
  if (list->cnt == 0) return;
  // A null queue makes librdkafka serve SyncCommitCb before this call returns.
  rd_kafka_resp_err_t err = rd_kafka_commit_queue(rk_, list.get(), nullptr, &SyncCommitCb, this);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::Warn("kafka synchronous commit failed; uncommitted records will be delivered again",
              {{"topic", options_.topic}, {"status", KafkaStatus(err, "commit")}});
  }
}

void KafkaSourceImpl::OnCommitted(rd_kafka_resp_err_t err,
                                  const rd_kafka_topic_partition_list_t* offsets, bool async) {
  if (async) commit_outstanding_ = false;
  rd_kafka_resp_err_t first_error = err;
  for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
    const rd_kafka_topic_partition_t& e = offsets->elems[i];
    auto it = parts_.find(e.partition);
    if (it == parts_.end()) continue;  // revoked; its final commit was synchronous
    PartitionState& ps = it->second;
    const rd_kafka_resp_err_t pe = err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : e.err;
    if (pe != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (first_error == RD_KAFKA_RESP_ERR_NO_ERROR) first_error = pe;
      if (async) ps.commit_sent = -1;  // send it again
      continue;
    }
    if (e.offset > ps.committed_next) {
      committed_->Inc(
          static_cast<std::uint64_t>(e.offset - std::max<std::int64_t>(ps.committed_next, 0)));
      ps.committed_next = e.offset;
    }
  }
  if (first_error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    commit_errors_->Inc();
    log::Warn("kafka offset commit failed",
              {{"topic", options_.topic}, {"status", KafkaStatus(first_error, "commit")}});
  }
}

std::string PartitionsText(const rd_kafka_topic_partition_list_t* list) {
  std::string out;
  for (int i = 0; list != nullptr && i < list->cnt; ++i) {
    if (!out.empty()) out += ',';
    out += std::to_string(list->elems[i].partition);
    if (list->elems[i].offset >= 0) out += '@' + std::to_string(list->elems[i].offset);
  }
  return out;
}

void KafkaSourceImpl::OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk_), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    Assign(parts, cooperative);
  } else {
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      ReportError(KafkaStatus(err, "kafka rebalance"), false);
    }
    Revoke(parts, cooperative);
  }
}

// Starts each partition at its committed offset, or at the beginning when the group
// never committed one: auto.offset.reset then decides only what happens when a
// committed offset has fallen out of the topic's retention.
void KafkaSourceImpl::Assign(rd_kafka_topic_partition_list_t* parts, bool cooperative) {
  PartitionList list(rd_kafka_topic_partition_list_copy(parts));
  Status st = KafkaStatus(rd_kafka_committed(rk_, list.get(), 10000), "kafka committed offsets");
  for (int i = 0; i < list->cnt; ++i) {
    rd_kafka_topic_partition_t& e = list->elems[i];
    if (!st.ok() || e.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      e.offset = RD_KAFKA_OFFSET_INVALID;  // librdkafka looks the offset up itself
    } else if (e.offset < 0) {
      e.offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    PartitionState ps;
    ps.epoch = ++next_epoch_;
    ps.durable_next = ps.committed_next = e.offset >= 0 ? e.offset : -1;
    parts_[e.partition] = ps;
  }
  if (!st.ok()) ReportError(st, false);
  Status assigned;
  if (!cooperative) {
    assigned = KafkaStatus(rd_kafka_assign(rk_, list.get()), "kafka assign");
  } else if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk_, list.get())) {
    assigned = KafkaStatus(rd_kafka_error_code(e), "kafka incremental assign");
    rd_kafka_error_destroy(e);
  }
  if (!assigned.ok()) ReportError(assigned, false);
  assigned_->Set(static_cast<std::int64_t>(parts_.size()));
  log::Info("kafka partitions assigned",
            {{"topic", options_.topic}, {"partitions", PartitionsText(list.get())}});
}

// Lets the revoked partitions' batches in flight finish and commits what they
// made durable, so the next owner starts right after it.
void KafkaSourceImpl::Revoke(rd_kafka_topic_partition_list_t* parts, bool cooperative) {
  std::set<std::int32_t> revoked;
  for (int i = 0; parts != nullptr && i < parts->cnt; ++i)
    revoked.insert(parts->elems[i].partition);
  if (parts == nullptr) {
    for (const auto& [p, ps] : parts_) revoked.insert(p);
  }
  if (!WaitInFlight(&revoked, std::chrono::steady_clock::now() + std::chrono::seconds(30))) {
    log::Warn("kafka revoke: batches still in flight after 30 s; the next owner redelivers them",
              {{"topic", options_.topic}});
    std::erase_if(in_flight_,
                  [&](const auto& kv) { return revoked.count(kv.second.partition) > 0; });
  }
  if (rd_kafka_assignment_lost(rk_)) {
    log::Warn("kafka assignment lost; its offsets are not committed", {{"topic", options_.topic}});
  } else if (!failed_) {
    CommitSync(&revoked);
  }
  for (std::int32_t p : revoked) {
    auto it = parts_.find(p);
    if (it == parts_.end()) continue;
    held_ -= it->second.held.size();
    parts_.erase(it);
  }
  Status st;
  if (!cooperative) {
    st = KafkaStatus(rd_kafka_assign(rk_, nullptr), "kafka unassign");
  } else if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk_, parts)) {
    st = KafkaStatus(rd_kafka_error_code(e), "kafka incremental unassign");
    rd_kafka_error_destroy(e);
  }
  if (!st.ok()) ReportError(st, false);
  assigned_->Set(static_cast<std::int64_t>(parts_.size()));
  log::Info("kafka partitions revoked",
            {{"topic", options_.topic}, {"partitions", PartitionsText(parts)}});
}

void KafkaSourceImpl::ReportError(const Status& st, bool fatal) {
  consume_errors_->Inc();
  Status reported = st;
  if (fatal) {
    failed_ = true;
    char reason[512];
    rd_kafka_fatal_error(rk_, reason, sizeof reason);
    reported = Status(st.code(), st.message() + " (" + reason + ")");
    log::Error("kafka consumer failed for good; no more records until restart",
               {{"topic", options_.topic}, {"status", reported}});
  } else {
    log::Warn("kafka consumer error", {{"topic", options_.topic}, {"status", reported}});
  }
  if (options_.on_error) options_.on_error(reported);
}

// From cached watermarks (no request), about once a second.
void KafkaSourceImpl::UpdateLag() {
  const SteadyTime now = std::chrono::steady_clock::now();
  if (now < next_lag_update_) return;
  next_lag_update_ = now + std::chrono::seconds(1);
  std::int64_t lag = 0;
  for (const auto& [p, ps] : parts_) {
    std::int64_t low = -1, high = -1;
    if (rd_kafka_get_watermark_offsets(rk_, options_.topic.c_str(), p, &low, &high) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0) {
      continue;
    }
    lag += std::max<std::int64_t>(0, high - (ps.committed_next >= 0 ? ps.committed_next : low));
  }
  lag_->Set(lag);
}

void KafkaSourceImpl::Shutdown() {
  // Stop() promises to wait for every done(): the pipeline may still be writing.
  while (!WaitInFlight(nullptr, std::chrono::steady_clock::now() + std::chrono::seconds(10))) {
    log::Warn(
        "kafka source stopping: waiting for batches in flight",
        {{"topic", options_.topic}, {"batches", static_cast<std::uint64_t>(in_flight_.size())}});
  }
  if (!failed_) CommitSync(nullptr);
  // Runs Revoke() for the whole assignment and leaves the group.
  Status st = KafkaStatus(rd_kafka_consumer_close(rk_), "kafka consumer close");
  if (!st.ok())
    log::Warn("kafka consumer close failed", {{"topic", options_.topic}, {"status", st}});
  rd_kafka_queue_poll_callback(commit_queue_, 0);
  rd_kafka_queue_destroy(commit_queue_);
  commit_queue_ = nullptr;
  rd_kafka_destroy(rk_);
  rk_ = nullptr;
  assigned_->Set(0);
}

}  // namespace

KafkaSource::~KafkaSource() = default;

Result<std::unique_ptr<KafkaSource>> KafkaSource::Start(const KafkaSourceOptions& options,
                                                        KafkaBatchHandler handler) {
  auto source = std::make_unique<KafkaSourceImpl>(options, std::move(handler));
  HERALD_RETURN_IF_ERROR(source->Init());
  return std::unique_ptr<KafkaSource>(std::move(source));
}

}  // namespace herald::eventlog
