// Event pipeline routes: ingest, features and outcome statistics.
#pragma once

#include "api/router.h"
#include "store/db.h"
#include "stream/pipeline.h"

namespace herald::api {

struct EventRoutesContext {
  stream::Pipeline* pipeline = nullptr;
  store::Db* db = nullptr;
  const Clock* clock = nullptr;
  size_t max_batch_events = 100'000;
  size_t max_inflated_bytes = 64 << 20;
};


// Registers (tenant key):
//   POST /v1/events                  JSON array, or NDJSON (Content-Type:
//                                    application/x-ndjson); Content-Encoding: gzip
//                                    allowed; Idempotency-Key header optional: a retry
//                                    applies each event once (Pipeline::IngestOnce)
//   GET  /v1/users/{id}/features
//   GET  /v1/stats/windows?size=1m|1h&since=TIME&class=C   push outcomes in tumbling
//                                    windows, of one user class ("all" by default, "*": every class)
//   GET  /v1/stats/hours                            push outcomes by users' local hour
// `ctx` must outlive the router.
void RegisterEventRoutes(Router& router, const EventRoutesContext& ctx);

}  // namespace herald::api
