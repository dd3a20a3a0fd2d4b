#include "sim/demo.h"

#include <cctz/time_zone.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/log.h"
#include "core/metrics.h"
#include "engine/campaigns.h"
#include "node/node.h"
#include "sim/devices.h"
#include "sim/in_process.h"
#include "sim/population.h"

namespace herald::sim {

using json = nlohmann::json;

namespace {

// Zones where it is day now (09:00–20:00), so that the demo's pushes are not all
// held for quiet hours.
std::vector<std::string> DaytimeZones(Micros now) {
  static const char* kZones[] = {"Asia/Shanghai",   "Asia/Tokyo",       "Asia/Kolkata",     "Asia/Dubai",
                                 "Europe/Moscow",   "Europe/Berlin",    "Europe/London",    "America/Sao_Paulo",
                                 "America/New_York", "America/Chicago", "America/Denver",  "America/Los_Angeles",
                                 "Pacific/Honolulu", "Pacific/Auckland", "Australia/Sydney", "Asia/Singapore"};
  std::vector<std::string> out;
  for (const char* z : kZones) {
    cctz::time_zone tz;
    if (!cctz::load_time_zone(z, &tz)) continue;
    const int h = cctz::convert(std::chrono::system_clock::time_point(std::chrono::microseconds(now)), tz).hour();
    if (h >= 9 && h < 20) out.push_back(z);
  }
  if (out.empty()) out.push_back("UTC");
  return out;
}

}  // namespace

Status RunDemo(node::Node& n, const DemoOptions& o, const std::atomic<bool>& stop) {
  std::string key = n.created_admin_key();
  if (key.empty()) {
    std::ifstream f(n.config().server.data_dir + "/admin.key");
    std::getline(f, key);
  }
  if (key.empty()) return Status::FailedPrecondition("demo: no admin key in the data directory");
  const Micros start = n.clock().Now();
  const std::vector<std::string> zones = DaytimeZones(start);
  Population pop = MakePopulation(o.devices, o.seed, DefaultZones());
  std::vector<SimAccount> accounts;
  for (const SimAccount& a : pop.accounts) {
    if (a.type == "subscription") continue;  // their digest comes at each user's golden hour, not in a minute
    accounts.push_back(a);
    auto [st, body] = Call(n, key, "POST", "/v1/accounts", json{{"id", a.id}, {"type", a.type}, {"name", a.name}}.dump());
    if (st != 200 && st != 201) return Status::Internal("demo: POST /v1/accounts: " + body);
  }
  Devices devices;
  std::vector<size_t> user_of_device;
  auto join = [&](size_t from, size_t to) -> Status {
    json users = json::array(), follows = json::array();
    for (size_t i = from; i < to; ++i) {
      users.push_back({{"id", "demo-" + std::to_string(i)}, {"tz", zones[i % zones.size()]},
                       {"profile", {{"name", "User " + std::to_string(i)}, {"age", pop.users[i % pop.users.size()].age}}}});
      for (size_t a = 0; a < accounts.size(); ++a) {
        if ((i + a) % 3 == 0) continue;  // two thirds follow each account
        follows.push_back({{"user_id", "demo-" + std::to_string(i)}, {"account_id", accounts[a].id},
                           {"followed_at", FormatIsoTime(start - 30 * kMicrosPerDay)}});
      }
    }
    if (Call(n, key, "POST", "/v1/users", json{{"users", users}}.dump()).first != 200) return Status::Internal("demo: POST /v1/users");
    if (Call(n, key, "POST", "/v1/follows", json{{"follows", follows}}.dump()).first != 200) {
      return Status::Internal("demo: POST /v1/follows");
    }
    for (size_t i = from; i < to; ++i) {
      const std::string user = "demo-" + std::to_string(i), device = "demo-dev-" + std::to_string(i);  // the same on each start
      auto [st, body] = Call(n, key, "POST", "/v1/devices", json{{"user_id", user}, {"device_id", device}}.dump());
      if (st != 201) return Status::Internal("demo: POST /v1/devices: " + body);
      devices.Add(user, device, json::parse(body)["token"].get<std::string>());
      user_of_device.push_back(i);
    }
    return Status::Ok();
  };
  devices.SetServer(n.mqtt_endpoint().ToString());
  HERALD_RETURN_IF_ERROR(join(0, o.devices));
  devices.Start();
  std::printf("demo: %zu users with a device each connect over MQTT; %zu accounts post every %d s "
              "(start without the demo: herald serve, or make run SERVE_ARGS=)\n",
              o.devices, accounts.size(), o.interval_s);
  std::fflush(stdout);
  size_t users = o.devices, next_account = 0;
  std::uint64_t delivered = 0, opened = 0, round = 0;
  std::vector<Recent> recent(o.devices * 4);
  auto last_post = std::chrono::steady_clock::now() - std::chrono::seconds(o.interval_s);
  auto last_line = std::chrono::steady_clock::now();
  Counter& m_opened = n.metrics().GetCounter("herald_demo_opened_total", "Pushes the demo's devices opened.");
  while (!stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto now = std::chrono::steady_clock::now();
    if (now - last_post >= std::chrono::seconds(o.interval_s)) {
      last_post = now;
      const SimAccount& a = accounts[next_account++ % accounts.size()];
      json c = {{"account_id", a.id},
                {"target", {{"followers_of", a.id}}},
                {"message", {{"title", a.title}, {"body", "Hello {{user.name}}"}, {"form", a.form}, {"ttl_s", 3600}}}};
      auto [st, body] = Call(n, key, "POST", "/v1/campaigns", c.dump());
      if (st != 201) log::Warn("demo: campaign refused", {{"answer", body}});
      // A few new users join, with their devices (new followers get more pushes).
      if (++round % 2 == 0 && users + 20 <= o.devices * 4) {
        HERALD_RETURN_IF_ERROR(join(users, users + 20));
        users += 20;
      }
    }
    // What reached the devices: acknowledged, and opened as the behaviour model says.
    for (const Devices::Push& p : devices.Take()) {
      ++delivered;
      const size_t i = user_of_device[p.user];
      const SimUser& u = pop.users[i % pop.users.size()];
      const SimAccount* account = &accounts[0];
      for (const SimAccount& a : accounts) {
        if (a.id == p.account_id) account = &a;
      }
      const std::int64_t t = n.clock().Now() / kMicrosPerSecond;
      const int r24 = recent[i].Within(t, 86400);
      recent[i].Add(t);
      // Opens are scaled up threefold so that a minute shows some.
      PushOutcome r = Respond(u, *account, 3, 12, r24, false, Mix(o.seed, std::hash<std::string>()(p.message_id)));
      if (r.opened) {
        ++opened;
        m_opened.Inc();
        devices.Receipt(p.user, json{{"message_id", p.message_id}, {"type", "opened"}}.dump());
      }
    }
    if (now - last_line >= std::chrono::seconds(o.report_s)) {
      last_line = now;
      std::map<std::string, std::uint64_t> suppressed;
      for (const auto& c : n.campaigns().List("default")) {
        for (const auto& [rule, k] : c.suppressed) suppressed[rule] += k;
      }
      std::string rules;
      for (const auto& [rule, k] : suppressed) rules += " " + rule + "=" + std::to_string(k);
      const std::uint64_t sent = n.metrics().GetCounter("herald_engine_dispatched_total", "").Value();
      std::printf("demo: %zu devices (%zu connected): sent %llu, delivered %llu, opened %llu; suppressed:%s\n", users,
                  devices.connected(), static_cast<unsigned long long>(sent), static_cast<unsigned long long>(delivered),
                  static_cast<unsigned long long>(opened), rules.empty() ? " none yet" : rules.c_str());
      std::fflush(stdout);
    }
  }
  return Status::Ok();
}

}  // namespace herald::sim
