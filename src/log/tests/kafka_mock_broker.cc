// A stand-alone Kafka for black-box tests: librdkafka's mock cluster in its own
// process, plus a small producer to feed it. Not a ctest test; see
// tests/blackbox/kafka_test.py.
//
//   kafka_mock_broker [serve] [--brokers N] [--partitions P] [--max-seconds S]
//                     [--debug CONTEXTS]
//     Starts a mock cluster of N brokers (default 3) with the topics herald.events
//     (P partitions, default 4) and herald.outcomes (P partitions), prints
//     "bootstrap=<host:port,...>" on stdout and serves until stdin reaches EOF
//     (the parent closed its end or died), SIGTERM/SIGINT/SIGHUP, or S seconds
//     have passed (default 120), whichever comes first. Exits 0 in every case but
//     setup failure. The mock keeps everything in memory: it forgets the topics,
//     records and committed offsets when it exits. --debug passes librdkafka debug
//     contexts ("mock", "all", ...) to the cluster's handle; its log goes to stderr.
//
//   kafka_mock_broker produce --bootstrap HOST:PORT,... [--topic T] [--timeout-ms MS]
//     Produces one record per stdin line to T (default herald.events) with
//     herald's KafkaSink (idempotent, keys partitioned with murmur2), waits for
//     every acknowledgement, then prints one line per input line, in input order:
//       ok <line> partition=<p> offset=<o>
//       failed <line> <error>
//     and exits 0 when every record was acknowledged, 1 otherwise, 2 on bad usage.
//     A line is "KEY<TAB>PAYLOAD", or just PAYLOAD, whose key is then the value of
//     its first "user_id" string member (taken literally, escapes and all; empty,
//     which means no key, when there is none). Inside PAYLOAD the byte 0x1E (ASCII
//     record separator, which valid JSON text never contains) stands for a newline,
//     so one record can carry several NDJSON events. Empty lines are skipped.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "log/kafka.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: kafka_mock_broker [serve] [--brokers N] [--partitions P] [--max-seconds S]\n"
               "                         [--debug CONTEXTS]\n"
               "       kafka_mock_broker produce --bootstrap HOST:PORT,... [--topic T] "
               "[--timeout-ms MS]\n");
  return 2;
}

// Parses a positive integer flag value; nullopt when it is not one.
std::optional<int> PositiveInt(const char* s) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v <= 0 || v > 1000000) return std::nullopt;
  return static_cast<int>(v);
}

int Serve(int brokers, int partitions, int max_seconds, const std::string& debug) {
  // Block the stop signals before librdkafka starts its threads, so they inherit
  // the mask and only this thread ever takes the signals (with sigtimedwait).
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);  // no "no bootstrap.servers"
  if (!debug.empty()) {
    if (rd_kafka_conf_set(conf, "debug", debug.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "7", err, sizeof err) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "kafka_mock_broker: --debug: %s\n", err);
      rd_kafka_conf_destroy(conf);
      return 2;
    }
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    std::fprintf(stderr, "kafka_mock_broker: rd_kafka_new: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t* mock = rd_kafka_mock_cluster_new(rk, brokers);
  if (mock == nullptr) {
    std::fprintf(stderr, "kafka_mock_broker: could not create the mock cluster\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  for (const char* topic : {"herald.events", "herald.outcomes"}) {
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mock, topic, partitions, 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fprintf(stderr, "kafka_mock_broker: create topic %s: %s\n", topic, rd_kafka_err2str(e));
      rd_kafka_mock_cluster_destroy(mock);
      rd_kafka_destroy(rk);
      return 1;
    }
  }
  std::printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mock));
  std::fflush(stdout);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
  const char* reason = "lifetime limit";
  bool stdin_open = true;
  for (;;) {
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (stdin_open) {
      pollfd p{STDIN_FILENO, POLLIN, 0};
      int n = poll(&p, 1, 100);
      if (n > 0) {
        char buf[4096];
        ssize_t r = read(STDIN_FILENO, buf, sizeof buf);  // anything read is ignored
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
          reason = "stdin closed";
          break;
        }
      } else if (n < 0 && errno != EINTR) {
        stdin_open = false;  // not pollable: rely on signals and the limit
      }
    }
    timespec wait{0, stdin_open ? 0 : 100 * 1000 * 1000};
    int sig = sigtimedwait(&stop, nullptr, &wait);
    if (sig > 0) {
      reason = sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGHUP";
      break;
    }
  }
  std::fprintf(stderr, "kafka_mock_broker: stopping (%s)\n", reason);
  rd_kafka_mock_cluster_destroy(mock);
  rd_kafka_destroy(rk);
  return 0;
}

// The value of the first "user_id" string member of `json`, taken literally.
std::string UserIdOf(std::string_view json) {
  constexpr std::string_view kName = "\"user_id\"";
  size_t at = json.find(kName);
  if (at == std::string_view::npos) return "";
  size_t i = at + kName.size();
  while (i < json.size() && (json[i] == ' ' || json[i] == '\t')) ++i;
  if (i >= json.size() || json[i] != ':') return "";
  ++i;
  while (i < json.size() && (json[i] == ' ' || json[i] == '\t')) ++i;
  if (i >= json.size() || json[i] != '"') return "";
  size_t begin = ++i;
  while (i < json.size() && json[i] != '"') i += json[i] == '\\' ? 2 : 1;
  if (i >= json.size()) return "";
  return std::string(json.substr(begin, i - begin));
}

int Produce(const std::string& bootstrap, const std::string& topic, int timeout_ms) {
  herald::eventlog::KafkaSinkOptions o;
  o.brokers = bootstrap;
  o.close_timeout_ms = timeout_ms;
  auto sink = herald::eventlog::KafkaSink::Open(o);
  if (!sink.ok()) {
    std::fprintf(stderr, "kafka_mock_broker: %s\n", sink.status().ToString().c_str());
    return 1;
  }

  struct Outcome {
    int line = 0;
    bool done = false;
    std::string text;
  };
  std::mutex mu;
  std::vector<Outcome> outcomes;
  std::string line;
  int number = 0;
  while (std::getline(std::cin, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::string key, payload;
    size_t tab = line.find('\t');
    if (tab != std::string::npos) {
      key = line.substr(0, tab);
      payload = line.substr(tab + 1);
    } else {
      payload = line;
      key = UserIdOf(payload);
    }
    std::replace(payload.begin(), payload.end(), '\x1e', '\n');
    size_t index;
    {
      std::lock_guard<std::mutex> lk(mu);
      index = outcomes.size();
      outcomes.push_back({number, false, ""});
    }
    (*sink)->Produce(topic, key, payload,
                     [&mu, &outcomes, index](herald::Result<herald::eventlog::KafkaDelivery> r) {
                       std::lock_guard<std::mutex> lk(mu);
                       Outcome& out = outcomes[index];
                       out.done = true;
                       out.text = r.ok() ? "ok " + std::to_string(out.line) +
                                               " partition=" + std::to_string(r->partition) +
                                               " offset=" + std::to_string(r->offset)
                                         : "failed " + std::to_string(out.line) + " " +
                                               r.status().ToString();
                     });
  }
  herald::Status flushed = (*sink)->Flush(timeout_ms);
  sink->reset();  // fails whatever is still in flight, so every outcome is done
  bool all_ok = flushed.ok();
  for (const Outcome& out : outcomes) {
    if (!out.done) {
      std::printf("failed %d not acknowledged\n", out.line);
      all_ok = false;
      continue;
    }
    std::printf("%s\n", out.text.c_str());
    if (out.text.rfind("ok ", 0) != 0) all_ok = false;
  }
  if (!flushed.ok()) std::fprintf(stderr, "kafka_mock_broker: %s\n", flushed.ToString().c_str());
  std::fflush(stdout);
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string mode = "serve";
  size_t i = 0;
  if (!args.empty() && (args[0] == "serve" || args[0] == "produce")) mode = args[i++];
  int brokers = 3, partitions = 4, max_seconds = 120, timeout_ms = 30000;
  std::string bootstrap, topic = "herald.events", debug;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      Usage();
      return 0;
    }
    if (i + 1 >= args.size()) return Usage();
    const char* v = args[++i].c_str();
    std::optional<int> n = PositiveInt(v);
    if (mode == "serve" && a == "--brokers" && n) {
      brokers = *n;
    } else if (mode == "serve" && a == "--partitions" && n) {
      partitions = *n;
    } else if (mode == "serve" && a == "--max-seconds" && n) {
      max_seconds = *n;
    } else if (mode == "serve" && a == "--debug") {
      debug = v;
    } else if (mode == "produce" && a == "--bootstrap") {
      bootstrap = v;
    } else if (mode == "produce" && a == "--topic") {
      topic = v;
    } else if (mode == "produce" && a == "--timeout-ms" && n) {
      timeout_ms = *n;
    } else {
      return Usage();
    }
  }
  if (mode == "produce") {
    if (bootstrap.empty()) return Usage();
    return Produce(bootstrap, topic, timeout_ms);
  }
  return Serve(brokers, partitions, max_seconds, debug);
}
