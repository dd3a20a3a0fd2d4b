// The foundation routes: health, metrics, version, tenants and the admin clock.
// Later capabilities register their own routes on the same Router.
#pragma once

#include "api/router.h"
#include "api/tenants.h"
#include "core/clock.h"
#include "core/metrics.h"

namespace herald::api {

struct ServiceContext {
  const Clock* clock = nullptr;
  VirtualClock* virtual_clock = nullptr;  // null unless --virtual-clock
  MetricsRegistry* metrics = nullptr;
  TenantDirectory* tenants = nullptr;
};

// Registers:
//   GET  /healthz                       public
//   GET  /metrics                       public, Prometheus text
//   GET  /v1/version                    public
//   GET  /v1/tenants, POST /v1/tenants  admin
//   GET  /v1/admin/clock, POST /v1/admin/clock   admin
// `ctx` must outlive the router.
void RegisterCoreRoutes(Router& router, const ServiceContext& ctx);

}  // namespace herald::api
