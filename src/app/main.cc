// herald: the command-line entry point.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "app/bench_ingest.h"
#include "app/bench_engine.h"
#include "app/bench_profile.h"
#include "app/bench_states.h"
#include "app/model_cmd.h"
#include "app/policy_cmd.h"
#include "app/serve.h"
#include "app/simulate_cmd.h"
#include "node/config.h"
#include "core/version.h"

namespace {

// Subcommands whose capability is not in this build say so and exit 2, so that
// scripts can tell "not available" from success.
int NotAvailable(const char* what) {
  std::fprintf(stderr, "herald %s: not available in this build (%s)\n", what, HERALD_VERSION);
  return 2;
}

// `herald bench mqtt ARGS` runs the MQTT load generator installed beside herald.
int BenchMqtt(const std::vector<std::string>& args) {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return NotAvailable("bench mqtt");
  self[n] = '\0';
  std::string dir(self);
  dir.resize(dir.rfind('/') + 1);
  std::string tool = dir + "herald-mqtt-bench";
  std::vector<char*> argv;
  argv.push_back(tool.data());
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(tool.c_str(), argv.data());
  std::fprintf(stderr, "herald bench mqtt: cannot run %s\n", tool.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"herald: a self-hosted push engine with an MQTT 3.1.1 gateway", "herald"};
  app.set_version_flag("--version,-V", std::string("herald ") + HERALD_VERSION);
  app.require_subcommand(1);

  herald::app::ServeFlags flags;
  std::string data_dir, http_listen, mqtt_listen, ws_listen, log_level;
  auto* serve = app.add_subcommand("serve", "Serve the HTTP API and MQTT gateway until SIGINT/SIGTERM");
  serve->add_option("--config", flags.config_file, "TOML config file (see `herald config defaults`)");
  serve->add_option("--data-dir", data_dir, "Data directory (default ./data)");
  serve->add_option("--http-listen", http_listen, "HTTP address HOST:PORT (port 0: any free port)");
  serve->add_option("--mqtt-listen", mqtt_listen, "MQTT TCP address HOST:PORT");
  serve->add_option("--ws-listen", ws_listen, "MQTT-over-WebSocket address HOST:PORT");
  serve->add_option("--log-level", log_level, "debug, info, warn or error");
  std::string kafka_brokers;
  serve->add_option("--kafka-brokers", kafka_brokers,
                    "Consume events from Kafka (HOST:PORT,...); see [kafka] in the config");
  serve->add_flag("--virtual-clock", flags.virtual_clock,
                  "Run on a virtual clock moved by POST /v1/admin/clock (loopback only)");
  serve->add_flag("--mqtt-open", flags.mqtt_open, "General-purpose broker: anonymous clients, no ACL");
  serve->add_flag("--demo", flags.demo,
                  "Seed a demo: users with MQTT devices, accounts posting every few seconds, a line on stdout");

  auto* config_cmd = app.add_subcommand("config", "Print or check configuration");
  config_cmd->require_subcommand(1);
  auto* defaults = config_cmd->add_subcommand("defaults", "Print every setting with its default");
  std::string check_file;
  auto* check = config_cmd->add_subcommand("check", "Validate a config file");
  check->add_option("file", check_file, "TOML file")->required();

  auto* simulate = app.add_subcommand(
      "simulate", "Push a simulated population through herald and compare strategies (docs/simulation.md)");
  herald::app::SimulateFlags sim;
  simulate->add_option("--users", sim.users, "Simulated users (default 10000)");
  simulate->add_option("--days", sim.days, "Simulated days (default 7)");
  simulate->add_option("--strategy", sim.strategies,
                       "Comma-separated: blast, fixed-caps, herald, herald-no-sendtime (default herald)");
  simulate->add_option("--seed", sim.seed, "Random seed: the same seed gives the same report.json (default 1)");
  simulate->add_option("--report", sim.report, "Directory for report.html, report.json and the SVG charts");
  simulate->add_option("--zones", sim.zones,
                       "Time-zone mix, ZONE=SHARE,... (default mostly Asia/Shanghai)");
  simulate->add_flag("--through-mqtt", sim.through_mqtt,
                     "Serve herald as a child process and connect every device over MQTT on loopback");
  simulate->add_flag("--no-faults", sim.no_faults, "Through MQTT: no disconnects, offline devices or kill -9");
  simulate->add_flag("--quiet", sim.quiet, "No progress line on stderr");
  auto* bench = app.add_subcommand("bench", "Run a benchmark: `herald bench mqtt --help`");
  bench->prefix_command();  // everything after `bench` goes to the benchmark
  bench->footer(
      "Kinds: ingest (event pipeline throughput and latency), states (the cost of a\n"
      "registered partition state per event), policy (decisions per second per core,\n"
      "replay throughput), model (CTR predictions and updates per second), profile, engine (planning and\n"
      "the schedule), auction (slot contentions ranked per second), digest (daily digests assembled),\n"
      "mqtt (the MQTT load generator;\n"
      "`herald bench mqtt --help`).");
  auto* policy_cmd = app.add_subcommand("policy", "What-if replay of history through the policy: `herald policy replay --help`");
  policy_cmd->prefix_command();
  auto* model_cmd = app.add_subcommand("model", "Models: `herald model eval-ctr --help`");
  model_cmd->prefix_command();
  auto* train = app.add_subcommand("train", "Train the next model version from samples: `herald train --help`");
  train->prefix_command();
  auto* audit = app.add_subcommand("audit", "Verify and export the audit log");
  audit->allow_extras();

  CLI11_PARSE(app, argc, argv);

  if (serve->parsed()) {
    if (!data_dir.empty()) flags.data_dir = data_dir;
    if (!http_listen.empty()) flags.http_listen = http_listen;
    if (!mqtt_listen.empty()) flags.mqtt_listen = mqtt_listen;
    if (!ws_listen.empty()) flags.ws_listen = ws_listen;
    if (!log_level.empty()) flags.log_level = log_level;
    if (!kafka_brokers.empty()) flags.kafka_brokers = kafka_brokers;
    auto config = herald::app::LoadConfig(flags);
    if (!config.ok()) {
      std::fprintf(stderr, "herald: %s\n", config.status().message().c_str());
      return 2;
    }
    return herald::app::Serve(*config, flags.demo);
  }
  if (defaults->parsed()) {
    std::string text = herald::node::RenderDefaults();
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  if (check->parsed()) {
    auto c = herald::node::Config::FromFile(check_file);
    herald::Status s = c.ok() ? c->Validate() : c.status();
    if (!s.ok()) {
      std::fprintf(stderr, "herald: %s\n", s.message().c_str());
      return 2;
    }
    std::printf("%s: ok\n", check_file.c_str());
    return 0;
  }
  if (simulate->parsed()) return herald::app::Simulate(sim, argv[0]);
  if (bench->parsed()) {
    std::vector<std::string> args = bench->remaining();
    using Bench = int (*)(const std::vector<std::string>&);
    static const std::map<std::string, Bench> kBenches = {
        {"mqtt", BenchMqtt},
        {"states", herald::app::BenchStates},
        {"policy", herald::app::BenchPolicy},
        {"model", herald::app::BenchModel},
        {"engine", herald::app::BenchEngine},
        {"auction", herald::app::BenchAuction},
        {"digest", herald::app::BenchDigest},
        {"profile", herald::app::BenchProfile},
        {"ingest", herald::app::BenchIngest}};
    if (!args.empty()) {
      if (auto it = kBenches.find(args[0]); it != kBenches.end()) {
        const Bench run = it->second;
        args.erase(args.begin());
        return run(args);
      }
    }
    return NotAvailable(args.empty() ? "bench" : ("bench " + args[0]).c_str());
  }
  if (policy_cmd->parsed()) {
    std::vector<std::string> args = policy_cmd->remaining();
    if (!args.empty() && args[0] == "replay") {
      args.erase(args.begin());
      return herald::app::PolicyReplay(args);
    }
    std::fprintf(stderr, "usage: herald policy replay --events FILE [--config ALT.toml] (--help for more)\n");
    return 2;
  }
  if (model_cmd->parsed()) return herald::app::ModelCommand(model_cmd->remaining());
  if (train->parsed()) return herald::app::TrainCommand(train->remaining());
  if (audit->parsed()) return NotAvailable("audit");
  return 0;
}
