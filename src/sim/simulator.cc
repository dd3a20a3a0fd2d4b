#include "sim/simulator.h"

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "api/http.h"
#include "api/router.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/time_format.h"
#include "engine/campaigns.h"
#include "engine/digest.h"
#include "engine/engine.h"
#include "node/node.h"
#include "sim/in_process.h"
#include "sim/mqtt_run.h"
#include "sim/strategy.h"
#include "stream/pipeline.h"

namespace herald::sim {

using json = nlohmann::json;

const std::vector<std::string>& StrategyNames() {
  static const std::vector<std::string> k = {"blast", "fixed-caps", "herald", "herald-no-sendtime"};
  return k;
}

Counts& Counts::operator+=(const Counts& o) {
  users += o.users;
  sent += o.sent;
  delivered += o.delivered;
  delivered_in_ttl += o.delivered_in_ttl;
  opened += o.opened;
  clicked += o.clicked;
  converted += o.converted;
  uninstalled += o.uninstalled;
  not_interested += o.not_interested;
  complained += o.complained;
  unreachable += o.unreachable;
  gmv += o.gmv;
  for (size_t h = 0; h < 24; ++h) {
    delivered_by_hour[h] += o.delivered_by_hour[h];
    opened_by_hour[h] += o.opened_by_hour[h];
  }
  ppud_sum += o.ppud_sum;
  ppud_sq += o.ppud_sq;
  return *this;
}

namespace {

constexpr const char* kTenant = "default";

// The population's zones, loaded once.
struct Zones {
  std::vector<cctz::time_zone> tz;
  explicit Zones(const std::vector<ZoneShare>& z) {
    for (const auto& s : z) {
      cctz::time_zone t;
      cctz::load_time_zone(s.zone, &t);
      tz.push_back(t);
    }
  }
  int Hour(size_t zone, Micros t) const {
    const auto l = cctz::convert(std::chrono::system_clock::time_point(std::chrono::microseconds(t)), tz[zone]);
    return l.hour();
  }
};

class Run {
 public:
  Run(const SimOptions& o, const Population& pop, std::string strategy)
      : o_(o), pop_(pop), name_(std::move(strategy)), spec_(SpecOf(name_)), zones_(pop.zones) {}

  Result<StrategyResult> Go();

 private:
  Status Setup();
  Status CreateCampaigns(int day, int minute_of_day, Micros now);
  void Activity(int step, Micros now, std::vector<stream::Event>* out);
  void HandlePushes(int step, Micros now, std::vector<mqtt::PushMessage> pushes);
  Status IngestAndWait(std::vector<stream::Event> events);
  void Quiesce();
  std::uint64_t Counter(const char* name) { return node_->metrics().GetCounter(name, "").Value(); }
  stream::Event Ev(size_t user, stream::EventType type, Micros ts) const {
    stream::Event e;
    e.tenant = kTenant;
    e.user_id = pop_.UserId(user);
    e.type = type;
    e.ts = ts;
    return e;
  }

  const SimOptions& o_;
  const Population& pop_;
  std::string name_;
  Spec spec_;
  Zones zones_;
  std::string dir_, key_;
  std::unique_ptr<node::Node> node_;
  std::mutex pushes_mu_;
  std::vector<mqtt::PushMessage> pushes_;
  std::vector<std::string> planning_;  // campaigns created this step
  // The users' state as the simulator plays them.
  std::vector<Recent> recent_;
  std::vector<std::uint32_t> sent_;
  std::vector<std::uint8_t> marks_;  // 1 uninstalled, 2 not interested, 4 complained
  std::vector<std::vector<stream::Event>> later_;  // outcome events by step
  StrategyResult result_;
  std::uint64_t pushes_total_ = 0;
  std::chrono::steady_clock::time_point started_;
};

Status Run::Setup() {
  dir_ = (std::filesystem::path(o_.work_dir.empty() ? std::filesystem::temp_directory_path().string() : o_.work_dir) /
          ("herald-sim-" + std::to_string(::getpid()) + "-" + name_))
             .string();
  std::filesystem::remove_all(dir_);
  auto started = node::Node::Start(ConfigOf(spec_, dir_, pop_.users.size()),
                                   {.http = false, .mqtt = false, .engine_seed = Mix(o_.seed, 0x51)});
  if (!started.ok()) return started.status();
  node_ = std::move(*started);
  key_ = node_->created_admin_key();
  node_->engine().SetDeliver(
      [this](mqtt::PushMessage m, mqtt::DeliveryCallback) {
        std::lock_guard<std::mutex> l(pushes_mu_);
        pushes_.push_back(std::move(m));
        return Status::Ok();
      },
      [this](std::vector<mqtt::PushMessage>& batch) {
        std::lock_guard<std::mutex> l(pushes_mu_);
        for (auto& m : batch) pushes_.push_back(std::move(m));
        batch.clear();
        return Status::Ok();
      });
  for (size_t a = 0; a < pop_.accounts.size(); ++a) {
    const SimAccount& acct = pop_.accounts[a];
    std::string type = acct.type == "subscription" && !spec_.digest ? "business" : acct.type;
    auto [st, body] = Call(*node_, key_, "POST", "/v1/accounts",
                           json{{"id", acct.id}, {"type", type}, {"name", acct.name}}.dump());
    if (st != 200 && st != 201) return Status::Internal("POST /v1/accounts: " + body);
  }
  const Micros followed = kStart - 60 * kMicrosPerDay;
  for (size_t b = 0; b < pop_.users.size(); b += 5000) {
    json users = json::array(), follows = json::array();
    for (size_t i = b; i < std::min(pop_.users.size(), b + 5000); ++i) {
      const SimUser& u = pop_.users[i];
      users.push_back({{"id", pop_.UserId(i)}, {"tz", pop_.zones[u.zone].zone}, {"profile", json::parse(ProfileJson(u, kStart))}});
      for (const auto& [a, affinity] : u.follows) {
        follows.push_back({{"user_id", pop_.UserId(i)}, {"account_id", pop_.accounts[a].id},
                           {"followed_at", FormatIsoTime(followed)}});
      }
    }
    auto [st, body] = Call(*node_, key_, "POST", "/v1/users", json{{"users", users}}.dump());
    if (st != 200) return Status::Internal("POST /v1/users: " + body);
    if (!follows.empty()) {
      auto [fs, fb] = Call(*node_, key_, "POST", "/v1/follows", json{{"follows", follows}}.dump());
      if (fs != 200) return Status::Internal("POST /v1/follows: " + fb);
    }
  }
  Quiesce();
  return Status::Ok();
}

Status Run::CreateCampaigns(int day, int minute_of_day, Micros now) {
  for (const SimAccount& a : pop_.accounts) {
    if (a.local_minute != minute_of_day || day % a.every_days != 0) continue;
    json c = {{"account_id", a.id},
              {"target", {{"followers_of", a.id}}},
              {"message", {{"title", a.title}, {"form", a.form}, {"ttl_s", 86400}, {"deep_link", "app://" + a.id}}}};
    if (a.type == "subscription" && spec_.digest) {
      c["schedule"] = {{"type", "digest"}};
    } else if (spec_.window) {
      // The golden window: from the post's time until 22:00 (or the next 22:00).
      const Micros to = now + std::max<Micros>(2 * kMicrosPerHour, (22 * 60 - minute_of_day) * kMicrosPerMinute);
      c["schedule"] = {{"type", "window"}, {"from", FormatIsoTime(now)}, {"to", FormatIsoTime(to)}};
    }
    auto [st, body] = Call(*node_, key_, "POST", "/v1/campaigns", c.dump());
    if (st != 201) return Status::Internal("POST /v1/campaigns: " + body);
    planning_.push_back(json::parse(body)["id"].get<std::string>());
  }
  return Status::Ok();
}

void Run::Activity(int step, Micros now, std::vector<stream::Event>* out) {
  const auto& cs = Classes();
  std::vector<int> hour(pop_.zones.size());
  for (size_t z = 0; z < hour.size(); ++z) hour[z] = zones_.Hour(z, now);
  for (size_t i = 0; i < pop_.users.size(); ++i) {
    if (marks_[i] & 1) continue;  // uninstalled
    const SimUser& u = pop_.users[i];
    const double lambda = cs[u.cls].app_opens * u.activity * ActivityShare(u.cls, hour[u.zone]) / 2;
    std::uint64_t s = Mix(Mix(o_.seed, i), 0xA000000ULL + static_cast<std::uint64_t>(step));
    if (Uniform(s) < lambda) out->push_back(Ev(i, stream::EventType::kAppOpen, now));
  }
}

void Run::HandlePushes(int step, Micros now, std::vector<mqtt::PushMessage> pushes) {
  // In the order of the users and messages, whatever order herald's threads used.
  std::sort(pushes.begin(), pushes.end(), [](const mqtt::PushMessage& a, const mqtt::PushMessage& b) {
    return std::tie(a.user_id, a.campaign_id, a.account_id, a.message_id) <
           std::tie(b.user_id, b.campaign_id, b.account_id, b.message_id);
  });
  std::vector<stream::Event> now_events;
  const std::int64_t now_s = now / kMicrosPerSecond;
  for (const mqtt::PushMessage& m : pushes) {
    if (m.user_id.size() < 5) continue;
    const size_t i = std::stoul(m.user_id.substr(4));
    if (i >= pop_.users.size()) continue;
    const SimUser& u = pop_.users[i];
    ++pushes_total_;
    ++sent_[i];
    Counts& c = result_.by_class[u.cls];
    ++c.sent;
    auto ev = [&](stream::EventType t) {
      stream::Event e = Ev(i, t, now);
      e.message_id = m.message_id;
      e.account_id = m.account_id;
      e.campaign_id = m.campaign_id;
      return e;
    };
    if (marks_[i] & 1) {
      ++c.unreachable;
      now_events.push_back(ev(stream::EventType::kRefused));  // no device: uninstalled
      continue;
    }
    now_events.push_back(ev(stream::EventType::kDelivered));
    ++c.delivered;
    if (m.expires_at == 0 || now <= m.expires_at) ++c.delivered_in_ttl;
    const int hour = zones_.Hour(u.zone, now);
    ++c.delivered_by_hour[static_cast<size_t>(hour)];
    const PushOutcome r = RespondToPush(pop_, i, m.account_id, hour, now_s, recent_[i],
                                        Mix(Mix(o_.seed, i), std::hash<std::string>()(m.message_id)));
    if (r.opened) {
      ++c.opened;
      ++c.opened_by_hour[static_cast<size_t>(hour)];
      auto& at = r.delay_steps == 0 ? now_events : later_[static_cast<size_t>(step + r.delay_steps) % later_.size()];
      const Micros ts = now + r.delay_steps * kStep;
      stream::Event e = ev(stream::EventType::kOpened);
      e.ts = ts;
      at.push_back(e);
      if (r.clicked) {
        ++c.clicked;
        e.type = stream::EventType::kClicked;
        at.push_back(e);
      }
      if (r.converted) {
        ++c.converted;
        c.gmv += r.gmv;
        e.type = stream::EventType::kConverted;
        e.attrs = json{{"value", std::round(r.gmv * 100) / 100}}.dump();
        at.push_back(e);
      }
      continue;
    }
    if (r.not_interested) {
      now_events.push_back(ev(stream::EventType::kNotInterested));
      if (!(marks_[i] & 2)) ++c.not_interested;
      marks_[i] |= 2;
    }
    if (r.complaint) {
      now_events.push_back(ev(stream::EventType::kComplaint));
      if (!(marks_[i] & 4)) ++c.complained;
      marks_[i] |= 4;
    }
    if (r.uninstall) {
      now_events.push_back(Ev(i, stream::EventType::kUninstall, now));
      ++c.uninstalled;
      marks_[i] |= 1;
    }
  }
  if (!now_events.empty()) (void)IngestAndWait(std::move(now_events));
}

Status Run::IngestAndWait(std::vector<stream::Event> events) {
  for (size_t b = 0; b < events.size(); b += 20000) {
    std::vector<stream::Event> chunk(std::make_move_iterator(events.begin() + static_cast<long>(b)),
                                     std::make_move_iterator(events.begin() + static_cast<long>(std::min(events.size(), b + 20000))));
    std::promise<Status> done;
    node_->pipeline().Ingest(std::move(chunk), [&](Status s) { done.set_value(s); });
    HERALD_RETURN_IF_ERROR(done.get_future().get());
  }
  return Status::Ok();
}

void Run::Quiesce() {
  // Until the campaigns created have been planned and sent or scheduled, every
  // event appended is applied, and nothing moves for a few polls.
  for (const std::string& id : planning_) {
    while (true) {
      auto c = node_->campaigns().Find(kTenant, id);
      if (!c || c->status != "planning") break;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
  planning_.clear();
  std::array<std::uint64_t, 6> last{};
  int still = 0;
  while (still < 3) {
    std::array<std::uint64_t, 6> v = {Counter("herald_stream_events_ingested_total"),
                                      Counter("herald_stream_events_applied_total") + Counter("herald_stream_late_events_total"),
                                      Counter("herald_engine_fired_total"), Counter("herald_engine_dispatched_total"),
                                      Counter("herald_engine_planned_total"), 0};
    {
      std::lock_guard<std::mutex> l(pushes_mu_);
      v[5] = pushes_.size();
    }
    still = v == last && v[0] == v[1] ? still + 1 : 0;
    if (still == 3 && !node_->engine().Settled(node_->clock().Now())) still = 0;
    last = v;
    std::this_thread::sleep_for(std::chrono::microseconds(still ? 700 : 300));
  }
}

Result<StrategyResult> Run::Go() {
  started_ = std::chrono::steady_clock::now();
  result_.name = name_;
  const size_t n = pop_.users.size();
  recent_.assign(n, Recent{});
  sent_.assign(n, 0);
  marks_.assign(n, 0);
  later_.assign(4, {});
  HERALD_RETURN_IF_ERROR(Setup());
  std::uint64_t trainings = Counter("herald_model_trainings_total");
  const int steps = o_.days * kStepsPerDay;
  for (int step = 0; step < steps; ++step) {
    const Micros now = kStart + step * kStep;
    if (step) node_->virtual_clock()->Set(now);
    // The daily training runs at 03:00 UTC: its model scores what follows.
    if ((now / kMicrosPerSecond) % 86400 == 3 * 3600) {
      ++trainings;
      while (Counter("herald_model_trainings_total") < trainings) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::vector<stream::Event> events = std::move(later_[static_cast<size_t>(step) % later_.size()]);
    later_[static_cast<size_t>(step) % later_.size()].clear();
    Activity(step, now, &events);
    HERALD_RETURN_IF_ERROR(IngestAndWait(std::move(events)));
    const int day = step / kStepsPerDay, minute = (step % kStepsPerDay) * 30;
    HERALD_RETURN_IF_ERROR(CreateCampaigns(day, minute, now));
    Quiesce();
    std::vector<mqtt::PushMessage> pushes;
    {
      std::lock_guard<std::mutex> l(pushes_mu_);
      pushes.swap(pushes_);
    }
    HandlePushes(step, now, std::move(pushes));
    Quiesce();
    if (o_.progress && (step + 1) % kStepsPerDay == 0) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
      std::fprintf(stderr, "simulate %s: day %d/%d, %zu users, %llu pushes, %.1f s\n", name_.c_str(), day + 1, o_.days,
                   n, static_cast<unsigned long long>(pushes_total_), s);
    }
  }
  // What herald suppressed, by rule.
  auto list = node_->campaigns().List(kTenant);
  for (const auto& c : list) {
    for (const auto& [rule, k] : c.suppressed) result_.suppressed[rule] += k;
  }
  (void)node_->Stop();
  node_.reset();
  std::filesystem::remove_all(dir_);
  std::error_code ec;
  std::filesystem::remove(dir_ + ".privacy.key", ec);
  CountUsers(pop_, sent_, o_.days, &result_);
  result_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return result_;
}

}  // namespace

Result<std::vector<StrategyResult>> Simulate(const SimOptions& o) {
  for (const auto& s : o.strategies) {
    if (std::find(StrategyNames().begin(), StrategyNames().end(), s) == StrategyNames().end()) {
      return Status::InvalidArgument("--strategy: unknown strategy " + s +
                                     " (blast, fixed-caps, herald, herald-no-sendtime)");
    }
  }
  if (o.users == 0 || o.users > 10'000'000) return Status::InvalidArgument("--users: must be 1..10000000");
  if (o.days < 1 || o.days > 365) return Status::InvalidArgument("--days: must be 1..365");
  log::SetLevel(log::Level::kError);  // herald's own lines would drown the progress
  const Population pop = MakePopulation(o.users, o.seed, o.zones);
  std::vector<StrategyResult> out;
  for (const auto& s : o.strategies) {
    Result<StrategyResult> r = o.through_mqtt ? SimulateThroughMqtt(o, pop, s) : Run(o, pop, s).Go();
    if (!r.ok()) return Status(r.status().code(), s + ": " + r.status().message());
    out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace herald::sim
