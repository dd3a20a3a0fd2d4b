#include "node/gateway_sink.h"

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "core/time_format.h"

namespace herald::node {
namespace {

constexpr size_t kMaxBatch = 4096;  // events per pipeline append

}  // namespace

GatewayEventSink::GatewayEventSink(stream::Pipeline* pipeline, MetricsRegistry* metrics,
                                   size_t high_water)
    : pipeline_(pipeline),
      high_water_(std::max<size_t>(high_water, 2)),
      max_queued_(high_water_ * 4) {
  if (metrics) {
    m_queued_ = &metrics->GetGauge("herald_gateway_events_queued",
                                   "Gateway events waiting to be appended to the event log.");
    m_dropped_ = &metrics->GetCounter(
        "herald_gateway_events_dropped_total",
        "Gateway outcome and presence events dropped because the queue to the log was full.");
  }
  thread_ = std::thread([this] { Run(); });
}

GatewayEventSink::~GatewayEventSink() { Stop(); }

bool GatewayEventSink::OnGatewayEvent(mqtt::GatewayEvent g, Done done) {
  if (kafka_) {
    nlohmann::json j = {{"tenant", g.tenant}, {"user_id", g.user_id}, {"type", g.type},
                        {"ts", FormatIsoTime(g.ts)}};
    if (!g.device_id.empty()) j["device_id"] = g.device_id;
    if (!g.message_id.empty()) j["message_id"] = g.message_id;
    if (!g.account_id.empty()) j["account_id"] = g.account_id;
    if (!g.campaign_id.empty()) j["campaign_id"] = g.campaign_id;
    if (!g.article_id.empty()) j["attrs"] = {{"article_id", g.article_id}};
    kafka_->Produce(topic_, g.user_id, j.dump(), [](Result<eventlog::KafkaDelivery> r) {
      if (!r.ok()) log::Warn("outcome event not produced", {{"error", r.status()}});
    });
  }
  auto type = stream::ParseEventType(g.type);
  Status bad;
  stream::Event e;
  if (!type) {
    bad = Status::InvalidArgument("gateway event of unknown type " + g.type);
  } else {
    e.tenant = std::move(g.tenant);
    e.user_id = std::move(g.user_id);
    e.type = *type;
    e.ts = g.ts;
    e.message_id = std::move(g.message_id);
    e.account_id = std::move(g.account_id);
    e.campaign_id = std::move(g.campaign_id);
    nlohmann::json attrs = nlohmann::json::object();
    if (!g.device_id.empty()) attrs["device_id"] = g.device_id;
    if (!g.article_id.empty()) attrs["article_id"] = g.article_id;
    if (!attrs.empty()) e.attrs = attrs.dump();
    bad = stream::Validate(e);
  }
  if (!bad.ok()) {
    // Not storable (a receipt naming an id that is not an id): nothing to keep.
    log::Warn("gateway event not stored", {{"error", bad}});
    if (done) done(bad);
    return true;
  }
  std::unique_lock<std::mutex> l(mu_);
  if (stopping_) {
    l.unlock();
    if (done) done(Status::Unavailable("shutting down"));
    return true;
  }
  if (queue_.size() >= max_queued_) {
    l.unlock();
    if (done) {
      done(Status::ResourceExhausted("gateway event queue full"));
    } else if (m_dropped_) {
      m_dropped_->Inc();
    }
    return false;
  }
  queue_.push_back({std::move(e), std::move(done)});
  size_t n = queue_.size();
  l.unlock();
  if (n == 1) cv_.notify_one();
  if (m_queued_) m_queued_->Set(static_cast<std::int64_t>(n));
  return n < high_water_;
}

void GatewayEventSink::NotifyWhenDrained(std::function<void()> fn) {
  std::unique_lock<std::mutex> l(mu_);
  if (queue_.size() < high_water_ / 2 || stopping_) {
    l.unlock();
    fn();
    return;
  }
  drained_.push_back(std::move(fn));
}

void GatewayEventSink::Run() {
  for (;;) {
    std::vector<stream::Event> events;
    auto dones = std::make_shared<std::vector<Done>>();
    std::vector<std::function<void()>> wake;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        idle_cv_.wait(l, [&] { return in_flight_ == 0; });
        return;  // stopping, everything handed off and durable
      }
      while (!queue_.empty() && events.size() < kMaxBatch) {
        events.push_back(std::move(queue_.front().event));
        if (queue_.front().done) dones->push_back(std::move(queue_.front().done));
        queue_.pop_front();
      }
      if (queue_.size() < high_water_ / 2) wake.swap(drained_);
      ++in_flight_;
      if (m_queued_) m_queued_->Set(static_cast<std::int64_t>(queue_.size()));
    }
    for (auto& fn : wake) fn();
    // May wait while the log is saturated: this thread, not the gateway's loop.
    pipeline_->Ingest(std::move(events), [this, dones](Status s) {
      if (!s.ok()) log::Error("gateway events not stored", {{"error", s}});
      for (auto& d : *dones) d(s);
      std::lock_guard<std::mutex> l(mu_);
      if (--in_flight_ == 0) idle_cv_.notify_all();
    });
  }
}

void GatewayEventSink::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::vector<std::function<void()>> wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    wake.swap(drained_);
  }
  for (auto& fn : wake) fn();
}

}  // namespace herald::node
