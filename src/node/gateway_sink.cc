#include "node/gateway_sink.h"

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "core/time_format.h"

namespace herald::node {

void GatewayEventSink::OnGatewayEvent(mqtt::GatewayEvent g) {
  if (kafka_) {
    nlohmann::json j = {{"tenant", g.tenant}, {"user_id", g.user_id}, {"type", g.type},
                        {"ts", FormatIsoTime(g.ts)}};
    if (!g.device_id.empty()) j["device_id"] = g.device_id;
    if (!g.message_id.empty()) j["message_id"] = g.message_id;
    if (!g.account_id.empty()) j["account_id"] = g.account_id;
    if (!g.campaign_id.empty()) j["campaign_id"] = g.campaign_id;
    kafka_->Produce(topic_, g.user_id, j.dump(), [](Result<eventlog::KafkaDelivery> r) {
      if (!r.ok()) log::Warn("outcome event not produced", {{"error", r.status()}});
    });
  }
  auto type = stream::ParseEventType(g.type);
  if (!type) {
    log::Error("gateway event of unknown type", {{"type", g.type}});
    return;
  }
  stream::Event e;
  e.tenant = std::move(g.tenant);
  e.user_id = std::move(g.user_id);
  e.type = *type;
  e.ts = g.ts;
  e.message_id = std::move(g.message_id);
  e.account_id = std::move(g.account_id);
  e.campaign_id = std::move(g.campaign_id);
  if (!g.device_id.empty()) e.attrs = nlohmann::json({{"device_id", g.device_id}}).dump();
  if (Status s = stream::Validate(e); !s.ok()) {
    log::Warn("gateway event not stored", {{"type", g.type}, {"error", s}});
    return;
  }
  std::vector<stream::Event> batch;
  batch.push_back(std::move(e));
  pipeline_->Ingest(std::move(batch), [](Status s) {
    if (!s.ok()) log::Error("gateway event not stored", {{"error", s}});
  });
}

}  // namespace herald::node
