#include "sim/strategy.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/time_format.h"
#include "sim/simulator.h"

namespace herald::sim {

Spec SpecOf(const std::string& name) {
  if (name == "blast") return {false, false, false, false, false, false};
  if (name == "fixed-caps") return {true, false, false, false, false, false};
  if (name == "herald-no-sendtime") return {true, true, true, true, false, true};
  return {};
}

node::Config ConfigOf(const Spec& s, const std::string& dir, size_t users) {
  node::Config c = node::Config::Defaults();
  c.server.data_dir = dir;
  c.server.log_level = "error";
  c.server.virtual_clock = true;
  c.server.virtual_clock_start = FormatIsoTime(kStart);
  c.stream.max_hot_users = std::max<size_t>(users * 2, 1000);
  c.stream.checkpoint_interval_ms = 6 * 3'600'000;  // fast mode: a replay costs little, writes do
  auto& p = c.policy;
  if (!s.caps) {
    p.daily_cap = 255;
    p.service_monthly_cap = 255;
    p.new_follower_days = 1;
    p.new_follower_max = 8;
    p.steady_from_day = 2;
    p.steady_per_day = 8;
  }
  if (!s.fatigue) {
    p.silence_after_unopened = 255;
    p.downgrade_after_unopened = 65535;
  }
  if (!s.quiet) p.quiet_start = p.quiet_end = "00:00";
  if (!s.reputation) {
    p.not_interested_block_days = 0;
    p.complaint_block_days = 0;
    p.downweight_rate = 1;
    p.throttle_rate = 1;
  }
  return c;
}

std::string ProfileJson(const SimUser& u, Micros start) {
  const std::string_view cls = Classes()[u.cls].name;
  nlohmann::json profile = {{"age", u.age}};
  if (cls == "executive" || cls == "business" || cls == "student") profile["occupation"] = std::string(cls);
  if (cls == "content_creator") profile["occupation"] = "creator";
  if (cls == "high_value_silent") profile["ltv"] = 500;
  if (cls == "new_user") profile["registered_at"] = FormatIsoTime(start - kMicrosPerHour);
  return profile.dump();
}

void CountUsers(const Population& pop, const std::vector<std::uint32_t>& sent_per_user, int days,
                StrategyResult* result) {
  for (size_t i = 0; i < pop.users.size(); ++i) {
    Counts& c = result->by_class[pop.users[i].cls];
    ++c.users;
    const double ppud = static_cast<double>(sent_per_user[i]) / days;
    c.ppud_sum += ppud;
    c.ppud_sq += ppud * ppud;
  }
  for (const Counts& c : result->by_class) result->all += c;
}

}  // namespace herald::sim
