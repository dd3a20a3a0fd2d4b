// Device routes: binding devices to users and issuing their MQTT tokens.
#pragma once

#include "api/router.h"
#include "mqtt/devices.h"

namespace herald::api {

// Registers:
//   POST   /v1/devices              {"user_id","device_id"} -> {"device_id","user_id","token"}
//   DELETE /v1/devices/{device_id}  revokes the device's tokens
// Both take the caller's tenant from its key. `devices` must outlive the router.
void RegisterDeviceRoutes(Router& router, mqtt::DeviceRegistry* devices);

}  // namespace herald::api
