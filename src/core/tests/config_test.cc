#include <gtest/gtest.h>

#include "core/config.h"

namespace herald {

// The embedded file and the struct defaults describe the same configuration.
TEST(ConfigTest, EmbeddedDefaultsMatchStructDefaults) {
  Config d = Config::Defaults();
  Config s;
  EXPECT_EQ(d.server.data_dir, s.server.data_dir);
  EXPECT_EQ(d.server.partitions, s.server.partitions);
  EXPECT_EQ(d.http.listen.ToString(), "127.0.0.1:8080");
  EXPECT_EQ(d.mqtt.listen.ToString(), "127.0.0.1:1883");
  EXPECT_EQ(d.mqtt.ws_listen.ToString(), "127.0.0.1:8083");
  EXPECT_TRUE(d.mqtt.tls_listen.empty());
  EXPECT_EQ(d.http.max_body_bytes, s.http.max_body_bytes);
  EXPECT_EQ(d.policy.silence_hours, 48u);
  EXPECT_EQ(d.policy.service_max_per_month, 4u);
  EXPECT_EQ(d.policy.new_follower_max_messages, 5u);
  EXPECT_EQ(d.policy.downgrade_max_per_week, 2u);
  EXPECT_DOUBLE_EQ(d.ads.complaint_factor, 0.85);
  EXPECT_EQ(d.privacy.geo_cell_m, 500u);
  ASSERT_EQ(d.timing.cold_start_open_rate.size(), 24u);
  EXPECT_DOUBLE_EQ(d.timing.cold_start_open_rate[8], 0.068);  // 08:00-09:00 in the source
  EXPECT_TRUE(d.Validate().ok()) << d.Validate().ToString();
}

TEST(ConfigTest, FileOverridesOnlyWhatItNames) {
  auto c = Config::FromToml("[http]\nlisten = \"[::1]:0\"\nthreads = 2\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->http.listen.host, "::1");
  EXPECT_EQ(c->http.listen.port, 0);
  EXPECT_EQ(c->http.threads, 2u);
  EXPECT_EQ(c->mqtt.listen.port, 1883);
}

TEST(ConfigTest, UnknownKeysWrongTypesAndRangesNameTheKey) {
  struct Case {
    const char* toml;
    const char* expect;
  } cases[] = {
      {"[http]\nlisen = \"a:1\"\n", "http.lisen: unknown setting"},
      {"[htp]\n", "[htp]: unknown section"},
      {"[http]\nthreads = \"two\"\n", "http.threads: must be an integer"},
      {"[http]\nthreads = 0\n", "http.threads: must be between 1 and 64"},
      {"[http]\nlisten = \"nohost\"\n", "http.listen: address \"nohost\" has no port"},
      {"[http]\nlisten = \"h:70000\"\n", "port above 65535"},
      {"[store]\nsync = \"sometimes\"\n", "store.sync: must be"},
      {"[timing]\ncold_start_open_rate = [0.1]\n", "array of 24 numbers"},
      {"[server\n", "t.toml:1"},
  };
  for (const auto& c : cases) {
    auto r = Config::FromToml(c.toml, "t.toml");
    ASSERT_FALSE(r.ok()) << c.toml;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
  }
}

TEST(ConfigTest, ValidateRejectsImpossibleCombinations) {
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

  c = Config::Defaults();
  c.timing.golden_windows = {"08:30-07:30"};
  EXPECT_FALSE(c.Validate().ok());
}

TEST(ConfigTest, EndpointLoopbackDetection) {
  EXPECT_TRUE(ParseEndpoint("127.0.0.1:1")->IsLoopback());
  EXPECT_TRUE(ParseEndpoint("127.9.9.9:1")->IsLoopback());
  EXPECT_TRUE(ParseEndpoint("[::1]:1")->IsLoopback());
  EXPECT_TRUE(ParseEndpoint("localhost:1")->IsLoopback());
  EXPECT_FALSE(ParseEndpoint("0.0.0.0:1")->IsLoopback());
  EXPECT_FALSE(ParseEndpoint("10.0.0.1:1")->IsLoopback());
}

}  // namespace herald
