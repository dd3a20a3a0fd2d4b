#include "app/bench_profile.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include "api/tenants.h"
#include "node/node.h"
#include "profile/profile_store.h"
#include "core/metrics.h"
#include "stream/feature_store.h"
#include "stream/pipeline.h"

namespace herald::app {
namespace {

using Steady = std::chrono::steady_clock;

struct Options {
  size_t users = 1'000'000;
  size_t batch = 5000;
  size_t clients = 2;
  size_t evals = 5;
  bool events = true;
  bool json = false;
  std::string dir;
};

double Since(Steady::time_point a) { return std::chrono::duration<double>(Steady::now() - a).count(); }

long RssBytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * ::sysconf(_SC_PAGESIZE);
}

// One keep-alive HTTP/1.1 connection to the node.
class Conn {
 public:
  explicit Conn(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    int one = 1;
    if (fd_ >= 0) ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }
  // The status and body, or status 0 on a broken connection.
  std::pair<int, std::string> Post(const std::string& path, const std::string& key, const std::string& body) {
    std::string req("POST ");
    req += path;
    req += " HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nAuthorization: Bearer ";
    req += key;
    req += "\r\nContent-Length: ";
    req += std::to_string(body.size());
    req += "\r\n\r\n";
    req += body;
    if (fd_ < 0 || ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return {0, ""};
    std::string resp, buf(1 << 16, '\0');
    size_t need = std::string::npos;
    while (resp.size() < need) {
      ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n <= 0) return {0, ""};
      resp.append(buf.data(), static_cast<size_t>(n));
      size_t hdr = resp.find("\r\n\r\n");
      size_t cl = resp.find("Content-Length: ");
      if (hdr != std::string::npos && cl != std::string::npos) need = hdr + 4 + std::stoul(resp.substr(cl + 16));
    }
    const size_t hdr = resp.find("\r\n\r\n");
    return {std::atoi(resp.c_str() + 9), resp.substr(hdr + 4)};
  }

 private:
  int fd_ = -1;
};

const char* kRegions[] = {"Guangdong", "Beijing", "Shanghai", "Sichuan", "Zhejiang", "Jiangsu", "Hubei", "Fujian"};
const char* kOs[] = {"android", "ios", "harmony"};
const char* kOccupations[] = {"student", "executive", "business", "creator", "", "", ""};

void AppendUser(std::string* out, size_t i) {
  char buf[512];
  const char* occ = kOccupations[i % 7];
  int n = std::snprintf(buf, sizeof buf,
                        "{\"id\":\"p%zu\",\"profile\":{\"name\":\"User %zu\",\"age\":%zu,\"region\":\"%s\","
                        "\"city\":\"city%zu\",\"os\":\"%s\",\"device\":\"model%zu\",\"language\":\"zh-CN\","
                        "\"gender\":\"%s\",\"friends\":%zu%s%s%s}}",
                        i, i, 14 + i % 60, kRegions[i % 8], i % 64, kOs[i % 3], i % 300, i % 2 ? "f" : "m",
                        (i * 7) % 500, *occ ? ",\"occupation\":\"" : "", occ, *occ ? "\"" : "");
  out->append(buf, static_cast<size_t>(n));
}

}  // namespace

int BenchProfile(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&]() -> std::string { return i + 1 < args.size() ? args[++i] : std::string(); };
    if (args[i] == "--users") o.users = std::stoul(val());
    else if (args[i] == "--batch") o.batch = std::stoul(val());
    else if (args[i] == "--clients") o.clients = std::stoul(val());
    else if (args[i] == "--evals") o.evals = std::stoul(val());
    else if (args[i] == "--no-events") o.events = false;
    else if (args[i] == "--json") o.json = true;
    else if (args[i] == "--dir") o.dir = val();
    else {
      std::fprintf(stderr,
                   "usage: herald bench profile [--users N] [--batch N] [--clients N] [--evals N] [--no-events] "
                   "[--json] [--dir D]\n");
      return 2;
    }
  }
  const bool own_dir = o.dir.empty();
  if (own_dir) o.dir = (std::filesystem::temp_directory_path() / ("herald-bench-profile-" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(o.dir);
  node::Config c = node::Config::Defaults();
  c.server.data_dir = o.dir;
  c.server.log_level = "warn";
  c.http.listen = {"127.0.0.1", 0};
  c.stream.max_batch_events = std::max<size_t>(o.batch, 1000);
  c.stream.max_hot_users = o.users + 1;  // every user's features stay in memory: the cost is measured
  auto started = node::Node::Start(c, {.http = true, .mqtt = false});
  if (!started.ok()) {
    std::fprintf(stderr, "bench profile: %s\n", started.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<node::Node> n = std::move(*started);
  const std::string key = n->created_admin_key();
  const std::uint16_t port = n->http_endpoint().port;
  const auto h = n->profiles();
  auto rows = [&](bool count_bytes = false) {
    size_t total = 0, bytes = 0;
    for (PartitionId p = 0; p < n->pipeline().partitioner().partitions(); ++p) {
      auto r = n->pipeline().CallOnPartition(p, [&](stream::Partition& part) -> Result<std::pair<size_t, size_t>> {
        return std::pair{part.Get(h).rows(), count_bytes ? part.Get(h).MemoryBytes() : 0};
      });
      if (r.ok()) {
        total += r->first;
        bytes += r->second;
      }
    }
    return std::pair{total, bytes};
  };
  const long rss0 = RssBytes();

  // 1. Bulk upserts over HTTP: each client sends its share of the batches.
  std::atomic<size_t> next{0}, upserted{0}, failed{0};
  const size_t batches = (o.users + o.batch - 1) / o.batch;
  auto t0 = Steady::now();
  std::vector<std::thread> clients;
  for (size_t k = 0; k < o.clients; ++k) {
    clients.emplace_back([&] {
      Conn conn(port);
      std::string body;
      for (size_t b; (b = next.fetch_add(1)) < batches;) {
        body.assign("{\"users\":[");
        for (size_t i = b * o.batch; i < std::min(o.users, (b + 1) * o.batch); ++i) {
          if (i != b * o.batch) body.push_back(',');
          AppendUser(&body, i);
        }
        body += "]}";
        auto [status, answer] = conn.Post("/v1/users", key, body);
        if (status == 200) {
          upserted += std::min(o.users, (b + 1) * o.batch) - b * o.batch;
        } else {
          ++failed;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  const double upsert_s = Since(t0);
  while (rows().first < upserted.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double applied_s = Since(t0);
  auto [profile_rows, profile_bytes] = rows(true);
  const long rss_profiles = RssBytes();

  // 2. Five clauses over every profile, through the API, on the shards in parallel.
  const std::string expr =
      "{\"expr\":\"age >= 18 and region in (Guangdong, Zhejiang) and os != \\\"ios\\\" and friends > 100 and "
      "class in (student, low_frequency, business)\",\"sample\":10}";
  std::vector<double> ms;
  size_t matched = 0;
  {
    Conn conn(port);
    for (size_t k = 0; k < o.evals; ++k) {
      auto t = Steady::now();
      auto [status, answer] = conn.Post("/v1/segments/preview", key, expr);
      ms.push_back(Since(t) * 1000);
      const size_t at = answer.find("\"count\":");
      if (status != 200 || at == std::string::npos) {
        std::fprintf(stderr, "bench profile: preview failed: %d %s\n", status, answer.c_str());
        return 1;
      }
      matched = std::stoul(answer.substr(at + 8));
    }
  }
  std::sort(ms.begin(), ms.end());

  // 3. One event per user: the features and policy state join the profile.
  long rss_events = rss_profiles;
  size_t hot = 0;
  if (o.events) {
    const Micros now = n->clock().Now();
    for (size_t b = 0; b < batches; ++b) {
      std::vector<stream::Event> evs;
      for (size_t i = b * o.batch; i < std::min(o.users, (b + 1) * o.batch); ++i) {
        stream::Event e;
        e.tenant = "default";
        e.user_id = "p" + std::to_string(i);
        e.type = stream::EventType::kAppOpen;
        e.ts = now - static_cast<Micros>(i % 300) * kMicrosPerSecond;  // within the allowed lateness
        evs.push_back(std::move(e));
      }
      std::promise<Status> done;
      n->pipeline().Ingest(std::move(evs), [&](Status s) { done.set_value(s); });
      if (Status s = done.get_future().get(); !s.ok()) {
        std::fprintf(stderr, "bench profile: ingest: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    auto& applied = n->metrics().GetCounter("herald_stream_events_applied_total", "");
    while (applied.Value() < o.users) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    (void)n->pipeline().Checkpoint();  // applied and written: the state is all there
    for (PartitionId p = 0; p < n->pipeline().partitioner().partitions(); ++p) {
      auto r = n->pipeline().CallOnPartition(p, [&](stream::Partition& part) -> Result<size_t> {
        return part.features().hot_users();
      });
      if (r.ok()) hot += *r;
    }
    rss_events = RssBytes();
  }
  const double users = static_cast<double>(o.users);
  const double median = ms[ms.size() / 2];
  if (o.json) {
    std::printf("{\"users\":%zu,\"upsert_profiles_per_s\":%.0f,\"applied_profiles_per_s\":%.0f,\"failed_batches\":%zu,"
                "\"segment_ms_median\":%.1f,\"segment_ms_min\":%.1f,\"segment_matched\":%zu,"
                "\"profile_bytes_per_user\":%.1f,\"rss_profile_bytes_per_user\":%.1f,"
                "\"rss_with_features_bytes_per_user\":%.1f}\n",
                o.users, users / upsert_s, users / applied_s, failed.load(), median, ms.front(), matched,
                static_cast<double>(profile_bytes) / users, static_cast<double>(rss_profiles - rss0) / users,
                static_cast<double>(rss_events - rss0) / users);
  } else {
    std::printf("profiles: %zu upserted over HTTP (%zu clients, %zu per request) in %.2f s: %.0f profiles/s acknowledged, "
                "%.0f/s applied; %zu failed batches\n",
                o.users, o.clients, o.batch, upsert_s, users / upsert_s, users / applied_s, failed.load());
    std::printf("segment (5 clauses) over %zu profiles via POST /v1/segments/preview: median %.1f ms, best %.1f ms, "
                "%zu matched\n",
                profile_rows, median, ms.front(), matched);
    std::printf("memory per user: profile columns %.0f B (counted), RSS %.0f B after the profiles, %.0f B with "
                "features and policy state (%zu users' features in memory)\n",
                static_cast<double>(profile_bytes) / users, static_cast<double>(rss_profiles - rss0) / users,
                static_cast<double>(rss_events - rss0) / users, hot);
  }
  (void)n->Stop();
  n.reset();
  if (own_dir) std::filesystem::remove_all(o.dir);
  return failed.load() ? 1 : 0;
}

}  // namespace herald::app
