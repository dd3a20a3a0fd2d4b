// Model routes: the versions of each model and which one is in service.
#pragma once

#include <map>
#include <string>

#include "api/router.h"
#include "model/registry.h"

namespace herald::api {

// Registers (admin key: models are shared by the node's tenants):
//   GET  /v1/models                      {"models":[{"name","current","versions":[...]}]}
//   POST /v1/models/{name}/promote       {"version":N}
//   POST /v1/models/{name}/rollback
// `models` (by name) must outlive the router.
void RegisterModelRoutes(Router& router, const std::map<std::string, model::ModelRegistry*>* models);

}  // namespace herald::api
