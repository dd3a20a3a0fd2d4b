#include "bench_coordinator.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

namespace herald::bench {
namespace {

constexpr int64_t kNsPerS = 1'000'000'000;
constexpr int64_t kPollNs = 1'000'000;  // how often the coordinator looks at the board

void SleepNs(int64_t ns) {
  timespec ts{ns / kNsPerS, ns % kNsPerS};
  nanosleep(&ts, nullptr);
}

double Seconds(int64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

// Sums of the workers' slots at one moment.
struct Totals {
  uint64_t connected = 0, failed = 0, lost = 0, published = 0, completed = 0;
  uint64_t received = 0, duplicates = 0, pings = 0, publishers_done = 0;
  int64_t first_connect_ns = 0, last_connack_ns = 0, first_publish_ns = 0, last_receive_ns = 0;
  int ready = 0, finished = 0;
  std::string error;  // the first worker's error, in worker order
};

int64_t EarliestSet(int64_t a, int64_t b) {
  return a == 0 ? b : (b == 0 ? a : std::min(a, b));
}

Totals Sum(const Board& board) {
  Totals t;
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  for (int w = 0; w < board.workers; ++w) {
    const WorkerSlot& s = board.slots[w];
    t.ready += s.ready.load(std::memory_order_acquire);
    t.finished += s.finished.load(std::memory_order_acquire);
    t.connected += get(s.connected);
    t.failed += get(s.failed);
    t.lost += get(s.lost);
    t.published += get(s.published);
    t.completed += get(s.completed);
    t.received += get(s.received);
    t.duplicates += get(s.duplicates);
    t.pings += get(s.pings);
    t.publishers_done += get(s.publishers_done);
    t.first_connect_ns = EarliestSet(t.first_connect_ns, s.first_connect_ns.load());
    t.last_connack_ns = std::max(t.last_connack_ns, s.last_connack_ns.load());
    t.first_publish_ns = EarliestSet(t.first_publish_ns, s.first_publish_ns.load());
    t.last_receive_ns = std::max(t.last_receive_ns, s.last_receive_ns.load());
    if (t.error.empty() && s.error[0] != '\0') t.error = s.error;
  }
  return t;
}

// Reaps workers that exited; returns a message naming the first that died early.
std::string CheckWorkers(const std::vector<pid_t>& pids) {
  for (size_t i = 0; i < pids.size(); ++i) {
    int status = 0;
    if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
      return "worker " + std::to_string(i) + " exited early (status " + std::to_string(status) +
             ")";
    }
  }
  return "";
}

uint64_t PublishersTotal(const BenchOptions& o) {
  if (o.external) return 0;
  return o.scenario == Scenario::kFanin ? o.clients : 1;
}

// Phase::kSetup: waits until every worker has set up or failed all its connections.
void AwaitSetup(const BenchOptions& o, Board* board, const std::vector<pid_t>& pids, Report* r) {
  const int64_t deadline = MonoNs() + static_cast<int64_t>(o.setup_timeout_s * 1e9);
  for (;;) {
    Totals t = Sum(*board);
    // Messages need every client; conn reports partial success instead.
    if (o.scenario != Scenario::kConn && t.failed > 0) {
      r->ok = false;
      r->error = t.error;
      return;
    }
    if (t.ready == board->workers) return;
    if (std::string dead = CheckWorkers(pids); !dead.empty()) {
      r->ok = false;
      r->error = dead;
      return;
    }
    if (MonoNs() > deadline) {
      r->ok = false;
      r->error = "setup timed out after " + std::to_string(static_cast<int>(o.setup_timeout_s)) +
                 " s: " + std::to_string(t.connected) + " of " + std::to_string(o.clients) +
                 " clients connected" + (t.error.empty() ? "" : "; first error: " + t.error);
      return;
    }
    SleepNs(kPollNs);
  }
}

// conn: holds the idle connections for the duration, sampling the broker's RSS.
void Hold(const BenchOptions& o, const std::vector<pid_t>& pids, Report* r) {
  const int64_t start = MonoNs();
  const int64_t end = start + static_cast<int64_t>(o.duration_s * 1e9);
  while (MonoNs() < end) {
    if (std::string dead = CheckWorkers(pids); !dead.empty()) {
      r->ok = false;
      r->error = dead;
      return;
    }
    SleepNs(10 * kPollNs);
  }
  r->hold_s = Seconds(MonoNs() - start);
  if (o.broker_pid > 0) r->rss_after_kb = ReadRssKb(o.broker_pid);
}

// Phase::kRun: lets the publishers go and waits until every message arrived, or
// nothing moved for drain_s. When the time limit passes, publishers are told to
// stop (the normal end with --messages 0) and what is in flight gets drain_s more.
void RunMessages(const BenchOptions& o, Board* board, const std::vector<pid_t>& pids, Report* r) {
  const int64_t start = MonoNs();
  double limit_s = o.scenario == Scenario::kLatency ? o.duration_s + 10 : o.duration_s;
  const int64_t deadline = start + static_cast<int64_t>(limit_s * 1e9);
  const int64_t hard_deadline = deadline + static_cast<int64_t>((o.drain_s + 5) * 1e9);
  board->run_start_ns.store(start, std::memory_order_relaxed);
  board->phase.store(static_cast<int>(Phase::kRun), std::memory_order_release);
  // A paced run moves at least every 1/rate s; allow two such gaps on top.
  const double stall_s = std::max(o.drain_s, o.rate > 0 ? 2 / o.rate : 0.0);
  const auto stall_ns = static_cast<int64_t>(stall_s * 1e9);
  uint64_t last_received = 0, last_published = 0;
  int64_t last_progress = start, publishers_done_at = 0;
  for (;;) {
    SleepNs(kPollNs);
    const int64_t now = MonoNs();
    Totals t = Sum(*board);
    if (t.received != last_received || t.published != last_published) {
      last_received = t.received;
      last_published = t.published;
      last_progress = now;
    }
    if (o.external) {
      // The broker publishes: wait for its first message until the time limit,
      // then until all arrived or nothing moved for drain_s.
      if (t.received >= o.external) break;
      if (t.received > 0 && now - last_progress > stall_ns) break;
      if (now > deadline) {
        r->timed_out = true;
        break;
      }
    } else {
      bool publishing_over = t.publishers_done >= PublishersTotal(o);
      if (publishing_over && publishers_done_at == 0) publishers_done_at = now;
      if (publishing_over && t.received >= t.published) break;
      // Nothing moved for drain_s: the rest was lost (or everything is stuck).
      if (now - last_progress > stall_ns) break;
      if (now > deadline && board->stop_publishing.load(std::memory_order_relaxed) == 0) {
        board->stop_publishing.store(1, std::memory_order_release);
        if (o.messages != 0) r->timed_out = true;
      }
      if (now > hard_deadline) {
        r->timed_out = true;
        break;
      }
    }
    if (std::string dead = CheckWorkers(pids); !dead.empty()) {
      r->ok = false;
      r->error = dead;
      return;
    }
  }
  if (publishers_done_at != 0) {
    Totals t = Sum(*board);
    if (t.first_publish_ns != 0 && publishers_done_at > t.first_publish_ns) {
      r->publish_msgs_per_s =
          static_cast<double>(t.published) / Seconds(publishers_done_at - t.first_publish_ns);
    }
  }
}

// Phase::kStop: waits for the workers to close up and exit.
void StopWorkers(Board* board, const std::vector<pid_t>& pids) {
  board->phase.store(static_cast<int>(Phase::kStop), std::memory_order_release);
  const int64_t deadline = MonoNs() + 10 * kNsPerS;
  std::vector<bool> reaped(pids.size(), false);
  size_t left = pids.size();
  while (left > 0) {
    for (size_t i = 0; i < pids.size(); ++i) {
      int status = 0;
      if (reaped[i]) continue;
      pid_t got = waitpid(pids[i], &status, WNOHANG);
      if (got == pids[i] || got < 0) {
        reaped[i] = true;
        --left;
      }
    }
    if (left == 0) break;
    if (MonoNs() > deadline) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (!reaped[i]) kill(pids[i], SIGKILL);
      }
      for (size_t i = 0; i < pids.size(); ++i) {
        if (!reaped[i]) waitpid(pids[i], nullptr, 0);
      }
      break;
    }
    SleepNs(kPollNs);
  }
}

void Summarize(const BenchOptions& o, const Board& board, Report* r) {
  Totals t = Sum(board);
  if (r->error.empty()) r->error = t.error;
  r->connected = t.connected;
  r->failed = t.failed;
  r->lost = t.lost;
  r->pings = t.pings;
  if (t.last_connack_ns > t.first_connect_ns && t.first_connect_ns != 0) {
    r->setup_s = Seconds(t.last_connack_ns - t.first_connect_ns);
    r->conn_per_s = static_cast<double>(t.connected) / r->setup_s;
  }
  if (o.scenario == Scenario::kConn) {
    r->completeness = o.clients ? static_cast<double>(t.connected) / o.clients : 0;
    if (r->rss_before_kb >= 0 && r->rss_after_kb >= 0 && t.connected > 0) {
      r->bytes_per_conn =
          static_cast<double>(r->rss_after_kb - r->rss_before_kb) * 1024.0 / t.connected;
    }
    return;
  }
  r->published = t.published;
  r->completed = t.completed;
  r->received = t.received;
  r->duplicates = t.duplicates;
  r->expected = o.external ? o.external : t.published;
  if (r->expected > 0) {
    r->completeness = static_cast<double>(t.received) / static_cast<double>(r->expected);
  }
  if (t.first_publish_ns != 0 && t.last_receive_ns > t.first_publish_ns) {
    r->elapsed_s = Seconds(t.last_receive_ns - t.first_publish_ns);
    r->msgs_per_s = static_cast<double>(t.received) / r->elapsed_s;
  }
  r->latency.Clear();
  for (int w = 0; w < board.workers; ++w) r->latency.Merge(board.slots[w].latency);
}

}  // namespace

long ReadRssKb(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

Report Coordinate(const BenchOptions& o, Board* board, const std::vector<pid_t>& pids) {
  Report r;
  const int64_t started = MonoNs();
  if (o.broker_pid > 0) {
    // Sampled before any connection exists, so the difference is theirs alone.
    r.rss_before_kb = ReadRssKb(o.broker_pid);
    if (r.rss_before_kb < 0) r.error = "cannot read VmRSS of pid " + std::to_string(o.broker_pid);
  }
  AwaitSetup(o, board, pids, &r);
  if (r.ok && o.scenario == Scenario::kConn) {
    if (Sum(*board).connected == 0) {
      r.ok = false;
      r.error = Sum(*board).error;
    } else {
      Hold(o, pids, &r);
    }
  } else if (r.ok) {
    if (!o.ready_file.empty()) {
      if (std::FILE* f = std::fopen(o.ready_file.c_str(), "w")) {
        std::fprintf(f, "%llu\n", static_cast<unsigned long long>(Sum(*board).connected));
        std::fclose(f);
      }
    }
    RunMessages(o, board, pids, &r);
  }
  StopWorkers(board, pids);
  r.wall_s = Seconds(MonoNs() - started);
  rusage usage{};
  if (getrusage(RUSAGE_CHILDREN, &usage) == 0) {
    auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
    r.bench_cpu_s = s(usage.ru_utime) + s(usage.ru_stime);
  }
  Summarize(o, *board, &r);
  return r;
}

}  // namespace herald::bench
