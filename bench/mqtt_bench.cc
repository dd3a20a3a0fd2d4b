// herald-mqtt-bench: a load generator for any MQTT 3.1.1 broker.
//
//   herald-mqtt-bench SCENARIO --host H --port P [options]      (--help for all)
//
// Scenarios: conn (idle connections, broker RSS per connection), fanin (N publishers
// -> 1 subscriber), fanout (1 publisher -> N subscribers on u/<i>, the push pattern)
// and latency (fixed-rate QoS 1, p50/p99/p999). Each prints one human line and, with
// --json, one JSON line carrying every number.
//
// The process is a coordinator that forks P worker processes (see bench_board.h);
// P > 1 when the connections do not fit under one process's open-file limit.
// Encoding and decoding use herald's own codec (mqtt/codec.h).
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_board.h"
#include "bench_coordinator.h"
#include "bench_options.h"
#include "bench_worker.h"

namespace herald::bench {
namespace {

constexpr uint64_t kFdReserve = 64;             // per process: epoll, stdio, slack
constexpr uint64_t kClientsPerSource = 25'000;  // matches kSourceSpread in bench_worker.cc

// Raises the soft open-file limit to the hard one; returns the new soft limit.
uint64_t RaiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

bool Resolve(const std::string& host, uint16_t port, sockaddr_in* out, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    *error = "cannot resolve host " + host + ": " + gai_strerror(rc);
    return false;
  }
  *out = *reinterpret_cast<sockaddr_in*>(res->ai_addr);
  out->sin_port = htons(port);
  freeaddrinfo(res);
  return true;
}

// Fills scenario defaults and checks what CLI11 cannot; returns an error or "".
std::string Finish(BenchOptions& o, bool have_clients, bool have_messages, bool have_rate,
                   bool have_duration, bool have_topic) {
  if (o.payload < kPayloadHeader) {
    return "--payload must be at least " + std::to_string(kPayloadHeader) +
           " bytes (sequence number, timestamp, publisher)";
  }
  if (o.password && !o.username) return "--password needs --username";
  if (o.window == 0 || o.window > 65'000) return "--window must be 1..65000";
  if (!have_topic) o.topic = o.topic_prefix + (o.username ? *o.username : std::string("bench"));
  if (o.wildcard && !o.topic_prefix.empty() && o.topic_prefix.back() != '/') {
    return "--wildcard needs a --topic-prefix ending in '/'";
  }
  switch (o.scenario) {
    case Scenario::kConn:
      if (!have_clients) o.clients = 1000;
      if (!have_duration) o.duration_s = 5;
      break;
    case Scenario::kFanin:
      if (!have_clients) o.clients = 10;
      if (!have_messages) o.messages = 100'000;
      if (!have_duration) o.duration_s = 60;
      break;
    case Scenario::kFanout:
      if (!have_clients) o.clients = 1000;
      if (!have_messages) o.messages = 100'000;
      if (!have_duration) o.duration_s = 60;
      break;
    case Scenario::kLatency:
      o.clients = 1;
      if (!have_rate) o.rate = 1000;
      if (!have_duration) o.duration_s = 10;
      if (o.rate <= 0) return "latency needs --rate > 0";
      if (!have_messages) o.messages = static_cast<uint64_t>(o.rate * o.duration_s);
      break;
  }
  if (o.clients == 0) return "--clients must be at least 1";
  if (o.external && o.scenario != Scenario::kFanout) return "--external is for fanout";
  if (o.scenario == Scenario::kLatency && o.messages == 0) return "--messages must be at least 1";
  if (o.duration_s <= 0) return "--duration must be positive";
  return "";
}

// Picks the worker count: enough processes that each stays under its fd limit.
std::string ChooseProcs(BenchOptions& o, uint64_t fd_limit) {
  const uint64_t capacity = fd_limit > 2 * kFdReserve ? fd_limit - kFdReserve : kFdReserve;
  const uint64_t fds = o.clients + 2;
  auto needed = static_cast<int>((fds + capacity - 1) / capacity);
  if (o.scenario == Scenario::kLatency) needed = 1;
  if (o.procs == 0) o.procs = needed;
  if (o.procs < needed) {
    return std::to_string(o.clients) + " clients need at least " + std::to_string(needed) +
           " processes at " + std::to_string(fd_limit) + " open files each; use --procs " +
           std::to_string(needed);
  }
  if (o.procs > Board::kMaxWorkers) return "--procs is at most 64";
  o.procs = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(o.procs), o.clients));
  if (o.scenario == Scenario::kLatency) o.procs = 1;
  uint32_t net = ntohl(o.server.sin_addr.s_addr);
  o.spread_sources = (net >> 24) == 127 && o.clients + 2 > kClientsPerSource;
  return "";
}

// Forks the workers; each runs RunWorker and exits. Returns their pids.
std::vector<pid_t> ForkWorkers(const BenchOptions& o, Board* board) {
  std::vector<pid_t> pids;
  std::fflush(nullptr);  // nothing buffered may be printed twice
  for (int w = 0; w < o.procs; ++w) {
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("herald-mqtt-bench: fork");
      for (pid_t p : pids) kill(p, SIGKILL);
      std::exit(1);
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the coordinator
      _exit(RunWorker(o, board, w));
    }
    pids.push_back(pid);
  }
  return pids;
}

std::string Fixed(double v, int digits) {
  if (v < 0) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

double Us(uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

std::string ConnLine(const BenchOptions& o, const Report& r) {
  return fmt::format(
      "conn: {}/{} connected (completeness {}, {} failed) at {} conn/s; held {} s, {} lost, {} "
      "pings; broker RSS {} -> {} kB = {} bytes/conn",
      r.connected, o.clients, Fixed(r.completeness, 4), r.failed, Fixed(r.conn_per_s, 0),
      Fixed(r.hold_s, 1), r.lost, r.pings, r.rss_before_kb, r.rss_after_kb,
      Fixed(r.bytes_per_conn, 0));
}

std::string MessagesLine(const BenchOptions& o, const Report& r, const std::string& qos) {
  std::string head;
  if (o.scenario == Scenario::kLatency) {
    const LatencyHistogram& h = r.latency;
    head = fmt::format(
        "latency {} at {} msgs/s {}B: p50 {} us, p99 {} us, p999 {} us (min {}, max {})", qos,
        Fixed(o.rate, 0), o.payload, Fixed(Us(h.Quantile(0.5)), 0), Fixed(Us(h.Quantile(0.99)), 0),
        Fixed(Us(h.Quantile(0.999)), 0), Fixed(Us(h.total ? h.min_ns : 0), 0),
        Fixed(Us(h.max_ns), 0));
  } else {
    head = fmt::format("{} {} {} {} {}B: {} msgs/s", ScenarioName(o.scenario), qos, o.clients,
                       o.scenario == Scenario::kFanin ? "publishers" : "subscribers", o.payload,
                       Fixed(r.msgs_per_s, 0));
  }
  return head +
         fmt::format(", completeness {} ({}/{}, {} dup); published at {} msgs/s; setup {} s{}",
                     Fixed(r.completeness, 4), r.received, r.expected, r.duplicates,
                     Fixed(r.publish_msgs_per_s, 0), Fixed(r.setup_s, 2),
                     r.timed_out ? "; TIME LIMIT REACHED" : "");
}

std::string HumanLine(const BenchOptions& o, const Report& r) {
  if (!r.ok) {
    return fmt::format("{}: FAILED against {}:{}: {}", ScenarioName(o.scenario), o.host, o.port,
                       r.error);
  }
  std::string qos = fmt::format("qos{}", static_cast<int>(o.qos));
  if (o.sub_qos != o.qos) qos += fmt::format("/sub{}", static_cast<int>(o.sub_qos));
  std::string line = o.scenario == Scenario::kConn ? ConnLine(o, r) : MessagesLine(o, r, qos);
  if (o.procs > 1) line += fmt::format("; {} worker processes", o.procs);
  if (r.bench_cpu_s >= 0 && r.wall_s > 0) {
    line += "; generator CPU " + Fixed(100 * r.bench_cpu_s / r.wall_s, 0) + "% of one core";
  }
  if (r.failed > 0 || r.lost > 0) line += "; first error: " + r.error;
  return line;
}

nlohmann::json JsonLine(const BenchOptions& o, const Report& r) {
  nlohmann::json j = {{"scenario", ScenarioName(o.scenario)},
                      {"ok", r.ok},
                      {"error", r.error},
                      {"host", o.host},
                      {"port", o.port},
                      {"qos", static_cast<int>(o.qos)},
                      {"clients", o.clients},
                      {"procs", o.procs},
                      {"payload", o.payload},
                      {"connected", r.connected},
                      {"failed", r.failed},
                      {"lost", r.lost},
                      {"pings", r.pings},
                      {"setup_s", r.setup_s},
                      {"conn_per_s", r.conn_per_s},
                      {"completeness", r.completeness},
                      {"timed_out", r.timed_out},
                      {"wall_s", r.wall_s},
                      {"bench_cpu_s", r.bench_cpu_s}};
  if (o.scenario == Scenario::kConn) {
    j.update({{"hold_s", r.hold_s},
              {"rss_before_kb", r.rss_before_kb},
              {"rss_after_kb", r.rss_after_kb},
              {"bytes_per_conn", r.bytes_per_conn}});
    return j;
  }
  j.update({{"messages", o.messages},
            {"sub_qos", static_cast<int>(o.sub_qos)},
            {"e2e_window", o.e2e_window},
            {"rate", o.rate},
            {"window", o.window},
            {"published", r.published},
            {"completed", r.completed},
            {"received", r.received},
            {"expected", r.expected},
            {"duplicates", r.duplicates},
            {"msgs_per_s", r.msgs_per_s},
            {"publish_msgs_per_s", r.publish_msgs_per_s},
            {"elapsed_s", r.elapsed_s}});
  if (o.scenario == Scenario::kLatency) {
    const LatencyHistogram& h = r.latency;
    j.update({{"p50_us", Us(h.Quantile(0.5))},
              {"p99_us", Us(h.Quantile(0.99))},
              {"p999_us", Us(h.Quantile(0.999))},
              {"min_us", Us(h.total ? h.min_ns : 0)},
              {"max_us", Us(h.max_ns)},
              {"mean_us", h.MeanNs() / 1000.0},
              {"samples", h.total}});
  }
  return j;
}

int Main(int argc, char** argv) {
  BenchOptions o;
  CLI::App app{"herald-mqtt-bench: load generator for any MQTT 3.1.1 broker"};
  const std::map<std::string, Scenario> scenarios = {{"conn", Scenario::kConn},
                                                     {"fanin", Scenario::kFanin},
                                                     {"fanout", Scenario::kFanout},
                                                     {"latency", Scenario::kLatency}};
  int qos = 1, sub_qos = -1;
  std::string scenario, username, password;
  app.add_option("scenario", scenario, "conn | fanin | fanout | latency")
      ->required()
      ->check(CLI::IsMember({"conn", "fanin", "fanout", "latency"}));
  app.add_option("--host", o.host, "Broker host (IPv4)")->default_val("127.0.0.1");
  app.add_option("--port", o.port, "Broker port")->default_val(1883);
  auto* user_opt = app.add_option("--username", username, "CONNECT user name");
  auto* pass_opt = app.add_option("--password", password, "CONNECT password");
  app.add_option("--qos", qos, "QoS of publishes and subscriptions")->check(CLI::Range(0, 2));
  app.add_option("--sub-qos", sub_qos, "QoS of subscriptions, if not --qos")
      ->check(CLI::Range(0, 2));
  auto* clients = app.add_option("--clients", o.clients,
                                 "conn: connections; fanin: publishers; fanout: subscribers "
                                 "(defaults 1000, 10, 1000)");
  auto* messages = app.add_option("--messages", o.messages,
                                  "Messages published in total (default 100000; 0 = until "
                                  "--duration; latency: rate x duration)");
  app.add_option("--payload", o.payload, "Payload bytes (at least 20)")->default_val(100);
  auto* rate = app.add_option("--rate", o.rate,
                              "Total msgs/s over all publishers, 0 = unpaced (latency: 1000)");
  auto* duration = app.add_option("--duration", o.duration_s,
                                  "conn: hold seconds (5); latency: sending seconds (10); "
                                  "fanin/fanout: time limit of the run (60)");
  app.add_option("--window", o.window, "QoS 1/2 publishes in flight per publisher")
      ->default_val(1000);
  app.add_option("--e2e-window", o.e2e_window,
                 "At most this many messages published but not yet received (0 = off): "
                 "measures the sustainable rate of a broker that would drop under overload");
  app.add_option("--keepalive", o.keep_alive_s, "CONNECT keep-alive seconds (0 = off)")
      ->default_val(60);
  app.add_option("--topic-prefix", o.topic_prefix, "Topics are <prefix><i>")->default_val("u/");
  auto* topic = app.add_option("--topic", o.topic,
                               "fanin/latency topic (default <prefix><username>, or "
                               "<prefix>bench without --username)");
  app.add_flag("--wildcard", o.wildcard,
               "fanin: publisher i publishes to <prefix><i>, the subscriber to <prefix>+");
  app.add_option("--client-offset", o.client_offset,
                 "First client index, to split one run over several machines or invocations");
  app.add_option("--procs", o.procs, "Worker processes (0 = as the open-file limit needs)")
      ->default_val(0);
  app.add_option("--connect-concurrency", o.connect_concurrency,
                 "Per process: connections in setup at once")
      ->default_val(50);
  app.add_option("--setup-timeout", o.setup_timeout_s, "Seconds allowed to connect and subscribe")
      ->default_val(60);
  app.add_option("--drain", o.drain_s,
                 "Stop once publishing is over and nothing arrived for this "
                 "many seconds")
      ->default_val(3);
  app.add_option("--broker-pid", o.broker_pid, "conn: report this process's RSS before/after");
  app.add_flag("--json", o.json, "Also print one JSON line with every number");
  app.add_option("--external", o.external,
                 "fanout: publish nothing; count every message the broker itself sends the "
                 "subscribers (its own pushes) until this many arrived");
  std::string credentials;
  app.add_option("--credentials", credentials,
                 "File of \"username password\" lines: client i connects with line i "
                 "(devices with their own tokens)");
  app.add_option("--ready-file", o.ready_file, "Written once every connection is set up");
  CLI11_PARSE(app, argc, argv);

  o.scenario = scenarios.at(scenario);
  if (!credentials.empty()) {
    std::FILE* f = std::fopen(credentials.c_str(), "r");
    if (!f) {
      std::fprintf(stderr, "herald-mqtt-bench: cannot open %s\n", credentials.c_str());
      return 2;
    }
    char user[512], pass[512];
    while (std::fscanf(f, "%511s %511s", user, pass) == 2) o.credentials.emplace_back(user, pass);
    std::fclose(f);
  }
  o.qos = static_cast<mqtt::QoS>(qos);
  o.sub_qos = static_cast<mqtt::QoS>(sub_qos >= 0 ? sub_qos : qos);
  if (user_opt->count()) o.username = username;
  if (pass_opt->count()) o.password = password;
  std::string error = Finish(o, clients->count() > 0, messages->count() > 0, rate->count() > 0,
                             duration->count() > 0, topic->count() > 0);
  if (error.empty()) Resolve(o.host, o.port, &o.server, &error);
  const uint64_t fd_limit = RaiseFileLimit();
  if (error.empty()) error = ChooseProcs(o, fd_limit);
  if (!error.empty()) {
    std::fprintf(stderr, "herald-mqtt-bench: %s\n", error.c_str());
    return 2;
  }
  if (o.procs > 1) {
    std::fprintf(stderr,
                 "herald-mqtt-bench: %llu clients over %d worker processes (open-file limit %llu "
                 "per process)%s\n",
                 static_cast<unsigned long long>(o.clients), o.procs,
                 static_cast<unsigned long long>(fd_limit),
                 o.spread_sources ? "; source addresses 127.0.0.1.. spread" : "");
  }
  signal(SIGPIPE, SIG_IGN);

  Board* board = MapBoard(o.procs);
  std::vector<pid_t> pids = ForkWorkers(o, board);
  Report report = Coordinate(o, board, pids);
  std::printf("%s\n", HumanLine(o, report).c_str());
  if (o.json) std::printf("%s\n", JsonLine(o, report).dump().c_str());
  UnmapBoard(board);
  return report.ok ? 0 : 1;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  return herald::bench::Main(argc, argv);
}
