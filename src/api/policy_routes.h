// Policy routes: accounts, follows, decisions and the dry-run check.
#pragma once

#include "api/router.h"
#include "policy/accounts.h"
#include "policy/policy_store.h"
#include "stream/pipeline.h"

namespace herald::api {

struct PolicyRoutesContext {
  stream::Pipeline* pipeline = nullptr;
  policy::AccountDirectory* accounts = nullptr;
  const policy::PolicyConfig* config = nullptr;
  stream::StateHandle<policy::PolicyStore> store;
  const Clock* clock = nullptr;
  size_t max_batch = 100'000;
};

// Registers (tenant key):
//   POST /v1/accounts, GET /v1/accounts, GET /v1/accounts/{id}
//   POST /v1/follows, DELETE /v1/follows   follow / unfollow events through the log
//   GET  /v1/users/{id}/decisions?limit=N
//   POST /v1/policy/check                  Decide() on the live state; changes nothing
// `ctx` must outlive the router.
void RegisterPolicyRoutes(Router& router, const PolicyRoutesContext& ctx);

}  // namespace herald::api
