#include "node/config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "core/log.h"
#include "core/time_format.h"

namespace herald::node {
namespace {

constexpr const char* kHeader =
    "# herald configuration: every setting, with its default.\n"
    "#\n"
    "# `herald serve --config FILE` reads a file like this one; any setting left out keeps\n"
    "# the default shown here. `herald config defaults` prints this file, and\n"
    "# `herald config check FILE` validates one. docs/configuration.md explains each key.\n"
    "# Command-line flags (--data-dir, --http-listen, --mqtt-listen, --ws-listen,\n"
    "# --virtual-clock, --mqtt-open, --kafka-brokers) override the file.\n";

config::Section<ServerConfig> ServerSection() {
  using C = ServerConfig;
  config::Section<C> s("server", "The process.");
  s.String("data_dir", &C::data_dir, "Where herald keeps its RocksDB store, event log and admin.key.");
  s.Uint("shards", &C::shards, 0, 256, "Worker shards that own partitions; 0 means one per core.");
  s.Uint("partitions", &C::partitions, 1, 65536,
         "Partitions users are hashed into: partition = (murmur2(user_id) & 0x7fffffff) mod partitions.\n"
         "Fixed for the life of a deployment (it is stored and checked at start-up).");
  s.Choice("log_level", &C::log_level, {"debug", "info", "warn", "error"}, "debug | info | warn | error");
  s.Bool("virtual_clock", &C::virtual_clock,
         "Run on a virtual clock that moves only through POST /v1/admin/clock (--virtual-clock).\n"
         "Allowed only when every listener is on a loopback address.");
  s.String("virtual_clock_start", &C::virtual_clock_start,
           "Where a fresh virtual clock starts (ISO-8601 with a zone).");
  s.Uint("descriptor_reserve", &C::descriptor_reserve, 0, 1'000'000,
         "File descriptors kept for MQTT devices: the HTTP and WebSocket listeners refuse a\n"
         "connection that would leave fewer free (RLIMIT_NOFILE), so a flood of idle API or\n"
         "browser connections cannot lock devices out.");
  s.Check([](const C& c) {
    if (c.data_dir.empty()) return Status::InvalidArgument("server.data_dir must not be empty");
    if (c.shards > c.partitions) {
      return Status::InvalidArgument("server.shards (" + std::to_string(c.shards) +
                                     ") must not exceed server.partitions (" +
                                     std::to_string(c.partitions) + ")");
    }
    auto start = ParseIsoTime(c.virtual_clock_start);
    if (!start.ok()) {
      return Status::InvalidArgument("server.virtual_clock_start: " + start.status().message());
    }
    return Status::Ok();
  });
  return s;
}

// Rules across sections.
Status CheckListeners(const Config& c) {
  std::vector<const Endpoint*> listeners = {&c.http.listen, &c.mqtt.listen, &c.mqtt.ws_listen,
                                            &c.mqtt.tls_listen};
  if (c.server.virtual_clock) {
    for (const Endpoint* ep : listeners) {
      if (!ep->empty() && !ep->IsLoopback()) {
        return Status::InvalidArgument("the virtual clock is allowed only on loopback addresses; " +
                                       ep->ToString() + " is not loopback");
      }
    }
  }
  std::set<std::string> bound;
  for (const Endpoint* ep : listeners) {
    if (ep->empty() || ep->port == 0) continue;
    if (!bound.insert(ep->ToString()).second) {
      return Status::InvalidArgument("two listeners share the address " + ep->ToString());
    }
  }
  return Status::Ok();
}

config::Schema<Config> Build() {
  config::Schema<Config> s;
  s.Add(&Config::server, ServerSection());
  s.Add(&Config::http, api::HttpConfigSection());
  s.Add(&Config::mqtt, mqtt::MqttConfigSection());
  s.Add(&Config::store, store::StoreConfigSection());
  s.Add(&Config::log, eventlog::LogConfigSection());
  s.Add(&Config::stream, stream::StreamConfigSection());
  s.Add(&Config::kafka, eventlog::KafkaConfigSection());
  s.Add(&Config::policy, policy::PolicyConfigSection());
  s.Add(&Config::model, model::ModelConfigSection());
  s.Add(&Config::profile, profile::ProfileConfigSection());
  s.Add(&Config::engine, engine::EngineConfigSection());
  s.Add(&Config::ads, engine::AdsConfigSection());
  s.Check(CheckListeners);
  s.Retired("events",
            "this section was split: log_sync, segment_mb and retention_* are in [log] (sync, "
            "segment_mb, ...), allowed_lateness_s, max_batch_events and checkpoint_interval_ms in "
            "[stream], kafka_* in [kafka] (brokers, topic, ...); see docs/configuration.md");
  for (const char* later : {"privacy", "timing"}) {
    s.Retired(later, "not read by this build: the module that owns these settings defines the "
                     "section and its defaults; see docs/configuration.md");
  }
  return s;
}

}  // namespace

const config::Schema<Config>& Schema() {
  static const config::Schema<Config> schema = Build();
  return schema;
}

std::string RenderDefaults() { return Schema().Render(Config::Defaults(), kHeader); }

Result<Config> Config::FromToml(std::string_view text, std::string_view source) {
  return Schema().Parse(text, source, Defaults());
}

Result<Config> Config::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read config file " + path);
  std::ostringstream os;
  os << in.rdbuf();
  return FromToml(os.str(), path);
}

Status Config::Validate() const { return Schema().Validate(*this); }

}  // namespace herald::node
