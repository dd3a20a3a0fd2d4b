// config::Section and config::Schema over a small configuration.
#include "core/config.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

struct Net {
  Endpoint listen{"127.0.0.1", 80};
  unsigned threads = 2;
  std::string name = "n";
  bool open = false;
};
struct Tuning {
  double factor = 0.85;
  SyncMode sync = SyncMode::kProcess;
  std::vector<double> prior = {0.1, 0.2};
  std::vector<std::string> windows = {"07:30-08:30"};
  std::string level = "info";
};
struct Root {
  Net net;
  Tuning tuning;
};

config::Schema<Root> MakeSchema() {
  config::Section<Net> net("net", "The network.\n\nSecond paragraph.");
  net.Address("listen", &Net::listen, false, "Where to listen.");
  net.Uint("threads", &Net::threads, 1, 8, "Threads.");
  net.String("name", &Net::name, "");
  net.Bool("open", &Net::open, "Open?");
  net.Check([](const Net& n) {
    return n.open && n.threads > 4 ? Status::InvalidArgument("net.open allows at most 4 net.threads")
                                   : Status::Ok();
  });
  config::Section<Tuning> tuning("tuning", "Knobs.");
  tuning.Double("factor", &Tuning::factor, 0, 1, "");
  tuning.Sync("sync", &Tuning::sync, "");
  tuning.Doubles("prior", &Tuning::prior, 2, 0, 1, "");
  tuning.Strings("windows", &Tuning::windows, "");
  tuning.Choice("level", &Tuning::level, {"info", "warn"}, "");
  config::Schema<Root> s;
  s.Add(&Root::net, net);
  s.Add(&Root::tuning, tuning);
  s.Check([](const Root& r) {
    return r.net.name == "bad" ? Status::InvalidArgument("net.name may not be bad") : Status::Ok();
  });
  return s;
}

TEST(ConfigSchemaTest, RendersTheDefaultsAndReadsThemBackExactly) {
  auto s = MakeSchema();
  std::string text = s.Render(Root{}, "# header\n");
  EXPECT_EQ(text,
            "# header\n"
            "\n# The network.\n#\n# Second paragraph.\n[net]\n"
            "# Where to listen.\nlisten = \"127.0.0.1:80\"\n# Threads.\nthreads = 2\nname = \"n\"\n"
            "# Open?\nopen = false\n"
            "\n# Knobs.\n[tuning]\nfactor = 0.85\nsync = \"process\"\nprior = [0.1, 0.2]\n"
            "windows = [\"07:30-08:30\"]\nlevel = \"info\"\n");
  Root changed;
  changed.net.threads = 7;
  changed.tuning.factor = 0.5;
  changed.tuning.sync = SyncMode::kFsync;
  auto back = s.Parse(s.Render(changed, ""), "r.toml", Root{});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(s.Render(*back, ""), s.Render(changed, ""));
  EXPECT_EQ(s.Keys(), (std::vector<std::string>{"net.listen", "net.threads", "net.name", "net.open",
                                                "tuning.factor", "tuning.sync", "tuning.prior",
                                                "tuning.windows", "tuning.level"}));
}

TEST(ConfigSchemaTest, FileOverridesOnlyWhatItNames) {
  auto r = MakeSchema().Parse("[net]\nlisten = \"[::1]:0\"\n", "t.toml", Root{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->net.listen.host, "::1");
  EXPECT_EQ(r->net.listen.port, 0);
  EXPECT_EQ(r->net.threads, 2u);
}

TEST(ConfigSchemaTest, EveryErrorNamesItsKey) {
  struct Case {
    const char* toml;
    const char* expect;
  } cases[] = {
      {"[net]\nlisen = \"a:1\"\n", "net.lisen: unknown setting"},
      {"[nett]\n", "[nett]: unknown section"},
      {"threads = 1\n", "threads: unknown setting (settings live in sections"},
      {"[net]\nthreads = \"two\"\n", "net.threads: must be an integer"},
      {"[net]\nthreads = 0\n", "net.threads: must be between 1 and 8"},
      {"[net]\nthreads = -1\n", "net.threads: must be between 1 and 8"},
      {"[net]\nlisten = \"nohost\"\n", "net.listen: address \"nohost\" has no port"},
      {"[net]\nlisten = \"h:70000\"\n", "port above 65535"},
      {"[net]\nopen = 1\n", "net.open: must be true or false"},
      {"[net]\nname = 1\n", "net.name: must be a string"},
      {"[net]\nopen = true\nthreads = 5\n", "net.open allows at most 4 net.threads"},
      {"[tuning]\nsync = \"sometimes\"\n", "tuning.sync: must be \"process\" or \"fsync\""},
      {"[tuning]\nfactor = 2\n", "tuning.factor: must be between 0.0 and 1.0"},
      {"[tuning]\nfactor = \"x\"\n", "tuning.factor: must be a number"},
      {"[tuning]\nprior = [0.1]\n", "tuning.prior: must be an array of 2 numbers"},
      {"[tuning]\nprior = [0.1, 7]\n", "tuning.prior: entries must be numbers between"},
      {"[tuning]\nwindows = [1]\n", "tuning.windows: must be an array of strings"},
      {"[tuning]\nlevel = \"loud\"\n", "tuning.level: must be one of \"info\", \"warn\""},
      {"[net\n", "t.toml:1"},
  };
  for (const auto& c : cases) {
    auto r = MakeSchema().Parse(c.toml, "t.toml", Root{});
    ASSERT_FALSE(r.ok()) << c.toml;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
  }
  // Several errors are reported together.
  auto r = MakeSchema().Parse("[net]\nthreads = 0\nname = 1\n", "t.toml", Root{});
  EXPECT_NE(r.status().message().find("net.threads"), std::string::npos);
  EXPECT_NE(r.status().message().find("net.name"), std::string::npos);
}

TEST(ConfigSchemaTest, ValidateRunsSectionAndCrossSectionRules) {
  auto s = MakeSchema();
  Root r;
  EXPECT_TRUE(s.Validate(r).ok());
  r.net.name = "bad";
  EXPECT_EQ(s.Validate(r).message(), "net.name may not be bad");
  r = Root{};
  r.net.open = true;
  r.net.threads = 8;
  EXPECT_FALSE(s.Validate(r).ok());
}

TEST(ConfigTest, EndpointLoopbackDetection) {
  EXPECT_TRUE(ParseEndpoint("127.0.0.1:1")->IsLoopback());
  EXPECT_TRUE(ParseEndpoint("127.9.9.9:1")->IsLoopback());
  EXPECT_TRUE(ParseEndpoint("[::1]:1")->IsLoopback());
  EXPECT_TRUE(ParseEndpoint("localhost:1")->IsLoopback());
  EXPECT_FALSE(ParseEndpoint("0.0.0.0:1")->IsLoopback());
  EXPECT_FALSE(ParseEndpoint("10.0.0.1:1")->IsLoopback());
}

TEST(ConfigTest, TomlTextOfNumbersAndStrings) {
  EXPECT_EQ(config::TomlNumber(0.85), "0.85");
  EXPECT_EQ(config::TomlNumber(3), "3.0");
  EXPECT_EQ(config::TomlQuote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
}

}  // namespace
}  // namespace herald
