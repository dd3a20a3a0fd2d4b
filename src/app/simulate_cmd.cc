#include "app/simulate_cmd.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "sim/report.h"
#include "sim/simulator.h"

namespace herald::app {

int Simulate(const SimulateFlags& f, const char* argv0) {
  sim::SimOptions o;
  o.users = f.users;
  o.days = f.days;
  o.seed = f.seed;
  o.through_mqtt = f.through_mqtt;
  o.faults = !f.no_faults;
  o.progress = !f.quiet;
  o.strategies.clear();
  for (const std::string& list : f.strategies) {
    size_t from = 0;
    while (from <= list.size()) {
      const size_t comma = list.find(',', from);
      const std::string s = list.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
      if (!s.empty()) o.strategies.push_back(s);
      if (comma == std::string::npos) break;
      from = comma + 1;
    }
  }
  if (o.strategies.empty()) o.strategies = {"herald"};
  if (!f.zones.empty()) {
    auto z = sim::ParseZones(f.zones);
    if (!z.ok()) {
      std::fprintf(stderr, "herald simulate: %s\n", z.status().message().c_str());
      return 2;
    }
    o.zones = std::move(*z);
  }
  // Through MQTT, this same binary serves.
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  o.herald_bin = ec ? std::string(argv0) : self.string();
  auto r = sim::Simulate(o);
  if (!r.ok()) {
    std::fprintf(stderr, "herald simulate: %s\n", r.status().message().c_str());
    return r.status().code() == Code::kInvalidArgument ? 2 : 1;
  }
  for (const auto& s : *r) {
    const auto& c = s.all;
    auto rate = [](std::uint64_t a, std::uint64_t b) { return b ? 100.0 * static_cast<double>(a) / static_cast<double>(b) : 0.0; };
    std::printf("%s: %llu users x %d days in %.1f s (%.0f user-days/s): %.2f pushes/user/day, open rate %.2f%%, "
                "CTR %.2f%%, delivered %.3f%% (within TTL %.3f%%), uninstalled %.2f%%, not interested %.2f%%, "
                "complained %.2f%%\n",
                s.name.c_str(), static_cast<unsigned long long>(c.users), o.days, s.seconds,
                static_cast<double>(c.users) * o.days / std::max(s.seconds, 1e-9), c.ppud_sum / std::max<double>(1, static_cast<double>(c.users)),
                rate(c.opened, c.delivered), rate(c.clicked, c.delivered), rate(c.delivered, c.sent),
                rate(c.delivered_in_ttl, c.sent - std::min(c.sent, c.unreachable)), rate(c.uninstalled, c.users), rate(c.not_interested, c.users),
                rate(c.complained, c.users));
  }
  if (!f.report.empty()) {
    Status s = sim::WriteReport(f.report, o, *r);
    if (!s.ok()) {
      std::fprintf(stderr, "herald simulate: %s\n", s.message().c_str());
      return 1;
    }
    std::printf("report: %s/report.html\n", f.report.c_str());
  }
  return 0;
}

}  // namespace herald::app
