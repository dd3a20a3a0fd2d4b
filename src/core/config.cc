#include "core/config.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "core/log.h"
#include "core/time_format.h"

namespace herald {

std::string Endpoint::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool Endpoint::IsLoopback() const {
  if (host == "localhost" || host == "::1") return true;
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  return false;
}

Result<Endpoint> ParseEndpoint(std::string_view text) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("address \"" + std::string(text) + "\" " + why +
                                   " (expected HOST:PORT)");
  };
  Endpoint ep;
  size_t colon;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("has a malformed IPv6 host");
    }
    ep.host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    ep.host = std::string(text.substr(0, colon));
    if (ep.host.find(':') != std::string::npos) return bad("needs brackets around an IPv6 host");
  }
  if (ep.host.empty()) return bad("has no host");
  std::string_view port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5) return bad("has a bad port");
  unsigned p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return bad("has a bad port");
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  if (p > 65535) return bad("has a port above 65535");
  ep.port = static_cast<std::uint16_t>(p);
  return ep;
}

namespace {

// Reads typed values out of one TOML document, collecting errors that name the key,
// and remembering which keys it knew so that unknown ones can be reported.
class Reader {
 public:
  explicit Reader(const toml::table& root) : root_(root) {}

  template <typename T>
  void Uint(const char* sec, const char* key, T* out, std::uint64_t min, std::uint64_t max) {
    const toml::node* n = Find(sec, key);
    if (!n) return;
    auto v = n->value<std::int64_t>();
    if (!n->is_integer() || !v) return Fail(sec, key, "must be an integer");
    if (*v < 0 || static_cast<std::uint64_t>(*v) < min || static_cast<std::uint64_t>(*v) > max) {
      return Fail(sec, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    *out = static_cast<T>(*v);
  }

  void Double(const char* sec, const char* key, double* out, double min, double max) {
    const toml::node* n = Find(sec, key);
    if (!n) return;
    auto v = n->value<double>();
    if (!(n->is_floating_point() || n->is_integer()) || !v) return Fail(sec, key, "must be a number");
    if (*v < min || *v > max) {
      std::ostringstream os;
      os << "must be between " << min << " and " << max;
      return Fail(sec, key, os.str());
    }
    *out = *v;
  }

  void Bool(const char* sec, const char* key, bool* out) {
    const toml::node* n = Find(sec, key);
    if (!n) return;
    if (!n->is_boolean()) return Fail(sec, key, "must be true or false");
    *out = *n->value<bool>();
  }

  void String(const char* sec, const char* key, std::string* out) {
    const toml::node* n = Find(sec, key);
    if (!n) return;
    if (!n->is_string()) return Fail(sec, key, "must be a string");
    *out = *n->value<std::string>();
  }

  void Address(const char* sec, const char* key, Endpoint* out, bool allow_empty) {
    std::string s;
    if (!Find(sec, key)) return;
    String(sec, key, &s);
    if (s.empty() && allow_empty) {
      *out = Endpoint{};
      return;
    }
    auto ep = ParseEndpoint(s);
    if (!ep.ok()) return Fail(sec, key, ep.status().message());
    *out = *ep;
  }

  void DoubleArray(const char* sec, const char* key, std::vector<double>* out, size_t size) {
    const toml::node* n = Find(sec, key);
    if (!n) return;
    const toml::array* arr = n->as_array();
    if (!arr || arr->size() != size) {
      return Fail(sec, key, "must be an array of " + std::to_string(size) + " numbers");
    }
    std::vector<double> v;
    for (const auto& e : *arr) {
      auto d = e.value<double>();
      if (!d || *d < 0 || *d > 1) return Fail(sec, key, "entries must be numbers in [0, 1]");
      v.push_back(*d);
    }
    *out = std::move(v);
  }

  void StringArray(const char* sec, const char* key, std::vector<std::string>* out) {
    const toml::node* n = Find(sec, key);
    if (!n) return;
    const toml::array* arr = n->as_array();
    if (!arr) return Fail(sec, key, "must be an array of strings");
    std::vector<std::string> v;
    for (const auto& e : *arr) {
      auto s = e.value<std::string>();
      if (!s) return Fail(sec, key, "must be an array of strings");
      v.push_back(*s);
    }
    *out = std::move(v);
  }

  void Fail(const char* sec, const char* key, const std::string& why) {
    errors_.push_back(std::string(sec) + "." + key + ": " + why);
  }

  // Reports every section and key that no reader asked for.
  void ReportUnknown() {
    for (const auto& [sec, node] : root_) {
      std::string s(sec.str());
      if (!node.is_table()) {
        errors_.push_back(s + ": unknown setting (settings live in sections such as [server])");
        continue;
      }
      if (!known_sections_.count(s)) {
        errors_.push_back("[" + s + "]: unknown section");
        continue;
      }
      for (const auto& [key, _] : *node.as_table()) {
        if (!known_keys_.count(s + "." + std::string(key.str()))) {
          errors_.push_back(s + "." + std::string(key.str()) + ": unknown setting");
        }
      }
    }
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  const toml::node* Find(const char* sec, const char* key) {
    known_sections_.insert(sec);
    known_keys_.insert(std::string(sec) + "." + key);
    const toml::table* t = root_[sec].as_table();
    return t ? t->get(key) : nullptr;
  }

  const toml::table& root_;
  std::set<std::string> known_sections_;
  std::set<std::string> known_keys_;
  std::vector<std::string> errors_;
};

void ReadSync(Reader& r, const char* sec, const char* key, SyncMode* out) {
  std::string sync = *out == SyncMode::kFsync ? "fsync" : "process";
  r.String(sec, key, &sync);
  if (sync == "process") {
    *out = SyncMode::kProcess;
  } else if (sync == "fsync") {
    *out = SyncMode::kFsync;
  } else {
    r.Fail(sec, key, "must be \"process\" or \"fsync\"");
  }
}

void ReadAll(Reader& r, Config& c) {
  r.String("server", "data_dir", &c.server.data_dir);
  r.Uint("server", "shards", &c.server.shards, 0, 256);
  r.Uint("server", "partitions", &c.server.partitions, 1, 65536);
  r.String("server", "log_level", &c.server.log_level);
  r.Bool("server", "virtual_clock", &c.server.virtual_clock);
  r.String("server", "virtual_clock_start", &c.server.virtual_clock_start);

  r.Address("http", "listen", &c.http.listen, false);
  r.Uint("http", "threads", &c.http.threads, 1, 64);
  r.Uint("http", "max_body_bytes", &c.http.max_body_bytes, 1024, 1ull << 30);
  r.Uint("http", "max_header_bytes", &c.http.max_header_bytes, 1024, 1 << 20);
  r.Uint("http", "idle_timeout_s", &c.http.idle_timeout_s, 1, 86400);

  r.Address("mqtt", "listen", &c.mqtt.listen, false);
  r.Address("mqtt", "ws_listen", &c.mqtt.ws_listen, true);
  r.Address("mqtt", "tls_listen", &c.mqtt.tls_listen, true);
  r.String("mqtt", "tls_cert", &c.mqtt.tls_cert);
  r.String("mqtt", "tls_key", &c.mqtt.tls_key);
  r.Bool("mqtt", "open_mode", &c.mqtt.open_mode);
  r.Uint("mqtt", "event_loops", &c.mqtt.event_loops, 1, 1);
  r.Uint("mqtt", "max_packet_bytes", &c.mqtt.max_packet_bytes, 64, 268435455 + 5);
  r.Uint("mqtt", "max_inflight", &c.mqtt.max_inflight, 1, 65535);
  r.Uint("mqtt", "max_queued_messages", &c.mqtt.max_queued_messages, 1, 100'000'000);
  r.Uint("mqtt", "message_ttl_s", &c.mqtt.message_ttl_s, 1, 365ull * 86400);

  ReadSync(r, "store", "sync", &c.store.sync);
  r.Uint("store", "block_cache_mb", &c.store.block_cache_mb, 1, 1 << 20);
  r.Uint("store", "write_buffer_mb", &c.store.write_buffer_mb, 1, 1 << 16);
  r.Uint("store", "max_batch_ops", &c.store.max_batch_ops, 1, 1 << 20);

  ReadSync(r, "events", "log_sync", &c.events.log_sync);
  r.Uint("events", "segment_mb", &c.events.segment_mb, 1, 4096);
  r.Uint("events", "retention_mb", &c.events.retention_mb, 0, 1ull << 30);
  r.Uint("events", "retention_hours", &c.events.retention_hours, 0, 24ull * 3650);
  r.Uint("events", "allowed_lateness_s", &c.events.allowed_lateness_s, 0, 30ull * 86400);
  r.Uint("events", "max_batch_events", &c.events.max_batch_events, 1, 10'000'000);
  r.Uint("events", "checkpoint_interval_ms", &c.events.checkpoint_interval_ms, 10, 3'600'000);
  r.String("events", "kafka_brokers", &c.events.kafka_brokers);
  r.String("events", "kafka_topic", &c.events.kafka_topic);
  r.String("events", "kafka_group", &c.events.kafka_group);
  r.String("events", "kafka_outcomes_topic", &c.events.kafka_outcomes_topic);
  r.Uint("events", "kafka_session_timeout_ms", &c.events.kafka_session_timeout_ms, 1000, 3'600'000);

  auto& p = c.policy;
  r.Uint("policy", "new_follower_days", &p.new_follower_days, 0, 365);
  r.Uint("policy", "new_follower_max_messages", &p.new_follower_max_messages, 0, 1000);
  r.Uint("policy", "established_after_days", &p.established_after_days, 0, 365);
  r.Uint("policy", "established_max_per_day", &p.established_max_per_day, 0, 1000);
  r.Uint("policy", "silence_after_unopened", &p.silence_after_unopened, 1, 1000);
  r.Uint("policy", "silence_hours", &p.silence_hours, 0, 24 * 365);
  r.Uint("policy", "downgrade_after_unopened", &p.downgrade_after_unopened, 1, 1000);
  r.Uint("policy", "downgrade_max_per_week", &p.downgrade_max_per_week, 0, 1000);
  r.Uint("policy", "service_max_per_month", &p.service_max_per_month, 0, 1000);
  r.Double("policy", "not_interested_weight", &p.not_interested_weight, 0, 1);
  r.Double("policy", "not_interested_throttle_rate", &p.not_interested_throttle_rate, 0, 1);

  r.Double("ads", "complaint_factor", &c.ads.complaint_factor, 0, 1);
  r.Double("ads", "acceleration_min", &c.ads.acceleration_min, 1, 100);
  r.Double("ads", "acceleration_max", &c.ads.acceleration_max, 1, 100);

  r.Uint("privacy", "geo_cell_m", &c.privacy.geo_cell_m, 1, 100000);

  r.DoubleArray("timing", "cold_start_open_rate", &c.timing.cold_start_open_rate, 24);
  r.StringArray("timing", "golden_windows", &c.timing.golden_windows);
}

Result<Config> Parse(const Config& base, std::string_view text, std::string_view source) {
  // toml++ reports syntax errors by exception; they are translated here, at the edge.
  toml::table table;
  try {
    table = toml::parse(text, std::string(source));
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    return Status::InvalidArgument(os.str());
  }
  Config c = base;
  Reader r(table);
  ReadAll(r, c);
  r.ReportUnknown();
  if (!r.errors().empty()) {
    std::string msg = std::string(source) + ": ";
    for (size_t i = 0; i < r.errors().size(); ++i) {
      if (i) msg += "; ";
      msg += r.errors()[i];
    }
    return Status::InvalidArgument(msg);
  }
  return c;
}

bool ValidLocalWindow(const std::string& w) {
  // "HH:MM-HH:MM"
  if (w.size() != 11 || w[2] != ':' || w[5] != '-' || w[8] != ':') return false;
  auto num = [&](size_t i) { return (w[i] - '0') * 10 + (w[i + 1] - '0'); };
  for (size_t i : {0, 1, 3, 4, 6, 7, 9, 10}) {
    if (w[i] < '0' || w[i] > '9') return false;
  }
  return num(0) < 24 && num(3) < 60 && num(6) <= 24 && num(9) < 60 &&
         num(0) * 60 + num(3) < num(6) * 60 + num(9);
}

}  // namespace

Config Config::Defaults() {
  auto c = Parse(Config{}, EmbeddedDefaultConfig(), "embedded defaults");
  if (!c.ok()) std::abort();  // the build embeds a file its own tests parse
  return *c;
}

Result<Config> Config::FromToml(std::string_view text, std::string_view source_name) {
  return Parse(Defaults(), text, source_name);
}

Result<Config> Config::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read config file " + path);
  std::ostringstream os;
  os << in.rdbuf();
  return FromToml(os.str(), path);
}

Status Config::Validate() const {
  if (server.data_dir.empty()) return Status::InvalidArgument("server.data_dir must not be empty");
  if (!log::ParseLevel(server.log_level).ok()) {
    return Status::InvalidArgument("server.log_level must be debug, info, warn or error");
  }
  if (server.shards > server.partitions) {
    return Status::InvalidArgument("server.shards (" + std::to_string(server.shards) +
                                   ") must not exceed server.partitions (" +
                                   std::to_string(server.partitions) + ")");
  }
  auto start = ParseIsoTime(server.virtual_clock_start);
  if (!start.ok()) return Status::InvalidArgument("server.virtual_clock_start: " + start.status().message());
  if (server.virtual_clock) {
    for (const Endpoint* ep : {&http.listen, &mqtt.listen, &mqtt.ws_listen, &mqtt.tls_listen}) {
      if (!ep->empty() && !ep->IsLoopback()) {
        return Status::InvalidArgument("the virtual clock is allowed only on loopback addresses; " +
                                       ep->ToString() + " is not loopback");
      }
    }
  }
  std::set<std::string> bound;
  for (const Endpoint* ep : {&http.listen, &mqtt.listen, &mqtt.ws_listen, &mqtt.tls_listen}) {
    if (ep->empty() || ep->port == 0) continue;
    if (!bound.insert(ep->ToString()).second) {
      return Status::InvalidArgument("two listeners share the address " + ep->ToString());
    }
  }
  if (!mqtt.tls_listen.empty() && (mqtt.tls_cert.empty() || mqtt.tls_key.empty())) {
    return Status::InvalidArgument("mqtt.tls_listen needs mqtt.tls_cert and mqtt.tls_key");
  }
  if (ads.acceleration_min > ads.acceleration_max) {
    return Status::InvalidArgument("ads.acceleration_min must not exceed ads.acceleration_max");
  }
  if (policy.established_after_days < policy.new_follower_days) {
    return Status::InvalidArgument(
        "policy.established_after_days must not be less than policy.new_follower_days");
  }
  if (timing.cold_start_open_rate.size() != 24) {
    return Status::InvalidArgument("timing.cold_start_open_rate must have 24 entries");
  }
  for (const auto& w : timing.golden_windows) {
    if (!ValidLocalWindow(w)) {
      return Status::InvalidArgument("timing.golden_windows: \"" + w +
                                     "\" is not a local window HH:MM-HH:MM with start < end");
    }
  }
  return Status::Ok();
}

}  // namespace herald
