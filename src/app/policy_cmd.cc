#include "app/policy_cmd.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "node/config.h"
#include "policy/replay.h"
#include "policy/rules.h"
#include "stream/timezones.h"

namespace herald::app {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

Result<policy::PolicyConfig> PolicyOf(const std::string& file, Micros* lateness = nullptr) {
  node::Config c = node::Config::Defaults();
  if (!file.empty()) {
    auto r = node::Config::FromFile(file);
    if (!r.ok()) return r.status();
    c = *r;
  }
  HERALD_RETURN_IF_ERROR(c.policy.Resolve());
  if (lateness) *lateness = static_cast<Micros>(c.stream.allowed_lateness_s) * kMicrosPerSecond;
  return c.policy;
}

// NDJSON lines of {"id":..,"<key>":..}: fn(id, value) for each.
Status ReadPairs(const std::string& file, const char* key,
                 const std::function<Status(const std::string&, const std::string&)>& fn) {
  std::ifstream in(file);
  if (!in) return Status::InvalidArgument(file + ": cannot open");
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("id") || !j["id"].is_string() || !j.contains(key) || !j[key].is_string()) {
      return Status::InvalidArgument(file + ":" + std::to_string(n) + ": want {\"id\":..,\"" + key + "\":..}");
    }
    HERALD_RETURN_IF_ERROR(fn(j["id"].get<std::string>(), j[key].get<std::string>()));
  }
  return Status::Ok();
}

}  // namespace

int PolicyReplay(const std::vector<std::string>& args) {
  std::string events, alt, current, accounts_file, users_file, tenant = "default";
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&] { return i + 1 < args.size() ? args[++i] : std::string(); };
    if (args[i] == "--events") events = val();
    else if (args[i] == "--config") alt = val();
    else if (args[i] == "--current") current = val();
    else if (args[i] == "--accounts") accounts_file = val();
    else if (args[i] == "--users") users_file = val();
    else if (args[i] == "--tenant") tenant = val();
    else {
      std::fprintf(stderr,
                   "usage: herald policy replay --events FILE|DIR [--config ALT.toml] [--current CUR.toml]\n"
                   "       [--accounts accounts.ndjson] [--users users.ndjson] [--tenant T]\n"
                   "  FILE: NDJSON events (API.md); DIR: a herald data or log directory (stopped)\n"
                   "  --current: the config in use (default: the built-in defaults)\n"
                   "  --accounts: lines {\"id\":..,\"type\":\"service|subscription|business|ad\"}\n"
                   "  --users: lines {\"id\":..,\"tz\":\"Asia/Shanghai\"}\n");
      return 2;
    }
  }
  if (events.empty()) {
    std::fprintf(stderr, "herald policy replay: --events is required (see --help)\n");
    return 2;
  }
  std::vector<policy::PolicyConfig> configs;
  std::vector<std::string> names;
  Micros lateness = 600 * kMicrosPerSecond;
  for (const auto& [name, file] : {std::pair{std::string("current"), current}, std::pair{std::string("alternative"), alt}}) {
    if (name == "alternative" && file.empty()) continue;
    auto c = PolicyOf(file, name == "current" ? &lateness : nullptr);
    if (!c.ok()) {
      std::fprintf(stderr, "herald policy replay: %s\n", c.status().message().c_str());
      return 2;
    }
    configs.push_back(*c);
    names.push_back(name);
  }
  std::unordered_map<std::string, policy::AccountType> accounts;
  if (!accounts_file.empty()) {
    Status s = ReadPairs(accounts_file, "type", [&](const std::string& id, const std::string& type) {
      policy::AccountType t;
      if (!policy::ParseAccountType(type, &t)) return Status::InvalidArgument("account " + id + ": unknown type " + type);
      accounts[id] = t;
      return Status::Ok();
    });
    if (!s.ok()) {
      std::fprintf(stderr, "herald policy replay: %s\n", s.message().c_str());
      return 2;
    }
  }
  policy::Replay replay(configs, tenant, std::move(accounts), lateness);
  if (!users_file.empty()) {
    Status s = ReadPairs(users_file, "tz", [&](const std::string& id, const std::string& tz) {
      if (!stream::ValidTimeZone(tz)) return Status::InvalidArgument("user " + id + ": unknown time zone " + tz);
      replay.SetZone(id, tz);
      return Status::Ok();
    });
    if (!s.ok()) {
      std::fprintf(stderr, "herald policy replay: %s\n", s.message().c_str());
      return 2;
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  Status s = policy::ReplayFrom(events, replay);
  if (!s.ok()) {
    std::fprintf(stderr, "herald policy replay: %s\n", s.message().c_str());
    return 1;
  }
  auto totals = replay.Finish();
  std::string out = policy::FormatReplay(names, totals, replay, Seconds(t0));
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int BenchPolicy(const std::vector<std::string>& args) {
  size_t users = 100'000, follows = 10, replay_events = 0;
  double seconds = 3;
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&] { return i + 1 < args.size() ? args[++i] : std::string("0"); };
    if (args[i] == "--users") users = std::stoul(val());
    else if (args[i] == "--follows") follows = std::stoul(val());
    else if (args[i] == "--seconds") seconds = std::stod(val());
    else if (args[i] == "--replay-events") replay_events = std::stoul(val());
    else {
      std::fprintf(stderr, "usage: herald bench policy [--users N] [--follows F] [--seconds S] [--replay-events N]\n");
      return 2;
    }
  }
  policy::PolicyConfig cfg;
  (void)cfg.Resolve();
  std::mt19937_64 rng(42);
  const char* zones[] = {"Asia/Shanghai", "America/Los_Angeles", "Europe/Berlin", "America/New_York"};
  const Micros now = 1772366400LL * kMicrosPerSecond;  // 2026-03-01T12:00:00Z
  struct U {
    policy::UserPolicy user;
    std::vector<policy::FollowPolicy> follows;
    const cctz::time_zone* tz;
  };
  std::vector<U> state(users);
  for (size_t i = 0; i < users; ++i) {
    U& u = state[i];
    u.tz = &stream::TimeZoneOrUtc(zones[i % 4]);
    u.follows.resize(follows);
    for (size_t f = 0; f < follows; ++f) {
      u.follows[f].account = policy::AccountKey("acct" + std::to_string((i + f * 7) % 1000));
      policy::ApplyFollow(u.follows[f], now - static_cast<Micros>(rng() % 60) * 86400 * kMicrosPerSecond);
    }
    const int sends = static_cast<int>(rng() % 12);
    for (int s = 0; s < sends; ++s) {
      Micros at = now - static_cast<Micros>(rng() % (10 * 86400)) * kMicrosPerSecond;
      policy::ApplySend(u.user, &u.follows[rng() % follows], policy::AccountType::kService, policy::Lane::kMarketing,
                        static_cast<std::uint32_t>(rng()), 0, 0, at, *u.tz, cfg);
    }
    if (rng() % 3 == 0) policy::ApplyOpen(u.user, 0, now - 3600 * kMicrosPerSecond);
  }
  // Candidates drawn up front, so the loop measures Decide alone: in campaign order
  // (a campaign walks a partition's users in turn, each with one account) and at
  // random (single pushes to any user).
  auto run = [&](bool in_order) {
    std::vector<std::pair<std::uint32_t, std::uint32_t>> picks(1 << 20);
    for (size_t k = 0; k < picks.size(); ++k) {
      picks[k] = {static_cast<std::uint32_t>(in_order ? k % users : rng() % users),
                  static_cast<std::uint32_t>(rng() % follows)};
    }
    policy::Candidate c;
    std::uint64_t n = 0, allowed = 0;
    auto t0 = std::chrono::steady_clock::now();
    double elapsed = 0;
    while (elapsed < seconds) {
      for (size_t k = 0; k < picks.size(); ++k) {
        const U& u = state[picks[k].first];
        const policy::FollowPolicy& f = u.follows[picks[k].second];
        c.account.key = f.account;
        c.account.type = (k & 3) == 0 ? policy::AccountType::kService : policy::AccountType::kBusiness;
        c.user_hash = picks[k].first;
        const Micros at = now + static_cast<Micros>(k & 0xffff) * kMicrosPerSecond;
        allowed += policy::Decide(u.user, &f, c, at, *u.tz, cfg).verdict == policy::Verdict::kAllow;
      }
      n += picks.size();
      elapsed = Seconds(t0);
    }
    return std::pair<double, double>{static_cast<double>(n) / elapsed,
                                     static_cast<double>(allowed) / static_cast<double>(n)};
  };
  auto [ordered, allowed_share] = run(true);
  auto [random, random_allowed] = run(false);
  (void)random_allowed;
  std::printf("{\"decisions_per_s\":%.0f,\"ns_per_decision\":%.1f,\"random_decisions_per_s\":%.0f,"
              "\"allowed_share\":%.3f,\"users\":%zu,"
              "\"follows_per_user\":%zu,\"user_state_bytes\":%zu,\"follow_state_bytes\":%zu,"
              "\"user_record_bytes\":%zu,\"follow_record_bytes\":%zu",
              ordered, 1e9 / ordered, random, allowed_share, users, follows, sizeof(policy::UserPolicy),
              sizeof(policy::FollowPolicy), policy::SerializeUser(policy::UserPolicy{}).size(),
              policy::SerializeFollow(policy::FollowPolicy{}).size());
  if (replay_events) {
    // A month of history: follows, then sends with their deliveries and some opens.
    auto path = std::filesystem::temp_directory_path() / ("herald-replay-" + std::to_string(::getpid()) + ".ndjson");
    {
      std::FILE* out = std::fopen(path.c_str(), "w");
      if (!out) return 1;
      const size_t n_users = std::max<size_t>(1, replay_events / 20);
      const long start = 1772323200;  // 2026-03-01T00:00:00Z
      std::uniform_int_distribution<int> kind(0, 99);
      for (size_t i = 0; i < replay_events; ++i) {
        const long ts = start + static_cast<long>(static_cast<double>(i) * 30 * 86400 / static_cast<double>(replay_events));
        const size_t user = rng() % n_users;
        const int k = kind(rng);
        // Each user follows 8 of the 200 accounts, and pushes come from those.
        const unsigned account = static_cast<unsigned>((user * 7 + (rng() % 8) * 25) % 200);
        if (i < n_users) {
          std::fprintf(out, "{\"user_id\":\"u%zu\",\"type\":\"follow\",\"ts\":%ld,\"account_id\":\"a%zu\"}\n", i, ts,
                       (i * 7) % 200);
        } else if (k < 45) {
          std::fprintf(out, "{\"user_id\":\"u%zu\",\"type\":\"sent\",\"ts\":%ld,\"account_id\":\"a%u\",\"message_id\":\"m%zu\"}\n",
                       user, ts, account, i);
        } else if (k < 80) {
          std::fprintf(out, "{\"user_id\":\"u%zu\",\"type\":\"delivered\",\"ts\":%ld,\"message_id\":\"m%zu\"}\n", user,
                       ts, i - 1);
        } else if (k < 92) {
          std::fprintf(out, "{\"user_id\":\"u%zu\",\"type\":\"opened\",\"ts\":%ld,\"message_id\":\"m%zu\"}\n", user,
                       ts, i - 2);
        } else {
          std::fprintf(out, "{\"user_id\":\"u%zu\",\"type\":\"app_open\",\"ts\":%ld}\n", user, ts);
        }
      }
      std::fclose(out);
    }
    policy::PolicyConfig strict = cfg;
    strict.daily_cap = 3;
    policy::Replay replay({cfg, strict}, "default", {});
    auto r0 = std::chrono::steady_clock::now();
    Status s = policy::ReplayFrom(path.string(), replay);
    auto totals = replay.Finish();
    const double rs = Seconds(r0);
    std::filesystem::remove(path);
    if (!s.ok()) {
      std::fprintf(stderr, "replay: %s\n", s.message().c_str());
      return 1;
    }
    std::printf(",\"replay_events\":%llu,\"replay_seconds\":%.2f,\"replay_events_per_s\":%.0f,\"replay_configs\":2",
                static_cast<unsigned long long>(replay.events()), rs, static_cast<double>(replay.events()) / rs);
    (void)totals;
  }
  std::printf("}\n");
  return 0;
}

}  // namespace herald::app
