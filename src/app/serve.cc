#include "app/serve.h"

#include <signal.h>

#include <cstdio>

#include "core/log.h"
#include "core/version.h"
#include "node/node.h"
#include "sim/demo.h"

#include <atomic>
#include <thread>

namespace herald::app {
namespace {

Status ApplyEndpoint(const std::optional<std::string>& flag, const char* name, Endpoint* out) {
  if (!flag) return Status::Ok();
  auto ep = ParseEndpoint(*flag);
  if (!ep.ok()) return Status::InvalidArgument(std::string(name) + ": " + ep.status().message());
  *out = *ep;
  return Status::Ok();
}

}  // namespace

Result<node::Config> LoadConfig(const ServeFlags& flags) {
  node::Config config = node::Config::Defaults();
  if (!flags.config_file.empty()) {
    auto c = node::Config::FromFile(flags.config_file);
    if (!c.ok()) return c.status();
    config = std::move(*c);
  }
  if (flags.data_dir) config.server.data_dir = *flags.data_dir;
  if (flags.log_level) {
    if (!log::ParseLevel(*flags.log_level).ok()) {
      return Status::InvalidArgument("--log-level must be debug, info, warn or error");
    }
    config.server.log_level = *flags.log_level;
  }
  HERALD_RETURN_IF_ERROR(ApplyEndpoint(flags.http_listen, "--http-listen", &config.http.listen));
  HERALD_RETURN_IF_ERROR(ApplyEndpoint(flags.mqtt_listen, "--mqtt-listen", &config.mqtt.listen));
  HERALD_RETURN_IF_ERROR(ApplyEndpoint(flags.ws_listen, "--ws-listen", &config.mqtt.ws_listen));
  if (flags.kafka_brokers) config.kafka.brokers = *flags.kafka_brokers;
  if (flags.virtual_clock) config.server.virtual_clock = true;
  if (flags.mqtt_open) config.mqtt.open_mode = true;
  HERALD_RETURN_IF_ERROR(config.Validate());
  return config;
}

int Serve(const node::Config& config, bool demo) {
  log::SetLevel(log::ParseLevel(config.server.log_level).value());
  // Signals are taken synchronously by this thread (sigwait below); block them
  // before any other thread exists so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto node = node::Node::Start(config);
  if (!node.ok()) {
    log::Error("herald cannot start", {{"error", node.status()}});
    return 1;
  }
  node::Node& n = **node;
  if (!n.created_admin_key().empty()) {
    std::printf("admin key for tenant \"default\" (shown once; also in %s/admin.key): %s\n",
                config.server.data_dir.c_str(), n.created_admin_key().c_str());
  }
  std::string ws = n.ws_endpoint().empty() ? "off" : n.ws_endpoint().ToString();
  std::printf("listening http=%s mqtt=%s ws=%s\n", n.http_endpoint().ToString().c_str(),
              n.mqtt_endpoint().ToString().c_str(), ws.c_str());
  std::fflush(stdout);
  log::Info("herald serving", {{"version", HERALD_VERSION},
                               {"data_dir", config.server.data_dir},
                               {"shards", n.shards().size()},
                               {"partitions", config.server.partitions}});

  std::atomic<bool> stop_demo{false};
  std::thread demo_thread;
  if (demo) {
    demo_thread = std::thread([&n, &stop_demo] {
      Status s = sim::RunDemo(n, sim::DemoOptions{}, stop_demo);
      if (!s.ok()) log::Error("the demo stopped", {{"error", s}});
    });
  }
  int sig = 0;
  sigwait(&signals, &sig);
  stop_demo = true;
  if (demo_thread.joinable()) demo_thread.join();
  log::Info("shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  Status flushed = n.Stop();
  node->reset();
  log::Info("herald stopped");
  return flushed.ok() ? 0 : 1;
}

}  // namespace herald::app
