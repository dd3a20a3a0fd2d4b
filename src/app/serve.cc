#include "app/serve.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <memory>

#include "api/devices_routes.h"
#include "api/events_routes.h"
#include "app/kafka_bridge.h"
#include "app/pipeline_sink.h"
#include "api/http.h"
#include "api/router.h"
#include "api/service.h"
#include "api/tenants.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/shard.h"
#include "core/time_format.h"
#include "core/version.h"
#include "mqtt/gateway.h"
#include "log/event_log.h"
#include "store/db.h"
#include "store/keys.h"
#include "stream/layout.h"
#include "stream/pipeline.h"

namespace herald::app {
namespace {

using store::kMetaFamily;

Status ApplyEndpoint(const std::optional<std::string>& flag, const char* name, Endpoint* out) {
  if (!flag) return Status::Ok();
  auto ep = ParseEndpoint(*flag);
  if (!ep.ok()) return Status::InvalidArgument(std::string(name) + ": " + ep.status().message());
  *out = *ep;
  return Status::Ok();
}

// The partition count is part of the on-disk layout: refuse to start with another.
Status CheckPartitions(store::Db& db, unsigned partitions) {
  auto cf = db.Family(kMetaFamily).value();
  auto stored = db.Get(cf, "partitions");
  HERALD_RETURN_IF_ERROR(stored.status());
  if (stored->has_value()) {
    if (**stored != std::to_string(partitions)) {
      return Status::FailedPrecondition("the data directory was created with " + **stored +
                                        " partitions; server.partitions is " +
                                        std::to_string(partitions) + " and cannot change");
    }
    return Status::Ok();
  }
  store::WriteBatch b;
  b.Put(cf, "partitions", std::to_string(partitions));
  return db.Write(std::move(b));
}

// The store's layout version (store/keys.h): a fresh directory gets the current
// one, a layout-1 directory is migrated in place, a newer one is refused.
Status CheckLayout(store::Db& db, unsigned partitions) {
  auto cf = db.Family(kMetaFamily).value();
  auto stored = db.Get(cf, "layout");
  HERALD_RETURN_IF_ERROR(stored.status());
  int layout = store::kLayoutVersion;
  if (stored->has_value()) {
    layout = std::atoi((*stored)->c_str());
    if (layout == store::kLayoutVersion) return Status::Ok();
    if (layout <= 0 || layout > store::kLayoutVersion) {
      return Status::FailedPrecondition(
          "the data directory uses storage layout " + **stored + ", written by a newer herald; "
          "this herald reads layouts 1 to " + std::to_string(store::kLayoutVersion) +
          ": run the newer herald, or start with an empty --data-dir");
    }
  } else {
    auto parts = db.Get(cf, "partitions");
    HERALD_RETURN_IF_ERROR(parts.status());
    layout = parts->has_value() ? 1 : store::kLayoutVersion;  // layout 1 had no marker
  }
  if (layout == 1) {
    log::Warn("migrating the data directory from storage layout 1 to 2");
    auto n = stream::MigrateLayout1(&db, partitions);
    if (!n.ok()) {
      return Status(n.status().code(),
                    "cannot migrate the data directory from storage layout 1: " + n.status().message());
    }
    log::Info("data directory migrated", {{"records", *n}});
  }
  store::WriteBatch b;
  b.Put(cf, "layout", std::to_string(store::kLayoutVersion));
  return db.Write(std::move(b));
}

// A virtual clock resumes where it stopped, so virtual time never runs backwards
// across restarts.
Result<std::unique_ptr<VirtualClock>> MakeVirtualClock(store::Db& db, const Config& config) {
  Micros start = ParseIsoTime(config.server.virtual_clock_start).value();
  auto cf = db.Family(kMetaFamily).value();
  auto stored = db.Get(cf, "virtual_clock");
  HERALD_RETURN_IF_ERROR(stored.status());
  if (stored->has_value()) start = std::max<Micros>(start, std::stoll(**stored));
  auto clock = std::make_unique<VirtualClock>(start);
  store::Db* dbp = &db;
  clock->OnMove([dbp, cf](Micros now) {
    store::WriteBatch b;
    b.Put(cf, "virtual_clock", std::to_string(now));
    dbp->WriteAsync(std::move(b), [](Status s) {
      if (!s.ok()) log::Error("cannot persist the virtual clock", {{"error", s}});
    });
  });
  return clock;
}

// Writes the admin key to <data-dir>/admin.key with mode 0600.
Status WriteAdminKey(const std::string& data_dir, const std::string& key) {
  std::string path = data_dir + "/admin.key";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("cannot write " + path + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  std::string line = key + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  return ok ? Status::Ok() : Status::IoError("cannot write " + path);
}

void AddProcessMetrics(MetricsRegistry& m, Micros started_at) {
  m.GetGauge("herald_build_info", "Build information.", {{"version", HERALD_VERSION}}).Set(1);
  m.AddCollector([started_at](MetricsRegistry& r) {
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
      std::fclose(f);
    }
    r.GetGauge("herald_process_resident_memory_bytes", "Resident set size.")
        .Set(resident * ::sysconf(_SC_PAGESIZE));
    std::int64_t fds = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
      while (::readdir(d)) ++fds;
      ::closedir(d);
      fds -= 3;  // ".", ".." and the directory's own descriptor
    }
    r.GetGauge("herald_process_open_fds", "Open file descriptors.").Set(fds);
    r.GetGauge("herald_uptime_seconds", "Seconds since start.")
        .Set((SystemClock().Now() - started_at) / kMicrosPerSecond);
  });
}

}  // namespace

Result<Config> LoadConfig(const ServeFlags& flags) {
  Config config = Config::Defaults();
  if (!flags.config_file.empty()) {
    auto c = Config::FromFile(flags.config_file);
    if (!c.ok()) return c.status();
    config = std::move(*c);
  }
  if (flags.data_dir) config.server.data_dir = *flags.data_dir;
  if (flags.log_level) config.server.log_level = *flags.log_level;
  HERALD_RETURN_IF_ERROR(ApplyEndpoint(flags.http_listen, "--http-listen", &config.http.listen));
  HERALD_RETURN_IF_ERROR(ApplyEndpoint(flags.mqtt_listen, "--mqtt-listen", &config.mqtt.listen));
  HERALD_RETURN_IF_ERROR(ApplyEndpoint(flags.ws_listen, "--ws-listen", &config.mqtt.ws_listen));
  if (flags.kafka_brokers) config.events.kafka_brokers = *flags.kafka_brokers;
  if (flags.virtual_clock) config.server.virtual_clock = true;
  if (flags.mqtt_open) config.mqtt.open_mode = true;
  HERALD_RETURN_IF_ERROR(config.Validate());
  return config;
}

int Serve(const Config& config) {
  log::SetLevel(log::ParseLevel(config.server.log_level).value());
  // Signals are taken synchronously by this thread (sigwait below); block them
  // before any other thread exists so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto fail = [](const Status& s) {
    log::Error("herald cannot start", {{"error", s}});
    return 1;
  };
  const std::string& dir = config.server.data_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(Status::IoError("cannot create data directory " + dir + ": " + ec.message()));

  SystemClock system_clock;
  MetricsRegistry metrics;
  AddProcessMetrics(metrics, system_clock.Now());

  store::DbOptions db_options{config.store, &metrics};
  std::vector<std::string> families = mqtt::GatewayColumnFamilies();
  families.push_back(kMetaFamily);
  families.push_back(api::kTenantsFamily);
  families.push_back(api::kIngestKeysFamily);
  for (const auto& f : stream::PipelineColumnFamilies()) families.push_back(f);
  auto db = store::Db::Open(dir + "/store", db_options, families);
  if (!db.ok()) return fail(db.status());
  if (Status s = CheckPartitions(**db, config.server.partitions); !s.ok()) return fail(s);

  std::unique_ptr<VirtualClock> virtual_clock;
  const Clock* clock = &system_clock;
  if (config.server.virtual_clock) {
    auto vc = MakeVirtualClock(**db, config);
    if (!vc.ok()) return fail(vc.status());
    virtual_clock = std::move(*vc);
    clock = virtual_clock.get();
    log::Warn("running on a virtual clock", {{"now", FormatIsoTime(clock->Now())}});
  }

  auto tenants = api::TenantDirectory::Load(db->get(), clock);
  if (!tenants.ok()) return fail(tenants.status());
  if ((*tenants)->empty()) {
    auto created = (*tenants)->Create("default", "default", /*admin=*/true);
    if (!created.ok()) return fail(created.status());
    if (Status s = WriteAdminKey(dir, created->api_key); !s.ok()) return fail(s);
    std::printf("admin key for tenant \"default\" (shown once; also in %s/admin.key): %s\n",
                dir.c_str(), created->api_key.c_str());
    std::fflush(stdout);
  }

  auto devices = mqtt::DeviceRegistry::Open(db->get(), clock);
  if (!devices.ok()) return fail(devices.status());

  if (Status s = CheckLayout(**db, config.server.partitions); !s.ok()) return fail(s);
  ShardExecutor shards(config.server.shards, "shard", clock);
  metrics.GetGauge("herald_shards", "Shard worker threads.").Set(shards.size());
  metrics.GetGauge("herald_partitions", "Partitions users are hashed into.")
      .Set(config.server.partitions);
  eventlog::LogOptions log_options;
  log_options.dir = dir + "/log";
  log_options.partitions = config.server.partitions;
  log_options.sync = config.events.log_sync;
  log_options.segment_bytes = config.events.segment_mb << 20;
  log_options.retention_bytes_per_partition = config.events.retention_mb << 20;
  log_options.retention_age = static_cast<Micros>(config.events.retention_hours) * kMicrosPerHour;
  log_options.metrics = &metrics;
  log_options.clock = clock;
  auto event_log = eventlog::EventLog::Open(log_options);
  if (!event_log.ok()) return fail(event_log.status());

  stream::PipelineOptions pipeline_options;
  pipeline_options.log = event_log->get();
  pipeline_options.db = db->get();
  pipeline_options.shards = &shards;
  pipeline_options.clock = clock;
  pipeline_options.metrics = &metrics;
  pipeline_options.allowed_lateness =
      static_cast<Micros>(config.events.allowed_lateness_s) * kMicrosPerSecond;
  pipeline_options.checkpoint_interval =
      static_cast<Micros>(config.events.checkpoint_interval_ms) * 1000;
  auto pipeline = stream::Pipeline::Create(pipeline_options);
  if (!pipeline.ok()) return fail(pipeline.status());
  if (Status s = (*pipeline)->Start(); !s.ok()) return fail(s);
  PipelineEventSink gateway_events(pipeline->get());

  metrics.AddCollector([&shards](MetricsRegistry& r) {
    for (unsigned i = 0; i < shards.size(); ++i) {
      r.GetGauge("herald_shard_queue_depth", "Tasks queued on a shard.",
                 {{"shard", std::to_string(i)}})
          .Set(static_cast<std::int64_t>(shards.QueueDepth(i)));
    }
  });

  api::Router router(
      [t = tenants->get()](std::string_view key, bool* admin) { return t->Authenticate(key, admin); },
      &metrics);
  api::ServiceContext ctx{&config, clock, virtual_clock.get(), &metrics, tenants->get()};
  api::RegisterCoreRoutes(router, ctx);
  api::RegisterDeviceRoutes(router, devices->get());
  api::EventRoutesContext events_ctx{pipeline->get(), db->get(), clock,
                                     config.events.max_batch_events,
                                     static_cast<size_t>(config.http.max_body_bytes) * 4};
  api::RegisterEventRoutes(router, events_ctx);

  api::HttpServerOptions http_options{config.http.listen,         config.http.threads,
                                      config.http.max_body_bytes, config.http.max_header_bytes,
                                      config.http.idle_timeout_s, &metrics};
  auto http = api::HttpServer::Start(
      http_options, [&router](api::HttpRequest& req, api::Respond respond) {
        router.Handle(req, std::move(respond));
      });
  if (!http.ok()) return fail(http.status());

  if (config.mqtt.open_mode) log::Warn("mqtt open mode: anonymous clients, no ACL");
  // Outcome events go to Kafka too in cluster mode; set before the gateway reports.
  std::unique_ptr<eventlog::KafkaSink> outcomes;
  if (!config.events.kafka_brokers.empty()) {
    eventlog::KafkaSinkOptions so;
    so.brokers = config.events.kafka_brokers;
    so.metrics = &metrics;
    auto sink = eventlog::KafkaSink::Open(so);
    if (!sink.ok()) {
      (*http)->Stop();
      return fail(sink.status());
    }
    outcomes = std::move(*sink);
    gateway_events.ProduceTo(outcomes.get(), config.events.kafka_outcomes_topic);
  }
  mqtt::GatewayOptions gateway_options{config.mqtt, db->get(), devices->get(), &gateway_events,
                                       clock, &metrics};
  auto gateway = mqtt::Gateway::Start(gateway_options);
  if (!gateway.ok()) {
    (*http)->Stop();
    return fail(gateway.status());
  }

  std::unique_ptr<KafkaBridge> kafka;
  if (!config.events.kafka_brokers.empty()) {
    auto k = KafkaBridge::Start(config.events, pipeline->get(), &metrics);
    if (!k.ok()) {
      (*gateway)->Stop();
      (*http)->Stop();
      return fail(k.status());
    }
    kafka = std::move(*k);
  }

  std::string ws = (*gateway)->ws_endpoint().empty() ? "off" : (*gateway)->ws_endpoint().ToString();
  std::printf("listening http=%s mqtt=%s ws=%s\n", (*http)->local_endpoint().ToString().c_str(),
              (*gateway)->tcp_endpoint().ToString().c_str(), ws.c_str());
  std::fflush(stdout);
  log::Info("herald serving", {{"version", HERALD_VERSION},
                               {"data_dir", dir},
                               {"shards", shards.size()},
                               {"partitions", config.server.partitions}});

  int sig = 0;
  sigwait(&signals, &sig);
  log::Info("shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});

  // Stop intake first, then drain the work it produced, then flush storage.
  if (kafka) kafka->Stop();
  (*gateway)->Stop();
  if (outcomes) (void)outcomes->Flush(5000);
  (*http)->Stop();
  (*pipeline)->Stop();  // final feature checkpoint, on the shards
  shards.Stop();
  event_log->reset();
  Status flushed = (*db)->Flush();
  if (!flushed.ok()) log::Error("flush at shutdown failed", {{"error", flushed}});
  db->reset();
  log::Info("herald stopped");
  return flushed.ok() ? 0 : 1;
}

}  // namespace herald::app
