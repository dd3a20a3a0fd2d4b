#include "sim/mqtt_run.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctz/time_zone.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/time_format.h"
#include "sim/devices.h"
#include "sim/strategy.h"

namespace herald::sim {

using json = nlohmann::json;

namespace {


// `herald serve` as a child process on the virtual clock.
class Server {
 public:
  Server(std::string bin, std::string dir, std::string config) : bin_(std::move(bin)), dir_(std::move(dir)), config_(std::move(config)) {}
  ~Server() { Kill(); }

  // Starts it (on the ports of the previous start, if any) and reads its listening line.
  Status Start() {
    int out[2];
    if (::pipe(out) != 0) return Status::IoError("pipe");
    const std::string http = http_.empty() ? "127.0.0.1:0" : http_, mqtt = mqtt_.empty() ? "127.0.0.1:0" : mqtt_;
    pid_ = ::fork();
    if (pid_ < 0) return Status::IoError("fork");
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 2);
      ::close(out[0]);
      ::execl(bin_.c_str(), bin_.c_str(), "serve", "--virtual-clock", "--data-dir", dir_.c_str(), "--http-listen",
              http.c_str(), "--mqtt-listen", mqtt.c_str(), "--ws-listen", "127.0.0.1:0", "--config", config_.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char c;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline && ::read(out[0], &c, 1) == 1) {
      if (c != '\n') {
        line.push_back(c);
        continue;
      }
      if (line.rfind("listening ", 0) == 0) break;
      line.clear();
    }
    out_ = out[0];
    // "listening http=H:P mqtt=H:P ws=..."
    auto field = [&](const char* key) {
      const size_t at = line.find(key);
      if (at == std::string::npos) return std::string();
      const size_t from = at + std::strlen(key), to = line.find(' ', from);
      return line.substr(from, to == std::string::npos ? std::string::npos : to - from);
    };
    http_ = field("http=");
    mqtt_ = field("mqtt=");
    if (http_.empty() || mqtt_.empty()) return Status::Unavailable("herald serve did not start: " + line);
    std::ifstream key(dir_ + "/admin.key");
    std::getline(key, key_);
    return Status::Ok();
  }
  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (out_ >= 0) ::close(out_);
    out_ = -1;
  }
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (out_ >= 0) ::close(out_);
    out_ = -1;
  }
  const std::string& http() const { return http_; }
  const std::string& mqtt() const { return mqtt_; }
  const std::string& key() const { return key_; }

 private:
  std::string bin_, dir_, config_, http_, mqtt_, key_;
  pid_t pid_ = -1;
  int out_ = -1;
};

// One HTTP/1.1 request on its own connection: (status, body); status 0 when the
// server could not be reached.
std::pair<int, std::string> Http(const std::string& addr, const std::string& key, const char* method,
                                 const std::string& path, const std::string& body = {}) {
  sockaddr_in a;
  if (!Address(addr, &a)) return {0, ""};
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {0, ""};
  timeval tv{60, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return {0, ""};
  }
  std::string req = std::string(method) + " " + path + " HTTP/1.1\r\nHost: " + addr +
                    "\r\nConnection: close\r\nAuthorization: Bearer " + key +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                    body;
  for (size_t sent = 0; sent < req.size();) {
    const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return {0, ""};
    }
    sent += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  const size_t sp = resp.find(' '), head = resp.find("\r\n\r\n");
  if (sp == std::string::npos || head == std::string::npos) return {0, ""};
  return {std::atoi(resp.c_str() + sp + 1), resp.substr(head + 4)};
}

// The strategy's configuration as herald serve reads it: the same settings as the
// fast mode's, plus what this run needs (every decision kept for the count of
// what was sent, checkpoints every 10 minutes of virtual time).
std::string ConfigText(const std::string& strategy, const std::string& dir, size_t users) {
  node::Config c = ConfigOf(SpecOf(strategy), dir, users);
  c.stream.checkpoint_interval_ms = 600'000;
  c.policy.decisions_kept = 1000;
  return node::Schema().Render(c, "");
}

}  // namespace

Result<StrategyResult> SimulateThroughMqtt(const SimOptions& o, const Population& pop, const std::string& strategy) {
  const auto started = std::chrono::steady_clock::now();
  const size_t n = pop.users.size();
  if (n > 15000) return Status::InvalidArgument("--through-mqtt: at most 15000 devices in one process (--users)");
  const Spec spec = SpecOf(strategy);
  const bool digest = spec.digest, window = spec.window;
  const std::string base =
      (std::filesystem::path(o.work_dir.empty() ? std::filesystem::temp_directory_path().string() : o.work_dir) /
       ("herald-sim-mqtt-" + std::to_string(::getpid()) + "-" + strategy))
          .string();
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  const std::string config = base + "/herald.toml", dir = base + "/data";
  {
    std::ofstream f(config);
    f << ConfigText(strategy, dir, n);
  }
  Server server(o.herald_bin, dir, config);
  HERALD_RETURN_IF_ERROR(server.Start());
  auto call = [&](const char* method, const std::string& path, const std::string& body = {}) {
    return Http(server.http(), server.key(), method, path, body);
  };
  StrategyResult result;
  result.name = strategy;
  // Accounts, users, follows and one device per user, through the API.
  for (size_t a = 0; a < pop.accounts.size(); ++a) {
    const SimAccount& acct = pop.accounts[a];
    const std::string type = acct.type == "subscription" && !digest ? "business" : acct.type;
    auto [st, body] = call("POST", "/v1/accounts", json{{"id", acct.id}, {"type", type}, {"name", acct.name}}.dump());
    if (st != 200 && st != 201) return Status::Internal("POST /v1/accounts: " + body);
  }
  const auto& cs = Classes();
  for (size_t b = 0; b < n; b += 2000) {
    json users = json::array(), follows = json::array();
    for (size_t i = b; i < std::min(n, b + 2000); ++i) {
      const SimUser& u = pop.users[i];
      users.push_back({{"id", pop.UserId(i)}, {"tz", pop.zones[u.zone].zone}, {"profile", json::parse(ProfileJson(u, kStart))}});
      for (const auto& [a, f] : u.follows) {
        follows.push_back({{"user_id", pop.UserId(i)}, {"account_id", pop.accounts[a].id},
                           {"followed_at", FormatIsoTime(kStart - 60 * kMicrosPerDay)}});
      }
    }
    if (call("POST", "/v1/users", json{{"users", users}}.dump()).first != 200) return Status::Internal("POST /v1/users");
    if (!follows.empty() && call("POST", "/v1/follows", json{{"follows", follows}}.dump()).first != 200) {
      return Status::Internal("POST /v1/follows");
    }
  }
  Devices devices(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string device = "dev-" + std::to_string(i);
    auto [st, body] = call("POST", "/v1/devices", json{{"user_id", pop.UserId(i)}, {"device_id", device}}.dump());
    if (st != 201) return Status::Internal("POST /v1/devices: " + body);
    devices.SetCredentials(i, pop.UserId(i), device, json::parse(body)["token"].get<std::string>());
  }
  devices.SetServer(server.mqtt());
  devices.Start();
  for (int k = 0; k < 2000 && devices.connected() < n; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(10));

  std::vector<Recent> recent(n);
  std::vector<std::uint8_t> marks(n, 0);
  std::vector<Micros> uninstalled_at(n, 0), back_at(n, 0);
  std::vector<std::uint32_t> sent_per_user(n, 0);
  std::vector<std::vector<std::pair<size_t, std::string>>> later(4);  // receipts by step
  std::unordered_map<std::string, Micros> arrived;  // message id -> virtual time it reached its device
  std::vector<std::string> campaigns;
  cctz::time_zone shanghai;
  cctz::load_time_zone("Asia/Shanghai", &shanghai);
  std::vector<cctz::time_zone> zones;
  for (const auto& z : pop.zones) {
    cctz::time_zone t;
    cctz::load_time_zone(z.zone, &t);
    zones.push_back(t);
  }
  auto hour_of = [&](size_t zone, Micros t) {
    return cctz::convert(std::chrono::system_clock::time_point(std::chrono::microseconds(t)), zones[zone]).hour();
  };
  const int steps = o.days * kStepsPerDay;
  // The restart comes halfway, just after the clock got there, while the
  // schedule's entries due then (deferred ones, digests) are being fired and
  // delivered.
  const int restart_at = steps / 2;
  std::uint64_t pushes = 0;
  for (int step = 0; step < steps; ++step) {
    const Micros now = kStart + step * kStep;
    // What reached the devices since the last look came while herald's clock was
    // still at the previous step: stamped with that time.
    std::vector<Devices::Push> before = devices.Take();
    if (step && call("POST", "/v1/admin/clock", json{{"set", FormatIsoTime(now)}}.dump()).first != 200) {
      return Status::Unavailable("POST /v1/admin/clock failed");
    }
    if (o.faults && step == restart_at) {
      // The broker's restart: kill -9 of the serving process, then the same data
      // and ports; the devices reconnect by themselves.
      server.Kill();
      HERALD_RETURN_IF_ERROR(server.Start());
      ++result.restarts;
      for (int k = 0; k < 3000 && devices.connected() < n / 2; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      auto [ms, mb] = call("GET", "/metrics");
      const std::string name = "\nherald_engine_redelivered_total ";
      const size_t at = mb.find(name);
      if (at != std::string::npos) result.redelivered += std::strtoull(mb.c_str() + at + name.size(), nullptr, 10);
    }
    // Faults: a device now and then drops its connection for a step or two; some
    // go offline for hours.
    for (size_t i = 0; i < n; ++i) {
      if (marks[i] & 1) continue;
      std::uint64_t s = Mix(Mix(o.seed, i), 0xF000000ULL + static_cast<std::uint64_t>(step));
      if (back_at[i] && now >= back_at[i]) {
        back_at[i] = 0;
        devices.Want(i, true);
      }
      if (!o.faults || back_at[i]) continue;
      const double r = Uniform(s);
      if (r < 0.002) {
        back_at[i] = now + kStep;
        devices.Want(i, false);
      } else if (r < 0.0025) {
        back_at[i] = now + static_cast<Micros>(2 + 6 * Uniform(s)) * kMicrosPerHour;
        devices.Want(i, false);
      }
    }
    // App activity, as the app's backend reports it.
    json events = json::array();
    for (size_t i = 0; i < n; ++i) {
      if (marks[i] & 1) continue;
      const SimUser& u = pop.users[i];
      const double lambda = cs[u.cls].app_opens * u.activity * ActivityShare(u.cls, hour_of(u.zone, now)) / 2;
      std::uint64_t s = Mix(Mix(o.seed, i), 0xA000000ULL + static_cast<std::uint64_t>(step));
      if (Uniform(s) < lambda) {
        events.push_back({{"user_id", pop.UserId(i)}, {"type", "app_open"}, {"ts", FormatIsoTime(now)}});
      }
    }
    if (!events.empty() && call("POST", "/v1/events", events.dump()).first != 200) {
      return Status::Unavailable("POST /v1/events failed");
    }
    for (auto& [i, receipt] : later[static_cast<size_t>(step) % later.size()]) devices.Receipt(i, receipt);
    later[static_cast<size_t>(step) % later.size()].clear();
    // The accounts' posts of this half hour.
    const int day = step / kStepsPerDay, minute = (step % kStepsPerDay) * 30;
    for (const SimAccount& a : pop.accounts) {
      if (a.local_minute != minute || day % a.every_days != 0) continue;
      json c = {{"account_id", a.id},
                {"target", {{"followers_of", a.id}}},
                {"message", {{"title", a.title}, {"form", a.form}, {"ttl_s", 86400}, {"deep_link", "app://" + a.id}}}};
      if (a.type == "subscription" && digest) {
        c["schedule"] = {{"type", "digest"}};
      } else if (window) {
        const Micros to = now + std::max<Micros>(2 * kMicrosPerHour, (22 * 60 - minute) * kMicrosPerMinute);
        c["schedule"] = {{"type", "window"}, {"from", FormatIsoTime(now)}, {"to", FormatIsoTime(to)}};
      }
      auto [st, body] = call("POST", "/v1/campaigns", c.dump());
      if (st != 201) return Status::Internal("POST /v1/campaigns: " + body);
      const std::string id = json::parse(body)["id"].get<std::string>();
      campaigns.push_back(id);
      for (int k = 0; k < 6000; ++k) {
        auto [gs, gb] = call("GET", "/v1/campaigns/" + id);
        if (gs == 200 && json::parse(gb)["status"] != "planning") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    // The pushes that reach the devices, until none comes for a while.
    std::uint64_t last = devices.received();
    for (int still = 0; still < 6;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      const std::uint64_t v = devices.received();
      still = v == last ? still + 1 : 0;
      last = v;
    }
    json marks_events = json::array();
    std::vector<Devices::Push> got = std::move(before);
    const size_t earlier = got.size();
    for (auto& p : devices.Take()) got.push_back(std::move(p));
    for (size_t k = 0; k < got.size(); ++k) {
      const Devices::Push& p = got[k];
      const Micros arrived_at = k < earlier && step ? now - kStep : now;
      if (!arrived.emplace(p.message_id, arrived_at).second) continue;  // a redelivery: counted once
      ++pushes;
      const size_t i = p.user;
      if (marks[i] & 1) continue;  // uninstalled in this very step: nobody looks
      const SimUser& u = pop.users[i];
      Counts& c = result.by_class[u.cls];
      ++c.delivered;
      if (!p.expires_at || arrived_at <= p.expires_at) ++c.delivered_in_ttl;
      const int hour = hour_of(u.zone, now);
      ++c.delivered_by_hour[static_cast<size_t>(hour)];
      const PushOutcome r = RespondToPush(pop, i, p.account_id, hour, now / kMicrosPerSecond, recent[i],
                                    Mix(Mix(o.seed, i), std::hash<std::string>()(p.message_id)));
      auto receipt = [&](const char* type) { return json{{"message_id", p.message_id}, {"type", type}}.dump(); };
      auto& at = later[static_cast<size_t>(step + r.delay_steps) % later.size()];
      if (r.opened) {
        ++c.opened;
        ++c.opened_by_hour[static_cast<size_t>(hour)];
        (r.delay_steps ? at.emplace_back(i, receipt("opened")), void() : devices.Receipt(i, receipt("opened")));
        if (r.clicked) {
          ++c.clicked;
          (r.delay_steps ? at.emplace_back(i, receipt("clicked")), void() : devices.Receipt(i, receipt("clicked")));
        }
        if (r.converted) {
          ++c.converted;
          c.gmv += r.gmv;
        }
        continue;
      }
      if (r.not_interested) {
        devices.Receipt(i, receipt("not_interested"));
        if (!(marks[i] & 2)) ++c.not_interested;
        marks[i] |= 2;
      }
      if (r.complaint) {
        devices.Receipt(i, receipt("complaint"));
        if (!(marks[i] & 4)) ++c.complained;
        marks[i] |= 4;
      }
      if (r.uninstall && !(marks[i] & 1)) {
        ++c.uninstalled;
        marks[i] |= 1;
        uninstalled_at[i] = now;
        marks_events.push_back({{"user_id", pop.UserId(i)}, {"type", "uninstall"}, {"ts", FormatIsoTime(now)}});
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if ((marks[i] & 1) && uninstalled_at[i] == now) devices.Want(i, false);
    }
    if (!marks_events.empty()) (void)call("POST", "/v1/events", marks_events.dump());
    if (o.progress && (step + 1) % kStepsPerDay == 0) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::fprintf(stderr, "simulate %s through MQTT: day %d/%d, %zu devices (%zu connected), %llu pushes, %.1f s\n",
                   strategy.c_str(), day + 1, o.days, n, devices.connected(), static_cast<unsigned long long>(pushes), s);
    }
  }
  // Every device back online: what herald still holds for them arrives now.
  size_t installed = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!(marks[i] & 1)) {
      devices.Want(i, true);
      ++installed;
    }
  }
  for (int k = 0; k < 3000 && devices.connected() < installed; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::uint64_t last = devices.received();
  for (int still = 0; still < 40;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    const std::uint64_t v = devices.received();
    still = v == last ? still + 1 : 0;
    last = v;
  }
  const Micros end = kStart + (steps - 1) * kStep;  // herald's clock stays at the last step
  for (const Devices::Push& p : devices.Take()) {
    if (!arrived.emplace(p.message_id, end).second) continue;
    Counts& c = result.by_class[pop.users[p.user].cls];
    ++c.delivered;
    if (!p.expires_at || end <= p.expires_at) ++c.delivered_in_ttl;
  }
  // What herald sent: each push's decision is in its user's list, with those of
  // candidates never sent; a message herald has a record of was sent. One sent to
  // a user after the uninstall was no device's to receive (sent, not lost).
  const bool debug = std::getenv("HERALD_SIM_DEBUG") != nullptr;
  for (size_t i = 0; i < n; ++i) {
    auto [st, body] = call("GET", "/v1/users/" + pop.UserId(i) + "/decisions?limit=1000");
    const json j = json::parse(body, nullptr, false);
    if (st != 200 || !j.is_object() || !j.contains("decisions")) {
      return Status::Unavailable("GET /v1/users/" + pop.UserId(i) + "/decisions: " + std::to_string(st));
    }
    std::set<std::string> seen;
    for (const auto& d : j["decisions"]) {
      const std::string id = d.value("message_id", std::string());
      if (id.empty() || !seen.insert(id).second) continue;
      bool sent = arrived.count(id) > 0;
      Micros sent_at = 0;
      if (!sent) {
        auto [ms, mb] = call("GET", "/v1/messages/" + id);
        if (ms == 404) continue;  // a candidate never sent
        if (ms != 200) return Status::Unavailable("GET /v1/messages/" + id + ": " + std::to_string(ms));
        const json m = json::parse(mb, nullptr, false);
        auto t = ParseIsoTime(m.value("sent_at", std::string()));
        if (t.ok()) sent_at = *t;
        if (debug) std::fprintf(stderr, "not received: %s %s\n", pop.UserId(i).c_str(), mb.c_str());
      }
      ++result.by_class[pop.users[i].cls].sent;
      ++sent_per_user[i];
      if (!sent && uninstalled_at[i] && sent_at >= uninstalled_at[i]) {
        ++result.by_class[pop.users[i].cls].unreachable;
      } else if (!sent) {
        ++result.lost;
      }
    }
  }
  server.Stop();
  std::filesystem::remove_all(base);
  CountUsers(pop, sent_per_user, o.days, &result);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace herald::sim
