// The node's configuration: every module's section, one source for the defaults,
// the checked-in file and the documentation.
#include "node/config.h"

#include <gtest/gtest.h>

#include <fstream>
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
