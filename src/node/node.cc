#include "node/node.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "api/devices_routes.h"
#include "api/events_routes.h"
#include "api/http.h"
#include "api/model_routes.h"
#include "api/policy_routes.h"
#include "api/profile_routes.h"
#include "api/engine_routes.h"
#include "api/router.h"
#include "api/service.h"
#include "api/tenants.h"
#include "core/log.h"
#include "core/time_format.h"
#include "core/version.h"
#include "log/event_log.h"
#include "log/kafka.h"
#include "mqtt/devices.h"
#include "mqtt/gateway.h"
#include "node/gateway_sink.h"
#include "node/kafka_bridge.h"
#include "model/daily.h"
#include "model/registry.h"
#include "model/send_time_store.h"
#include "policy/accounts.h"
#include "engine/engine.h"
#include "policy/policy_store.h"
#include "profile/privacy.h"
#include "profile/segment_directory.h"
#include "store/db.h"
#include "store/keys.h"
#include "stream/layout.h"
#include "stream/pipeline.h"

namespace herald::node {
namespace {

using store::kMetaFamily;

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
// one, a layout-1 directory is migrated in place, a newer one is refused. Runs
// before CheckPartitions writes anything, so that "fresh" is recognisable.
Status CheckLayout(store::Db& db, unsigned partitions) {
  auto cf = db.Family(kMetaFamily).value();
  auto stored = db.Get(cf, "layout");
  HERALD_RETURN_IF_ERROR(stored.status());
  int layout = store::kLayoutVersion;
  if (stored->has_value()) {
    char* end = nullptr;
    long v = std::strtol((*stored)->c_str(), &end, 10);
    if (end == (*stored)->c_str() || *end != '\0') {
      return Status::Corruption("the data directory's layout record is unreadable: \"" + **stored +
                                "\"");
    }
    if (v == store::kLayoutVersion) return Status::Ok();
    if (v <= 0 || v > store::kLayoutVersion) {
      return Status::FailedPrecondition(
          "the data directory uses storage layout " + **stored +
          ", written by a newer herald; this herald reads layouts 1 to " +
          std::to_string(store::kLayoutVersion) +
          ": run the newer herald, or start with an empty --data-dir");
    }
    layout = static_cast<int>(v);
  } else {
    auto parts = db.Get(cf, "partitions");
    HERALD_RETURN_IF_ERROR(parts.status());
    layout = parts->has_value() ? 1 : store::kLayoutVersion;  // layout 1 had no marker
  }
  if (layout == 1) {
    // Keys are rewritten by partition: with the wrong count every user would
    // land in the wrong one, so the count is checked before anything moves.
    HERALD_RETURN_IF_ERROR(CheckPartitions(db, partitions));
    log::Warn("migrating the data directory from storage layout 1 to 2");
    auto n = stream::MigrateLayout1(&db, partitions);
    if (!n.ok()) {
      return Status(n.status().code(), "cannot migrate the data directory from storage layout 1: " +
                                           n.status().message());
    }
    log::Info("data directory migrated", {{"records", *n}});
  }
  store::WriteBatch b;
  b.Put(cf, "layout", std::to_string(store::kLayoutVersion));
  return db.Write(std::move(b));
}

// A virtual clock resumes where it stopped, so virtual time never runs backwards
// across restarts.
Result<std::unique_ptr<VirtualClock>> MakeVirtualClock(store::Db& db, const ServerConfig& server) {
  Micros start = ParseIsoTime(server.virtual_clock_start).value();
  auto cf = db.Family(kMetaFamily).value();
  auto stored = db.Get(cf, "virtual_clock");
  HERALD_RETURN_IF_ERROR(stored.status());
  if (stored->has_value()) {
    char* end = nullptr;
    long long t = std::strtoll((*stored)->c_str(), &end, 10);
    if (end == (*stored)->c_str() || *end != '\0') {
      log::Error("unreadable virtual clock record; starting from virtual_clock_start",
                 {{"value", **stored}});
    } else {
      start = std::max<Micros>(start, t);
    }
  }
  auto clock = std::make_unique<VirtualClock>(start);
  store::Db* dbp = &db;
  clock->OnMove([dbp, cf](Micros now) {
    store::WriteBatch b;
    b.Put(cf, "virtual_clock", std::to_string(now));
    dbp->WriteAsyncAlways(std::move(b), [](Status s) {
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

// Where the privacy secret lives: profile.secret_file, by default the file
// "<data_dir>.privacy.key" beside the data directory. Never inside it: the data
// directory alone must not reveal what users read.
Result<std::string> PrivacySecretPath(const std::string& data_dir, const std::string& configured) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::weakly_canonical(fs::absolute(data_dir), ec);
  if (configured.empty()) {
    std::string p = dir.string();
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p + ".privacy.key";
  }
  const fs::path file = fs::weakly_canonical(fs::absolute(configured), ec);
  const std::string d = dir.string() + "/", f = file.string();
  if (f.compare(0, d.size(), d) == 0) {
    return Status::InvalidArgument("profile.secret_file: " + configured +
                                   " is inside the data directory; keep the privacy secret elsewhere");
  }
  return f;
}

// The privacy secret: read from `path`, or created there (32 random bytes, hex)
// when the file does not exist.
Result<std::string> LoadOrCreateSecret(const std::string& path) {
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[512];
    const size_t n = std::fread(buf, 1, sizeof buf, f);
    std::fclose(f);
    std::string secret(buf, n);
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' ')) secret.pop_back();
    if (secret.size() < 16) return Status::InvalidArgument("profile.secret_file: " + path + " holds fewer than 16 bytes");
    return secret;
  }
  if (errno != ENOENT) return Status::IoError("cannot read " + path + ": " + std::strerror(errno));
  unsigned char raw[32];
  FILE* r = std::fopen("/dev/urandom", "rb");
  const bool got = r && std::fread(raw, 1, sizeof raw, r) == sizeof raw;
  if (r) std::fclose(r);
  if (!got) return Status::IoError("cannot read /dev/urandom");
  static const char* kHex = "0123456789abcdef";
  std::string secret;
  for (unsigned char c : raw) {
    secret.push_back(kHex[c >> 4]);
    secret.push_back(kHex[c & 15]);
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("cannot create " + path + ": " + std::strerror(errno));
  std::string line = secret + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok) return Status::IoError("cannot write " + path);
  return secret;
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

std::vector<std::string> ColumnFamilies() {
  std::vector<std::string> families = mqtt::GatewayColumnFamilies();
  families.push_back(kMetaFamily);
  families.push_back(api::kTenantsFamily);
  families.push_back(policy::kAccountsFamily);
  families.push_back(profile::kSegmentsFamily);
  families.push_back(engine::kCampaignsFamily);
  for (const auto& f : stream::PipelineColumnFamilies()) families.push_back(f);
  return families;
}

}  // namespace

// What the node wires together and owns, but no caller needs by name.
struct Node::Parts {
  std::unique_ptr<GatewayEventSink> gateway_events;
  std::unique_ptr<eventlog::KafkaSink> outcomes;
  std::unique_ptr<KafkaBridge> kafka;
  api::ServiceContext service;
  api::EventRoutesContext events;
  api::PolicyRoutesContext policy;
  api::ProfileRoutesContext profile;
  api::EngineRoutesContext engine_routes;
  stream::StateHandle<engine::EngineStore> engine_store;
  stream::StateHandle<model::SendTimeStore> send_time;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<engine::CampaignDirectory> campaigns;
  std::unique_ptr<profile::PrivacyTransform> privacy;
  std::unique_ptr<profile::SegmentDirectory> segments;
  std::array<profile::Strategy, profile::kClassCount> strategies;
  std::unique_ptr<model::ModelRegistry> ctr_model;
  std::map<std::string, model::ModelRegistry*> models;
  std::string samples_dir;
};

Node::Node(const Config& config) : config_(config), parts_(std::make_unique<Parts>()) {}

Node::~Node() { (void)Stop(); }

stream::StateHandle<profile::ProfileStore> Node::profiles() const { return parts_->profile.store; }
engine::Engine& Node::engine() { return *parts_->engine; }
engine::CampaignDirectory& Node::campaigns() { return *parts_->campaigns; }

Result<std::unique_ptr<Node>> Node::Start(const Config& config, NodeOptions options) {
  HERALD_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<Node> node(new Node(config));
  Status s = node->Open(options);
  if (!s.ok()) {
    (void)node->Stop();
    return s;
  }
  return node;
}

Status Node::Open(NodeOptions& options) {
  const Config& c = config_;
  const std::string& dir = c.server.data_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create data directory " + dir + ": " + ec.message());
  AddProcessMetrics(metrics_, system_clock_.Now());

  auto db = store::Db::Open(dir + "/store", {c.store, &metrics_}, ColumnFamilies());
  HERALD_RETURN_IF_ERROR(db.status());
  db_ = std::move(*db);
  HERALD_RETURN_IF_ERROR(CheckLayout(*db_, c.server.partitions));
  HERALD_RETURN_IF_ERROR(CheckPartitions(*db_, c.server.partitions));
  if (c.server.virtual_clock) {
    auto vc = MakeVirtualClock(*db_, c.server);
    HERALD_RETURN_IF_ERROR(vc.status());
    virtual_clock_ = std::move(*vc);
    clock_ = virtual_clock_.get();
    log::Warn("running on a virtual clock", {{"now", FormatIsoTime(clock_->Now())}});
  }

  auto tenants = api::TenantDirectory::Load(db_.get(), clock_);
  HERALD_RETURN_IF_ERROR(tenants.status());
  tenants_ = std::move(*tenants);
  if (tenants_->empty()) {
    auto created = tenants_->Create("default", "default", /*admin=*/true);
    HERALD_RETURN_IF_ERROR(created.status());
    HERALD_RETURN_IF_ERROR(WriteAdminKey(dir, created->api_key));
    created_admin_key_ = created->api_key;
  }
  policy_config_ = c.policy;
  HERALD_RETURN_IF_ERROR(policy_config_.Resolve());
  auto accounts = policy::AccountDirectory::Load(db_.get(), clock_, policy_config_);
  HERALD_RETURN_IF_ERROR(accounts.status());
  accounts_ = std::move(*accounts);
  auto devices = mqtt::DeviceRegistry::Open(db_.get(), clock_);
  HERALD_RETURN_IF_ERROR(devices.status());
  devices_ = std::move(*devices);
  for (auto [kind, n] : {std::pair{"tenant", tenants_->skipped_records()},
                         std::pair{"device", devices_->skipped_records()},
                         std::pair{"account", accounts_->skipped_records()}}) {
    metrics_.GetCounter("herald_recovery_bad_records_total",
                        "Stored records that could not be read at start-up and were skipped.",
                        {{"kind", kind}})
        .Inc(n);
  }

  shards_ = std::make_unique<ShardExecutor>(c.server.shards, "shard", clock_);
  metrics_.GetGauge("herald_shards", "Shard worker threads.").Set(shards_->size());
  metrics_.GetGauge("herald_partitions", "Partitions users are hashed into.").Set(c.server.partitions);
  ShardExecutor* shards = shards_.get();
  metrics_.AddCollector([shards](MetricsRegistry& r) {
    for (unsigned i = 0; i < shards->size(); ++i) {
      r.GetGauge("herald_shard_queue_depth", "Tasks queued on a shard.", {{"shard", std::to_string(i)}})
          .Set(static_cast<std::int64_t>(shards->QueueDepth(i)));
    }
  });

  eventlog::LogOptions lo;
  lo.dir = dir + "/log";
  lo.partitions = c.server.partitions;
  lo.sync = c.log.sync;
  lo.segment_bytes = c.log.segment_mb << 20;
  lo.retention_bytes_per_partition = c.log.retention_mb << 20;
  lo.retention_age = static_cast<Micros>(c.log.retention_hours) * kMicrosPerHour;
  lo.metrics = &metrics_;
  lo.clock = clock_;
  lo.write_fault = options.log_write_fault;
  auto event_log = eventlog::EventLog::Open(lo);
  HERALD_RETURN_IF_ERROR(event_log.status());
  log_ = std::move(*event_log);

  // Profiles: the strategies by class, saved segments, and the privacy transform
  // every ingested event passes before the log.
  auto strategies = profile::BuildStrategies(c.profile);
  HERALD_RETURN_IF_ERROR(strategies.status());
  parts_->strategies = *strategies;
  auto segments = profile::SegmentDirectory::Load(db_.get());
  HERALD_RETURN_IF_ERROR(segments.status());
  parts_->segments = std::move(*segments);
  auto secret_path = PrivacySecretPath(dir, c.profile.secret_file);
  HERALD_RETURN_IF_ERROR(secret_path.status());
  auto secret = LoadOrCreateSecret(*secret_path);
  HERALD_RETURN_IF_ERROR(secret.status());
  parts_->privacy = std::make_unique<profile::PrivacyTransform>(std::move(*secret));

  stream::PipelineOptions po;
  po.transform = parts_->privacy.get();
  po.log = log_.get();
  po.db = db_.get();
  po.shards = shards_.get();
  po.clock = clock_;
  po.metrics = &metrics_;
  po.allowed_lateness = static_cast<Micros>(c.stream.allowed_lateness_s) * kMicrosPerSecond;
  po.checkpoint_interval = static_cast<Micros>(c.stream.checkpoint_interval_ms) * 1000;
  po.max_hot_users = c.stream.max_hot_users;
  po.idempotency_ttl = static_cast<Micros>(c.stream.idempotency_ttl_s) * kMicrosPerSecond;
  background_ = std::make_unique<WorkerPool>(2, "background");
  po.background = background_.get();
  auto pipeline = stream::Pipeline::Create(po);
  HERALD_RETURN_IF_ERROR(pipeline.status());
  pipeline_ = std::move(*pipeline);
  {
    store::Db* db = db_.get();
    auto cf = db_->Family(store::kStateFamily);
    HERALD_RETURN_IF_ERROR(cf.status());
    const policy::PolicyConfig* pc = &policy_config_;
    const policy::AccountDirectory* accounts = accounts_.get();
    Micros lateness = po.allowed_lateness;
    size_t hot = c.stream.max_hot_users;
    parts_->policy.store = pipeline_->Register<policy::PolicyStore>(
        "policy", store::StateTag::kPolicyAccounts, [=, cf = *cf](stream::Partition& p) {
          return std::make_unique<policy::PolicyStore>(db, cf, p.id(), pc, accounts, lateness, hot);
        });
  }
  {
    const profile::ProfileConfig* pc = &config_.profile;
    auto profiles = pipeline_->Register<profile::ProfileStore>(
        "profile", store::StateTag::kProfile,
        [pc](stream::Partition& p) { return std::make_unique<profile::ProfileStore>(pc, p.id()); });
    parts_->profile.store = profiles;
    pipeline_->SetClassifier([profiles](stream::Partition& p, const stream::AppliedEvent& e) {
      return profile::ClassName(p.Get(profiles).ClassOf(e));
    });
  }
  // Models: versions under <data_dir>/models/<name>, the newest promoted one served;
  // the send-time evidence, learned on the shards.
  {
    auto ctr = model::ModelRegistry::Open(dir + "/models", "ctr", clock_);
    HERALD_RETURN_IF_ERROR(ctr.status());
    if (!(*ctr)->open_warning().empty()) log::Warn("model snapshot skipped", {{"reason", (*ctr)->open_warning()}});
    parts_->ctr_model = std::move(*ctr);
    parts_->models["ctr"] = parts_->ctr_model.get();
    parts_->samples_dir = c.model.samples_dir.empty() ? dir + "/models/samples" : c.model.samples_dir;
    std::filesystem::create_directories(parts_->samples_dir, ec);
    if (ec) return Status::IoError("cannot create " + parts_->samples_dir + ": " + ec.message());
    store::Db* db = db_.get();
    auto cf = db_->Family(store::kStateFamily);
    HERALD_RETURN_IF_ERROR(cf.status());
    size_t hot = c.stream.max_hot_users;
    parts_->send_time = pipeline_->Register<model::SendTimeStore>(
        "sendtime", store::StateTag::kSendTime,
        [db, cf = *cf, hot](stream::Partition& p) { return std::make_unique<model::SendTimeStore>(db, cf, p.id(), hot); });
  }
  {
    store::Db* db = db_.get();
    auto cf = db_->Family(store::kStateFamily);
    HERALD_RETURN_IF_ERROR(cf.status());
    const Micros window = static_cast<Micros>(c.model.sample_window_s) * kMicrosPerSecond;
    parts_->engine_store = pipeline_->Register<engine::EngineStore>(
        "engine", store::StateTag::kEngineMessage, [db, cf = *cf, window, parts = parts_.get()](stream::Partition& p) {
          // Built at the pipeline's start, after the engine.
          return std::make_unique<engine::EngineStore>(db, cf, p.id(), window, [parts](PartitionId id, Micros close) {
            if (parts->engine) parts->engine->OnSamplesStored(id, close);
          });
        });
    auto campaigns = engine::CampaignDirectory::Load(db_.get(), options.engine_seed);
    HERALD_RETURN_IF_ERROR(campaigns.status());
    parts_->campaigns = std::move(*campaigns);
    engine::EngineOptions eo;
    eo.campaigns = parts_->campaigns.get();
    eo.segments = parts_->segments.get();
    eo.background = background_.get();
    eo.pipeline = pipeline_.get();
    eo.policy = parts_->policy.store;
    eo.profiles = parts_->profile.store;
    eo.store = parts_->engine_store;
    eo.db = db;
    eo.state_cf = *cf;
    eo.accounts = accounts_.get();
    eo.policy_config = &policy_config_;
    eo.clock = clock_;
    eo.metrics = &metrics_;
    eo.ctr = parts_->ctr_model.get();
    eo.feature_bits = c.model.feature_bits;
    eo.send_time = parts_->send_time;
    eo.samples_dir = parts_->samples_dir;
    eo.sample_window = window;
    eo.engine_config = &c.engine;
    eo.ads_config = &c.ads;
    eo.seed = options.engine_seed;
    parts_->engine = std::make_unique<engine::Engine>(eo);
    engine::Engine* e = parts_->engine.get();
    parts_->engine->SetSchedule(pipeline_->Register<engine::ScheduleState>(
        "schedule", store::StateTag::kEngineSchedule, [e](stream::Partition&) {
          return std::make_unique<engine::ScheduleState>([e](stream::Partition& p) {
            e->Recovered(p);
            e->Harvest(p);
          });
        }));
  }
  if (options.register_states) options.register_states(*pipeline_);
  HERALD_RETURN_IF_ERROR(pipeline_->Start());
  parts_->gateway_events = std::make_unique<GatewayEventSink>(pipeline_.get(), &metrics_);

  api::TenantDirectory* t = tenants_.get();
  router_ = std::make_unique<api::Router>(
      [t](std::string_view key, bool* admin) { return t->Authenticate(key, admin); }, &metrics_);
  parts_->service = {clock_, virtual_clock_.get(), &metrics_, tenants_.get()};
  api::RegisterCoreRoutes(*router_, parts_->service);
  api::RegisterDeviceRoutes(*router_, devices_.get());
  parts_->events = {pipeline_.get(), db_.get(), clock_, c.stream.max_batch_events,
                    static_cast<size_t>(c.http.max_body_bytes) * 4};
  api::RegisterEventRoutes(*router_, parts_->events);
  parts_->policy.pipeline = pipeline_.get();
  parts_->policy.accounts = accounts_.get();
  parts_->policy.config = &policy_config_;
  parts_->policy.clock = clock_;
  parts_->policy.max_batch = c.stream.max_batch_events;
  api::RegisterPolicyRoutes(*router_, parts_->policy);
  parts_->profile.pipeline = pipeline_.get();
  parts_->profile.segments = parts_->segments.get();
  parts_->profile.strategies = &parts_->strategies;
  parts_->profile.holidays = &config_.profile.holidays;
  parts_->profile.clock = clock_;
  parts_->profile.max_batch = c.stream.max_batch_events;
  api::RegisterProfileRoutes(*router_, parts_->profile);
  parts_->engine_routes = {parts_->engine.get(), parts_->campaigns.get(), &policy_config_};
  engine::CampaignDirectory* campaign_dir = parts_->campaigns.get();
  api::TenantDirectory* tenant_dir = tenants_.get();
  metrics_.AddCollector([campaign_dir, tenant_dir](MetricsRegistry& r) {
    std::map<std::string, std::int64_t> by_status = {
        {"planning", 0}, {"scheduled", 0}, {"sent", 0}, {"cancelled", 0}, {"failed", 0}};
    for (const auto& t : tenant_dir->List()) {
      for (const auto& c : campaign_dir->List(t.id)) ++by_status[c.status];
    }
    for (const auto& [status, n] : by_status) {
      r.GetGauge("herald_engine_campaigns", "Campaigns by status.", {{"status", status}}).Set(n);
    }
  });
  api::RegisterEngineRoutes(*router_, parts_->engine_routes);
  // Operators: checkpoint every partition, drop the log segments every state has
  // checkpointed past (within retention), and compact the store, off the loops.
  router_->Add("POST", "/v1/admin/compact", api::Access::kAdmin, [this](api::HttpRequest&, api::Respond respond) {
    const bool posted = background_->Post([this, respond] {
      Status s = pipeline_->Checkpoint();
      if (s.ok()) s = log_->EnforceRetention(pipeline_->RetainFrom());
      if (s.ok()) s = db_->CompactAll();
      if (!s.ok()) return respond(api::ErrorResponse(s));
      api::HttpResponse r;
      r.body = "{\"compacted\":true,\"log_disk_bytes\":" + std::to_string(log_->DiskBytes()) + "}";
      respond(std::move(r));
    });
    if (!posted) respond(api::ErrorResponse(503, "unavailable", "shutting down"));
  });
  api::RegisterModelRoutes(*router_, &parts_->models);
  ArmTraining();

  if (options.http) {
    api::HttpServerOptions ho{c.http.listen,          c.http.threads,
                              c.http.max_body_bytes,  c.http.max_header_bytes,
                              c.http.idle_timeout_s,  &metrics_,
                              c.http.max_connections, c.server.descriptor_reserve};
    api::Router* router = router_.get();
    auto http = api::HttpServer::Start(
        ho, [router](api::HttpRequest& req, api::Respond respond) { router->Handle(req, std::move(respond)); });
    HERALD_RETURN_IF_ERROR(http.status());
    http_ = std::move(*http);
  }

  // Outcome events go to Kafka too in cluster mode; set before the gateway reports.
  if (!c.kafka.brokers.empty()) {
    eventlog::KafkaSinkOptions so;
    so.brokers = c.kafka.brokers;
    so.metrics = &metrics_;
    auto sink = eventlog::KafkaSink::Open(so);
    HERALD_RETURN_IF_ERROR(sink.status());
    parts_->outcomes = std::move(*sink);
    parts_->gateway_events->ProduceTo(parts_->outcomes.get(), c.kafka.outcomes_topic);
  }
  if (options.mqtt) {
    if (c.mqtt.open_mode) log::Warn("mqtt open mode: anonymous clients, no ACL");
    mqtt::GatewayOptions go{c.mqtt,  db_.get(),  devices_.get(), parts_->gateway_events.get(),
                            clock_,  &metrics_, c.server.descriptor_reserve};
    auto gateway = mqtt::Gateway::Start(go);
    HERALD_RETURN_IF_ERROR(gateway.status());
    gateway_ = std::move(*gateway);
    mqtt::Gateway* g = gateway_.get();
    parts_->engine->SetDeliver(
        [g](mqtt::PushMessage m, mqtt::DeliveryCallback done) { return g->Deliver(std::move(m), std::move(done)); },
        [g](std::vector<mqtt::PushMessage>& batch) { return g->DeliverBatch(batch); });
  }
  // Retention: a timer on the clock hands the file work to the background pool.
  Gauge* disk = &metrics_.GetGauge("herald_log_disk_bytes", "Bytes of event log segments on disk.");
  disk->Set(static_cast<std::int64_t>(log_->DiskBytes()));
  retention_timer_ = shards_->PostEvery(
      0, static_cast<Micros>(c.log.retention_check_s) * kMicrosPerSecond, [this, disk] {
        background_->Post([this, disk] {
          Status s = log_->EnforceRetention(pipeline_->RetainFrom());
          if (!s.ok()) log::Error("event log retention failed", {{"error", s}});
          disk->Set(static_cast<std::int64_t>(log_->DiskBytes()));
        });
      });
  // Accounts' reputation: every partition's window of pushes and marks, merged.
  reputation_timer_ = shards_->PostEvery(
      0, static_cast<Micros>(policy_config_.reputation_refresh_s) * kMicrosPerSecond, [this] { RefreshReputation(); });
  RefreshReputation();
  if (!c.kafka.brokers.empty()) {
    auto k = KafkaBridge::Start(c.kafka, c.stream.max_batch_events, pipeline_.get(), &metrics_);
    HERALD_RETURN_IF_ERROR(k.status());
    parts_->kafka = std::move(*k);
  }
  return Status::Ok();
}

Status Node::Stop() {
  if (stopped_) return Status::Ok();
  stopped_ = true;
  // Stop intake first, then drain the work it produced, then flush storage.
  if (parts_->kafka) parts_->kafka->Stop();
  if (gateway_) gateway_->Stop();
  if (parts_->gateway_events) parts_->gateway_events->Stop();  // its events reach the log
  if (parts_->outcomes) (void)parts_->outcomes->Flush(5000);
  if (http_) http_->Stop();
  if (shards_ && retention_timer_) shards_->Cancel(0, retention_timer_);
  if (shards_ && reputation_timer_) shards_->Cancel(0, reputation_timer_);
  {
    std::lock_guard<std::mutex> l(training_mu_);
    training_stopped_ = true;
    if (shards_ && training_timer_) shards_->Cancel(0, training_timer_);
    training_timer_ = 0;
  }
  if (background_) background_->Stop();  // appends and retention it started finish first
  if (pipeline_) pipeline_->Stop();      // final checkpoint, on the shards
  if (shards_) shards_->Stop();
  log_.reset();
  Status flushed;
  if (db_) {
    flushed = db_->Flush();
    if (!flushed.ok()) log::Error("flush at shutdown failed", {{"error", flushed}});
  }
  return flushed;
}

void Node::ArmTraining() {
  const Micros due = model::NextLocalTime(clock_->Now(), config_.model.training_time, config_.model.training_tz);
  std::lock_guard<std::mutex> l(training_mu_);
  if (training_stopped_) return;
  training_timer_ = shards_->PostAt(0, due, [this] {
    background_->Post([this] {
      model::LearnerConfig lc;
      lc.kind = config_.model.kind;
      lc.bits = config_.model.feature_bits;  // the space herald's samples are hashed into
      model::DailyResult r = model::TrainFromDirectory(*parts_->ctr_model, parts_->samples_dir, lc);
      if (r.files) {
        log::Info("daily model training", {{"files", r.files}, {"promoted", r.promoted},
                                           {"version", parts_->ctr_model->current_version()}});
      }
      if (!r.error.empty()) log::Error("daily model training: a sample file was refused", {{"error", r.error}});
      metrics_.GetCounter("herald_model_trainings_total", "Daily trainings of the CTR model run (with or without samples).").Inc();
    });
    ArmTraining();
  });
}

void Node::RefreshReputation() {
  using Window = std::vector<std::pair<std::pair<std::string, std::uint64_t>, policy::AccountCounts>>;
  auto handle = parts_->policy.store;
  Micros now = clock_->Now();
  policy::AccountDirectory* accounts = accounts_.get();
  pipeline_->RunOnEveryPartition(
      [handle, now](stream::Partition& p) { return p.Get(handle).AccountWindow(now); },
      std::function<void(Result<std::vector<Window>>)>([accounts](Result<std::vector<Window>> r) {
        if (!r.ok()) return;
        std::map<std::pair<std::string, std::uint64_t>, policy::AccountCounts> sum;
        for (const Window& w : *r) {
          for (const auto& [k, c] : w) {
            auto& s = sum[k];
            s.pushes += c.pushes;
            s.not_interested += c.not_interested;
            s.complaints += c.complaints;
          }
        }
        accounts->SetReputation(sum);
      }));
}

Endpoint Node::http_endpoint() const { return http_ ? http_->local_endpoint() : Endpoint{}; }
Endpoint Node::mqtt_endpoint() const { return gateway_ ? gateway_->tcp_endpoint() : Endpoint{}; }
Endpoint Node::ws_endpoint() const { return gateway_ ? gateway_->ws_endpoint() : Endpoint{}; }
Endpoint Node::tls_endpoint() const { return gateway_ ? gateway_->tls_endpoint() : Endpoint{}; }

}  // namespace herald::node
