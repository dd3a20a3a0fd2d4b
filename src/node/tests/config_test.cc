// The node's configuration: every module's section, one source for the defaults,
// the checked-in file and the documentation.
#include "node/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

namespace herald::node {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

TEST(NodeConfigTest, CheckedInFileIsTheRenderedDefaults) {
  // config/herald.toml is `herald config defaults`; regenerate it with
  //   build/herald config defaults > config/herald.toml
  EXPECT_EQ(ReadFile(HERALD_CONFIG_FILE), RenderDefaults());
}

TEST(NodeConfigTest, RenderedDefaultsReadBackAsTheDefaults) {
  auto c = Config::FromToml(RenderDefaults(), "defaults");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(Schema().Render(*c, ""), Schema().Render(Config::Defaults(), ""));
  EXPECT_TRUE(c->Validate().ok()) << c->Validate().ToString();
  EXPECT_EQ(c->http.listen.ToString(), "127.0.0.1:8080");
  EXPECT_EQ(c->mqtt.listen.ToString(), "127.0.0.1:1883");
  EXPECT_EQ(c->server.partitions, 64u);
}

// Every key can be set from the file, and a value of the wrong type is refused
// with the key's name: no key is described but not read, or read but not named.
TEST(NodeConfigTest, EveryKeyIsReadAndNamedInItsErrors) {
  auto keys = Schema().Keys();
  ASSERT_GT(keys.size(), 30u);
  for (const std::string& key : keys) {
    std::string sec = key.substr(0, key.find('.')), name = key.substr(key.find('.') + 1);
    std::string toml = "[" + sec + "]\n" + name + " = {x = 1}\n";  // a table: never valid
    auto r = Config::FromToml(toml, "t.toml");
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_NE(r.status().message().find(key + ": "), std::string::npos) << r.status().message();
  }
}

// A value of the same type as `rendered` (a TOML value) that differs from it.
std::vector<std::string> OtherValues(const std::string& key, const std::string& rendered) {
  if (rendered == "true") return {"false"};
  if (rendered == "false") return {"true"};
  if (rendered == "\"process\"") return {"\"fsync\""};
  if (rendered == "\"info\"") return {"\"warn\""};
  if (rendered.front() == '[') {  // string lists
    if (key == "profile.windows") return {"[\"student=any 20:00-21:00\"]"};
    if (key == "profile.holidays") return {"[\"2026-10-01\"]"};
    return {"[\"student=x\"]"};
  }
  if (rendered.front() == '"') {
    std::string s = rendered.substr(1, rendered.size() - 2);
    if (key.find("listen") != std::string::npos) return {"\"127.0.0.1:4242\""};
    if (key == "server.virtual_clock_start") return {"\"2027-02-03T04:05:06Z\""};
    if (key == "policy.quiet_start" || key == "policy.quiet_end") return {"\"06:15\""};
    if (key == "model.training_time") return {"\"04:30\""};
    if (key == "model.training_tz") return {"\"Asia/Shanghai\""};
    if (key == "model.kind") return {"\"fm\""};
    if (key == "engine.digest_from") return {"\"08:00\""};
    if (key == "engine.digest_to") return {"\"21:00\""};
    if (key == "ads.budget_tz") return {"\"UTC\""};
    return {"\"" + s + "x\""};
  }
  if (rendered.find('.') != std::string::npos) return {"0.25", "0.5", "1.5", "2.5", "0.01"};
  long long v = std::stoll(rendered);
  return {std::to_string(v + 1), std::to_string(v - 1), "1", "2"};
}

// Every key can be changed on its own: the change shows in its own line of the
// rendered file and nowhere else, so no two keys share a member and no key is
// described but not read.
TEST(NodeConfigTest, EveryKeyChangesOnlyItself) {
  const Config d = Config::Defaults();
  std::string base = Schema().Render(d, "");
  auto lines = [](const std::string& text) {
    std::map<std::string, std::string> out;  // "section.key" -> value text
    std::istringstream in(text);
    std::string sec, line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      if (line[0] == '[') {
        sec = line.substr(1, line.size() - 2);
        continue;
      }
      size_t eq = line.find(" = ");
      out[sec + "." + line.substr(0, eq)] = line.substr(eq + 3);
    }
    return out;
  };
  auto before = lines(base);
  ASSERT_EQ(before.size(), Schema().Keys().size());
  for (const std::string& key : Schema().Keys()) {
    std::string sec = key.substr(0, key.find('.')), name = key.substr(key.find('.') + 1);
    // A TLS listener is valid only with its certificate and key.
    std::string extra = key == "mqtt.tls_listen" ? "tls_cert = \"c\"\ntls_key = \"k\"\n" : "";
    bool changed = false;
    for (const std::string& v : OtherValues(key, before[key])) {
      if (v == before[key]) continue;
      auto c = Config::FromToml("[" + sec + "]\n" + name + " = " + v + "\n" + extra, "t.toml");
      if (!c.ok()) continue;  // out of range: try the next
      auto after = lines(Schema().Render(*c, ""));
      for (const auto& [k, value] : after) {
        if (k == key) {
          EXPECT_NE(value, before[k]) << key << " = " << v << " did not change it";
        } else if (extra.find(k.substr(k.find('.') + 1) + " =") == std::string::npos) {
          EXPECT_EQ(value, before[k]) << "setting " << key << " changed " << k;
        }
      }
      changed = true;
      break;
    }
    EXPECT_TRUE(changed) << "no other valid value found for " << key;
  }
}

TEST(NodeConfigTest, SectionsOfOlderFilesSayWhereTheirKeysWent) {
  auto r = Config::FromToml("[events]\nlog_sync = \"fsync\"\n", "old.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("[events]: this section was split"), std::string::npos)
      << r.status().message();
  r = Config::FromToml("[privacy]\nsalt = 1\n", "old.toml");
  EXPECT_NE(r.status().message().find("[privacy]: not read by this build"), std::string::npos);
  r = Config::FromToml("[policy]\nsilence_hours = 48\n", "old.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("policy.silence_hours"), std::string::npos) << r.status().message();
}

TEST(NodeConfigTest, EveryKeyIsDocumented) {
  std::string doc = ReadFile(HERALD_CONFIGURATION_DOC);
  for (const std::string& key : Schema().Keys()) {
    EXPECT_NE(doc.find("`" + key + "`"), std::string::npos) << key << " is not in docs/configuration.md";
  }
}

TEST(NodeConfigTest, ImpossibleCombinationsAreRefused) {
  Config c = Config::Defaults();
  c.server.virtual_clock = true;
  c.http.listen = {"0.0.0.0", 8080};
  EXPECT_NE(c.Validate().message().find("loopback"), std::string::npos);

  c = Config::Defaults();
  c.mqtt.tls_listen = {"127.0.0.1", 8883};
  EXPECT_NE(c.Validate().message().find("tls_cert"), std::string::npos);

  c = Config::Defaults();
  c.mqtt.listen = c.http.listen;
  EXPECT_NE(c.Validate().message().find("share the address"), std::string::npos);

  c = Config::Defaults();
  c.server.shards = 100;
  EXPECT_NE(c.Validate().message().find("must not exceed"), std::string::npos);

  auto r = Config::FromToml("[server]\nvirtual_clock_start = \"yesterday\"\n", "t.toml");
  EXPECT_NE(r.status().message().find("server.virtual_clock_start"), std::string::npos);
  r = Config::FromToml("[server]\nlog_level = \"loud\"\n", "t.toml");
  EXPECT_NE(r.status().message().find("server.log_level"), std::string::npos);
}

}  // namespace
}  // namespace herald::node
