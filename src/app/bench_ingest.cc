#include "app/bench_ingest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/metrics.h"
#include "node/node.h"
#include "stream/pipeline.h"

namespace herald::app {
namespace {

using Clock = std::chrono::steady_clock;
using SystemClock = herald::SystemClock;

struct Options {
  size_t events = 2'000'000;   // in-process events
  size_t users = 100'000;
  double http_seconds = 5;
  size_t http_clients = 2;
  size_t batch = 1000;
  double latency_seconds = 5;
  bool json = false;
  std::string dir;
};

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// A real node on a scratch directory: the store, the log, the shards, the
// pipeline and the HTTP API, as `herald serve` builds them (no MQTT).
struct Rig {
  std::unique_ptr<node::Node> node;
  SystemClock clock;

  Status Open(const std::string& dir) {
    node::Config c = node::Config::Defaults();
    c.server.data_dir = dir;
    c.server.log_level = "warn";
    c.http.listen = {"127.0.0.1", 0};
    auto n = node::Node::Start(c, {.http = true, .mqtt = false});
    if (!n.ok()) return n.status();
    node = std::move(*n);
    return Status::Ok();
  }
  stream::Pipeline& pipeline() { return node->pipeline(); }
  MetricsRegistry& metrics() { return node->metrics(); }
  std::uint64_t Applied() {
    return metrics().GetCounter("herald_stream_events_applied_total", "").Value();
  }
  void WaitApplied(std::uint64_t n) {
    while (Applied() < n) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
};

// "<prefix><n>", built without operator+ on a literal (GCC 12 warns falsely there).
std::string Id(char prefix, size_t n) {
  std::string s(1, prefix);
  s += std::to_string(n);
  return s;
}

stream::Event MakeEvent(size_t i, size_t users, Micros ts) {
  static const stream::EventType kTypes[] = {stream::EventType::kAppOpen, stream::EventType::kSent,
                                             stream::EventType::kOpened, stream::EventType::kShare};
  stream::Event e;
  e.tenant = "bench";
  e.user_id = Id('u', (i * 7919) % users);
  e.type = kTypes[i % 4];
  e.ts = ts;
  if (e.type == stream::EventType::kSent || e.type == stream::EventType::kOpened) {
    e.account_id = Id('a', i % 10);
    e.message_id = Id('m', i);
  }
  return e;
}

// In process: after a warm-up, the events are built first (as a parser would
// have), then two producer threads hand batches to the pipeline; the clock runs
// from the first batch to the last event applied to features.
double InProcess(Rig& rig, const Options& o) {
  Micros t0 = rig.clock.Now();
  // Warm-up, untimed: every user once, so the timed run measures sustained ingest
  // rather than the first touch of 100,000 users (a store lookup each).
  for (size_t b = 0; b * o.batch < o.users; ++b) {
    std::vector<stream::Event> warm;
    for (size_t u = b * o.batch; u < std::min(o.users, (b + 1) * o.batch); ++u) {
      stream::Event e = MakeEvent(0, o.users, t0);
      e.user_id = Id('u', u);
      warm.push_back(std::move(e));
    }
    rig.pipeline().Ingest(std::move(warm), [](Status) {});
  }
  rig.WaitApplied(o.users);
  std::uint64_t base = rig.Applied();
  std::vector<std::vector<stream::Event>> batches;
  for (size_t b = 0; b * o.batch < o.events; ++b) {
    auto& batch = batches.emplace_back();
    batch.reserve(o.batch);
    for (size_t i = b * o.batch; i < std::min(o.events, (b + 1) * o.batch); ++i) {
      batch.push_back(MakeEvent(i, o.users, t0 + static_cast<Micros>(i)));
    }
  }
  auto start = Clock::now();
  std::vector<std::thread> producers;
  for (size_t t = 0; t < 2; ++t) {
    producers.emplace_back([&, t] {
      for (size_t b = t; b < batches.size(); b += 2) {
        rig.pipeline().Ingest(std::move(batches[b]), [](Status) {});
      }
    });
  }
  for (auto& p : producers) p.join();
  rig.WaitApplied(base + o.events);
  return static_cast<double>(o.events) / Seconds(start, Clock::now());
}

std::string NdjsonBody(size_t first, size_t n, size_t users) {
  std::string body;
  for (size_t i = first; i < first + n; ++i) {
    body += "{\"user_id\":\"";
    body += Id('u', (i * 7919) % users);
    body += "\",\"type\":\"app_open\",\"ts\":";
    body += std::to_string(1767571200 + i % 100000);
    body += "}\n";
  }
  return body;
}

// One keep-alive client: POSTs NDJSON batches until `until`, counting accepted events.
void HttpClient(std::uint16_t port, const std::string& key, const std::vector<std::string>& bodies,
                Clock::time_point until,
                double rate_per_client, std::atomic<std::uint64_t>* accepted) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string buf(1 << 16, '\0');
  auto next = Clock::now();
  for (size_t k = 0; Clock::now() < until; ++k) {
    const std::string& body = bodies[k % bodies.size()];
    std::string req =
        "POST /v1/events HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer ";
    req += key;
    req += "\r\nContent-Type: application/x-ndjson\r\nContent-Length: ";
    req += std::to_string(body.size());
    req += "\r\n\r\n";
    req += body;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) break;
    std::string resp;
    size_t need = std::string::npos;
    while (resp.size() < need) {
      ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) return (void)::close(fd);
      resp.append(buf.data(), static_cast<size_t>(n));
      size_t hdr = resp.find("\r\n\r\n");
      size_t cl = resp.find("Content-Length: ");
      if (hdr != std::string::npos && cl != std::string::npos) {
        need = hdr + 4 + std::stoul(resp.substr(cl + 16));
      }
    }
    size_t pos = resp.find("\"accepted\":");
    if (resp.compare(9, 3, "200") == 0 && pos != std::string::npos) {
      accepted->fetch_add(std::stoul(resp.substr(pos + 11)));
    }
    if (rate_per_client > 0) {
      // Each request carries one batch; pace batches to the requested event rate.
      next += std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(1000.0 / rate_per_client));
      std::this_thread::sleep_until(next);
    }
  }
  ::close(fd);
}

double OverHttp(std::uint16_t port, const std::string& key, const Options& o, double seconds,
                double rate) {
  std::vector<std::string> bodies;
  for (size_t b = 0; b < 16; ++b) bodies.push_back(NdjsonBody(b * o.batch, o.batch, o.users));
  std::atomic<std::uint64_t> accepted{0};
  auto start = Clock::now();
  auto until = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> clients;
  for (size_t c = 0; c < o.http_clients; ++c) {
    clients.emplace_back(HttpClient, port, std::cref(key), std::cref(bodies), until,
                         rate / static_cast<double>(o.http_clients), &accepted);
  }
  for (auto& c : clients) c.join();
  return static_cast<double>(accepted.load()) / Seconds(start, Clock::now());
}

}  // namespace

int BenchIngest(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&] { return i + 1 < args.size() ? args[++i] : std::string("0"); };
    if (args[i] == "--events") o.events = std::stoul(val());
    else if (args[i] == "--users") o.users = std::stoul(val());
    else if (args[i] == "--http-seconds") o.http_seconds = std::stod(val());
    else if (args[i] == "--latency-seconds") o.latency_seconds = std::stod(val());
    else if (args[i] == "--clients") o.http_clients = std::stoul(val());
    else if (args[i] == "--json") o.json = true;
    else if (args[i] == "--dir") o.dir = val();
    else {
      std::fprintf(stderr,
                   "usage: herald bench ingest [--events N] [--users N] [--http-seconds S] "
                   "[--latency-seconds S] [--clients N] [--dir D] [--json]\n");
      return 2;
    }
  }
  std::string dir = o.dir.empty() ? (std::filesystem::temp_directory_path() /
                                     ("herald-bench-ingest-" + std::to_string(::getpid())))
                                        .string()
                                  : o.dir;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  double in_process = 0, http = 0, p50 = 0, p99 = 0;
  {
    Rig rig;
    if (Status s = rig.Open(dir); !s.ok()) {
      std::fprintf(stderr, "bench ingest: %s\n", s.ToString().c_str());
      return 1;
    }
    in_process = InProcess(rig, o);

    std::uint16_t port = rig.node->http_endpoint().port;
    const std::string& key = rig.node->created_admin_key();
    http = OverHttp(port, key, o, o.http_seconds, 0);

    // Event-to-feature latency at half of the maximum HTTP load.
    Histogram& h = rig.metrics().GetHistogram("herald_stream_event_to_feature_seconds", "",
                                            LatencyBuckets());
    std::uint64_t count0 = h.Count();
    std::vector<std::uint64_t> b0;
    for (size_t i = 0; i <= h.bounds().size(); ++i) b0.push_back(h.BucketCount(i));
    OverHttp(port, key, o, o.latency_seconds, http / 2);
    // The histogram's growth during the paced run only.
    struct Delta {
      std::vector<std::uint64_t> counts;
      std::vector<double> bounds;
      std::uint64_t total;
    } d{{}, h.bounds(), h.Count() - count0};
    for (size_t i = 0; i <= h.bounds().size(); ++i) d.counts.push_back(h.BucketCount(i) - b0[i]);
    auto q = [&](double want) -> double {
      std::uint64_t seen = 0;
      for (size_t i = 0; i < d.bounds.size(); ++i) {
        seen += d.counts[i];
        if (static_cast<double>(seen) >= want * static_cast<double>(d.total)) return d.bounds[i];
      }
      return INFINITY;
    };
    p50 = q(0.50) * 1000;
    p99 = q(0.99) * 1000;
    (void)rig.node->Stop();
  }
  std::filesystem::remove_all(dir);
  if (o.json) {
    std::printf("{\"in_process_events_per_s\":%.0f,\"http_events_per_s\":%.0f,"
                "\"latency_p50_ms_at_most\":%.3f,\"latency_p99_ms_at_most\":%.3f}\n",
                in_process, http, p50, p99);
  } else {
    std::printf("in-process: %.0f events/s (durable log + features, %zu events, %zu users)\n",
                in_process, o.events, o.users);
    std::printf("http (NDJSON batches of %zu, %zu clients): %.0f events/s\n", o.batch,
                o.http_clients, http);
    std::printf("event->feature latency at half load: p50 <= %.3f ms, p99 <= %.3f ms "
                "(histogram bucket bounds)\n", p50, p99);
  }
  return 0;
}

}  // namespace herald::app
