// Engine routes: the single push and a push's life.
#pragma once

#include "api/router.h"
#include "engine/engine.h"

namespace herald::api {

struct EngineRoutesContext {
  engine::Engine* engine = nullptr;
  const engine::CampaignDirectory* campaigns = nullptr;
  const policy::PolicyConfig* policy_config = nullptr;
};

// Registers (tenant key):
//   POST /v1/push            {"user_id","account_id","message":{...},"campaign_id"?}
//                            -> {"message_id","decision","rule","until","explanation"}
//   GET  /v1/messages/{id}   the push: user, account, sent, outcome, receipts
//   POST /v1/campaigns       create (Idempotency-Key header optional); sent in the background
//   GET  /v1/campaigns/{id}  status and funnel; GET /v1/campaigns; POST /v1/campaigns/{id}/cancel
// `ctx` must outlive the router.
void RegisterEngineRoutes(Router& router, const EngineRoutesContext& ctx);

}  // namespace herald::api
