#include "bench_options.h"

#include <algorithm>

namespace herald::bench {

std::string_view ScenarioName(Scenario s) {
  switch (s) {
    case Scenario::kConn:
      return "conn";
    case Scenario::kFanin:
      return "fanin";
    case Scenario::kFanout:
      return "fanout";
    case Scenario::kLatency:
      return "latency";
  }
  return "unknown";
}

ClientRange RangeOf(uint64_t clients, int worker, int workers) {
  uint64_t per = clients / static_cast<uint64_t>(workers);
  uint64_t extra = clients % static_cast<uint64_t>(workers);
  auto w = static_cast<uint64_t>(worker);
  ClientRange r;
  r.begin = w * per + std::min(w, extra);
  r.end = r.begin + per + (w < extra ? 1 : 0);
  return r;
}

}  // namespace herald::bench
