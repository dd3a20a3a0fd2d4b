#include "api/model_routes.h"

#include "api/json_body.h"
#include "core/time_format.h"

namespace herald::api {
namespace {

nlohmann::json ModelJson(const std::string& name, const model::ModelRegistry& r) {
  nlohmann::json versions = nlohmann::json::array();
  for (const auto& v : r.List()) {
    versions.push_back({{"version", v.version},
                        {"created_at", FormatIsoTime(v.created_at)},
                        {"kind", v.kind},
                        {"samples", v.samples},
                        {"holdout_logloss", v.holdout_logloss},
                        {"holdout_auc", v.holdout_auc}});
  }
  return {{"name", name}, {"current", r.current_version()}, {"versions", versions}};
}

}  // namespace

void RegisterModelRoutes(Router& router, const std::map<std::string, model::ModelRegistry*>* models) {
  router.Add("GET", "/v1/models", Access::kAdmin, [models](HttpRequest&, Respond respond) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [name, r] : *models) list.push_back(ModelJson(name, *r));
    respond(JsonResponse({{"models", list}}));
  });
  router.Add("POST", "/v1/models/{name}/promote", Access::kAdmin, [models](HttpRequest& req, Respond respond) {
    auto it = models->find(req.params["name"]);
    if (it == models->end()) return respond(ErrorResponse(404, "not_found", "no model " + req.params["name"]));
    auto body = ParseJsonObject(req);
    if (!body.ok()) return respond(ErrorResponse(400, "invalid_json", body.status().message()));
    if (!body->contains("version") || !(*body)["version"].is_number_unsigned()) {
      return respond(ErrorResponse(400, "invalid_argument", "version: required positive integer"));
    }
    Status s = it->second->Promote((*body)["version"].get<std::uint32_t>());
    if (!s.ok()) return respond(ErrorResponse(s));
    respond(JsonResponse(ModelJson(it->first, *it->second)));
  });
  router.Add("POST", "/v1/models/{name}/rollback", Access::kAdmin, [models](HttpRequest& req, Respond respond) {
    auto it = models->find(req.params["name"]);
    if (it == models->end()) return respond(ErrorResponse(404, "not_found", "no model " + req.params["name"]));
    Status s = it->second->Rollback();
    if (!s.ok()) return respond(ErrorResponse(s));
    respond(JsonResponse(ModelJson(it->first, *it->second)));
  });
}

}  // namespace herald::api
