#include "api/devices_routes.h"

#include "api/json_body.h"

namespace herald::api {
namespace {

void CreateDevice(mqtt::DeviceRegistry* devices, HttpRequest& req, Respond& respond) {
  auto body = ParseJsonObject(req);
  if (!body.ok()) return respond(ErrorResponse(400, "invalid_json", body.status().message()));
  const auto& j = *body;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "user_id" && it.key() != "device_id") {
      return respond(ErrorResponse(400, "unknown_field",
                                   "unknown field \"" + it.key() + "\"; expected user_id, device_id"));
    }
  }
  for (const char* f : {"user_id", "device_id"}) {
    if (!j.contains(f) || !j[f].is_string()) {
      return respond(ErrorResponse(400, "invalid_argument", std::string(f) + ": required string"));
    }
  }
  std::string user = j["user_id"], device = j["device_id"];
  auto token = devices->Register(req.tenant_id, user, device);
  if (!token.ok()) return respond(ErrorResponse(token.status()));
  respond(JsonResponse({{"device_id", device}, {"user_id", user}, {"token", *token}}, 201));
}

}  // namespace

void RegisterDeviceRoutes(Router& router, mqtt::DeviceRegistry* devices) {
  router.Add("POST", "/v1/devices", Access::kTenant, [devices](HttpRequest& req, Respond respond) {
    CreateDevice(devices, req, respond);
  });
  router.Add("DELETE", "/v1/devices/{device_id}", Access::kTenant,
             [devices](HttpRequest& req, Respond respond) {
               Status s = devices->Revoke(req.tenant_id, req.params["device_id"]);
               if (!s.ok()) return respond(ErrorResponse(s));
               respond(JsonResponse({{"device_id", req.params["device_id"]}, {"revoked", true}}));
             });
}

}  // namespace herald::api
