// Node: one running herald — the store, the clock, the event log, the shards, the
// pipeline and its partition states, the MQTT gateway, the HTTP API and, in
// cluster mode, Kafka — assembled in one place and in one order, so that `herald
// serve`, the benchmarks, the tests and the simulator all run the same system.
//
// Start() opens or creates the data directory, checks and migrates its layout,
// recovers every module (the pipeline replays the log from its checkpoints), and
// binds the listeners it was asked for before it returns. Stop() stops intake
// first, then drains the work intake produced, then flushes storage.
//
// Thread-safe: the accessors may be used from any thread between Start() and
// Stop(); Stop() from one thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/shard.h"
#include "core/worker_pool.h"
#include "node/config.h"
#include "stream/partition_state.h"

namespace herald {
namespace store {
class Db;
}
namespace eventlog {
class EventLog;
}
namespace stream {
class Pipeline;
}
namespace policy {
class AccountDirectory;
}
namespace profile {
class ProfileStore;
}
namespace engine {
class Engine;
class CampaignDirectory;
}
namespace mqtt {
class Gateway;
class DeviceRegistry;
}  // namespace mqtt
namespace api {
class Router;
class TenantDirectory;
class HttpServer;
}  // namespace api
}  // namespace herald

namespace herald::node {

struct NodeOptions {
  // Serve HTTP on config.http.listen (the routes are registered either way, so
  // that an in-process caller can use the Router).
  bool http = true;
  // Run the MQTT gateway on config.mqtt's listeners.
  bool mqtt = true;
  // Registers extra partition states before the pipeline starts (tests, and
  // modules assembled by the caller).
  std::function<void(stream::Pipeline&)> register_states;
  // Fault injection for tests: runs before each group write of the event log
  // (eventlog::LogOptions::write_fault). Null in production.
  std::function<Status(PartitionId)> log_write_fault;
  // The engine's random seed (message ids, sampling); 0: random. A simulation
  // fixes it so that the same seed gives the same run.
  std::uint64_t engine_seed = 0;
};

class Node {
 public:
  static Result<std::unique_ptr<Node>> Start(const Config& config, NodeOptions options = {});
  ~Node();

  // Stops intake (Kafka, the gateway, HTTP), writes a final checkpoint, stops the
  // shards and flushes the store. Returns the first error of the final flush.
  // Idempotent.
  Status Stop();

  const Config& config() const { return config_; }
  const Clock& clock() const { return *clock_; }
  VirtualClock* virtual_clock() const { return virtual_clock_.get(); }  // null: system clock
  MetricsRegistry& metrics() { return metrics_; }
  store::Db& db() { return *db_; }
  eventlog::EventLog& log() { return *log_; }
  ShardExecutor& shards() { return *shards_; }
  stream::Pipeline& pipeline() { return *pipeline_; }
  api::TenantDirectory& tenants() { return *tenants_; }
  policy::AccountDirectory& accounts() { return *accounts_; }
  // The policy's rules as this node runs them (config().policy, resolved).
  const policy::PolicyConfig& policy_config() const { return policy_config_; }
  mqtt::DeviceRegistry& devices() { return *devices_; }
  // The profiles' partition state (profile/profile_store.h).
  stream::StateHandle<profile::ProfileStore> profiles() const;
  engine::Engine& engine();
  engine::CampaignDirectory& campaigns();
  api::Router& router() { return *router_; }
  mqtt::Gateway* gateway() { return gateway_.get(); }  // null without NodeOptions::mqtt

  // The bound addresses; empty when that listener is off.
  Endpoint http_endpoint() const;
  Endpoint mqtt_endpoint() const;
  Endpoint ws_endpoint() const;
  Endpoint tls_endpoint() const;

  // The admin key of the default tenant when this start created it (a fresh
  // data directory), else empty. Also written to <data_dir>/admin.key.
  const std::string& created_admin_key() const { return created_admin_key_; }

 private:
  struct Parts;
  explicit Node(const Config& config);
  Status Open(NodeOptions& options);
  // Merges every partition's account window into the accounts' reputation.
  void RefreshReputation();
  // Posts the daily training at the next model.training_time.
  void ArmTraining();

  Config config_;
  MetricsRegistry metrics_;
  SystemClock system_clock_;
  std::unique_ptr<VirtualClock> virtual_clock_;
  const Clock* clock_ = &system_clock_;
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<api::TenantDirectory> tenants_;
  policy::PolicyConfig policy_config_;
  std::unique_ptr<policy::AccountDirectory> accounts_;
  std::unique_ptr<mqtt::DeviceRegistry> devices_;
  std::unique_ptr<WorkerPool> background_;  // blocking work, off the shards and loops
  std::unique_ptr<ShardExecutor> shards_;
  std::unique_ptr<eventlog::EventLog> log_;
  std::unique_ptr<stream::Pipeline> pipeline_;
  std::unique_ptr<api::Router> router_;
  std::unique_ptr<api::HttpServer> http_;
  std::unique_ptr<mqtt::Gateway> gateway_;
  std::unique_ptr<Parts> parts_;  // the wiring that no caller needs by name
  std::string created_admin_key_;
  ShardExecutor::TimerId retention_timer_ = 0;
  ShardExecutor::TimerId reputation_timer_ = 0;
  ShardExecutor::TimerId training_timer_ = 0;
  std::mutex training_mu_;  // guards training_timer_ and training_stopped_
  bool training_stopped_ = false;
  bool stopped_ = false;
};

}  // namespace herald::node
