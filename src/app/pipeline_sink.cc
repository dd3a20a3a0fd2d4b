#include "app/pipeline_sink.h"

#include "core/log.h"

namespace herald::app {

void PipelineEventSink::OnGatewayEvent(mqtt::GatewayEvent g) {
  auto type = stream::ParseEventType(g.type);
  if (!type) return;  // presence and non-delivery outcomes
  stream::Event e;
  e.tenant = std::move(g.tenant);
  e.user_id = std::move(g.user_id);
  e.type = *type;
  e.ts = g.ts;
  e.message_id = std::move(g.message_id);
  if (!stream::Validate(e).ok()) return;
  std::vector<stream::Event> batch;
  batch.push_back(std::move(e));
  pipeline_->Ingest(std::move(batch), [](Status s) {
    if (!s.ok()) log::Error("gateway event not stored", {{"error", s}});
  });
}

}  // namespace herald::app
