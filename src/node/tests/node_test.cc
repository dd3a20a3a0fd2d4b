// A node assembles and restarts; old data directories are migrated or refused.
#include "node/node.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/time_format.h"
#include "store/db.h"
#include "store/keys.h"
#include "stream/feature_store.h"
#include "stream/features.h"
#include "stream/pipeline.h"
#include "log/event_log.h"
#include "stream/timezones.h"
#include "node/gateway_sink.h"
#include "mqtt/delivery.h"
#include <future>
#include <thread>

namespace herald::node {
namespace {

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("node-test-" + std::to_string(::getpid()) + "-" + std::to_string(n_++));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Config Quiet() {
    Config c = Config::Defaults();
    c.server.data_dir = dir_.string();
    c.server.partitions = 8;
    c.server.shards = 2;
    c.http.listen = {"127.0.0.1", 0};
    c.mqtt.listen = {"127.0.0.1", 0};
    c.mqtt.ws_listen = {};
    return c;
  }

  static inline int n_ = 0;
  std::filesystem::path dir_;
};

TEST_F(NodeTest, StartsFreshThenRestartsOnTheSameDirectory) {
  std::string key;
  {
    auto n = Node::Start(Quiet());
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    key = (*n)->created_admin_key();
    EXPECT_FALSE(key.empty());
    EXPECT_NE((*n)->http_endpoint().port, 0);
    EXPECT_NE((*n)->mqtt_endpoint().port, 0);
    EXPECT_TRUE((*n)->ws_endpoint().empty());
    EXPECT_TRUE((*n)->Stop().ok());
  }
  auto n = Node::Start(Quiet(), {.http = false, .mqtt = false});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_TRUE((*n)->created_admin_key().empty());  // created once, on the first start
  EXPECT_EQ((*n)->gateway(), nullptr);
  auto layout = (*n)->db().Get((*n)->db().Family(store::kMetaFamily).value(), "layout").value();
  EXPECT_EQ(layout, std::to_string(store::kLayoutVersion));
}

TEST_F(NodeTest, PartitionCountCannotChange) {
  ASSERT_TRUE(Node::Start(Quiet()).ok());
  Config c = Quiet();
  c.server.partitions = 16;
  auto n = Node::Start(c);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("created with 8 partitions"), std::string::npos);
}

// A data directory written before partition-prefixed keys: features and time
// zones keyed tenant \0 user, checkpoints as text.
void WriteLayout1(const std::string& dir, const stream::UserFeatures& f) {
  std::filesystem::create_directories(dir);
  auto db = store::Db::Open(dir + "/store", {}, {"meta", "features", "users", "stream_meta"}).value();
  store::WriteBatch b;
  b.Put(db->Family("meta").value(), "partitions", "8");
  b.Put(db->Family("features").value(), store::TenantKey("default", "old-user"), stream::Serialize(f));
  b.Put(db->Family("users").value(), store::TenantKey("default", "old-user"), R"({"tz":"Asia/Shanghai"})");
  b.Put(db->Family("stream_meta").value(), "ckpt/3", "0 0");
  ASSERT_TRUE(db->Write(std::move(b)).ok());
}

TEST_F(NodeTest, Layout1DirectoryIsMigratedInPlace) {
  stream::UserFeatures f;
  stream::Event e;
  e.tenant = "default";
  e.user_id = "old-user";
  e.type = stream::EventType::kAppOpen;
  e.ts = ParseIsoTime("2026-01-05T08:00:00Z").value();
  stream::Apply(f, e, stream::UtcTimeZone());
  WriteLayout1(dir_.string(), f);
  auto n = Node::Start(Quiet(), {.http = false, .mqtt = false});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto& pipeline = (*n)->pipeline();
  auto h = pipeline.features();
  std::string zone;
  std::uint32_t opens = 0;
  Status s = pipeline.CallOnUser("old-user", [&](stream::Partition& p) {
    const stream::UserFeatures* got = p.Get(h).Find("default", "old-user");
    if (!got) return Status::NotFound("not migrated");
    opens = got->events_total[static_cast<int>(stream::EventType::kAppOpen)];
    zone = stream::ZoneName(p.Get(h).ZoneOf("default", "old-user"));
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(opens, 1u);
  EXPECT_EQ(zone, "Asia/Shanghai");
  // The old records are gone; the layout is current.
  auto& db = (*n)->db();
  int old = 0;
  ASSERT_TRUE(db.Scan(db.Family("features").value(), "", [&](auto, auto) { return ++old, true; }).ok());
  EXPECT_EQ(old, 0);
  EXPECT_EQ(db.Get(db.Family(store::kMetaFamily).value(), "layout").value(),
            std::to_string(store::kLayoutVersion));
}

TEST_F(NodeTest, Layout1DirectoryWithAnotherPartitionCountIsRefusedUntouched) {
  stream::UserFeatures f;
  WriteLayout1(dir_.string(), f);  // created with 8 partitions
  Config c = Quiet();
  c.server.partitions = 16;
  auto n = Node::Start(c, {.http = false, .mqtt = false});
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("created with 8 partitions"), std::string::npos)
      << n.status().message();
  // Nothing moved: the old records are where they were, and the right count
  // migrates them.
  {
    auto db = store::Db::Open((dir_ / "store").string(), {}, {"meta", "features"}).value();
    EXPECT_TRUE(db->Get(db->Family("features").value(), store::TenantKey("default", "old-user"))
                    .value()
                    .has_value());
    EXPECT_FALSE(db->Get(db->Family("meta").value(), "layout").value().has_value());
  }
  EXPECT_TRUE(Node::Start(Quiet(), {.http = false, .mqtt = false}).ok());
}

TEST_F(NodeTest, ADeliveredOutcomeCountsAgainstItsAccountWithoutASentEvent) {
  auto n = Node::Start(Quiet(), {.http = false, .mqtt = false});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  // What the gateway reports when a device acknowledges a push.
  GatewayEventSink sink(&(*n)->pipeline());
  mqtt::GatewayEvent delivered{"default", "u-acct", "d1", "delivered", "m1", "acct-9", "c1",
                               ParseIsoTime("2026-01-05T08:00:00Z").value()};
  sink.OnGatewayEvent(delivered);
  auto& pipeline = (*n)->pipeline();
  auto h = pipeline.features();
  stream::SendCounts sends;
  for (int i = 0; i < 200 && sends.month == 0; ++i) {
    (void)pipeline.CallOnUser("u-acct", [&](stream::Partition& p) {
      if (const stream::UserFeatures* f = p.Get(h).Find("default", "u-acct")) {
        sends = stream::SendsFromAccount(*f, "acct-9", ParseIsoTime("2026-01-05T09:00:00Z").value(),
                                         p.Get(h).ZoneOf("default", "u-acct"));
      }
      return Status::Ok();
    });
    if (sends.month == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(sends.day, 1u);
  EXPECT_EQ(sends.month, 1u);
}

TEST_F(NodeTest, TheLogShrinksUnderRetentionButKeepsWhatACheckpointNeeds) {
  Config c = Quiet();
  c.server.partitions = 2;
  c.server.virtual_clock = true;
  c.log.segment_mb = 1;
  c.log.retention_mb = 1;
  c.log.retention_check_s = 60;
  c.stream.checkpoint_interval_ms = 3'600'000;  // checkpoints only when asked
  std::uint64_t before = 0;
  {
    auto n = Node::Start(c, {.http = false, .mqtt = false});
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    Node& node = **n;
    // About 3 MiB of events per partition: three or four segments each.
    for (int b = 0; b < 130; ++b) {
      std::vector<stream::Event> batch;
      for (int i = 0; i < 1000; ++i) {
        stream::Event e;
        e.tenant = "default";
        e.user_id = "user-" + std::to_string(i % 100);
        e.type = stream::EventType::kAppOpen;
        e.ts = node.clock().Now();
        batch.push_back(std::move(e));
      }
      std::promise<Status> done;
      node.pipeline().Ingest(std::move(batch), [&](Status s) { done.set_value(s); });
      ASSERT_TRUE(done.get_future().get().ok());
    }
    before = node.log().DiskBytes();
    ASSERT_GT(before, 4u << 20);
    auto& disk = node.metrics().GetGauge("herald_log_disk_bytes", "");
    // A retention pass before any checkpoint deletes nothing: a restart replays all.
    node.virtual_clock()->Advance(61 * kMicrosPerSecond);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(node.log().StartOffset(0), 0u);
    EXPECT_EQ(node.log().StartOffset(1), 0u);
    ASSERT_TRUE(node.pipeline().Checkpoint().ok());
    node.virtual_clock()->Advance(61 * kMicrosPerSecond);
    for (int i = 0; i < 200 && disk.Value() >= static_cast<std::int64_t>(before); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_LT(node.log().DiskBytes(), before);
    EXPECT_LE(node.log().DiskBytes(), 2u * (2u << 20));  // at most ~2 segments per partition
    EXPECT_EQ(disk.Value(), static_cast<std::int64_t>(node.log().DiskBytes()));
    EXPECT_GT(node.log().StartOffset(0), 0u);
  }
  // Nothing needed was deleted: every user still has all of their events.
  auto n = Node::Start(c, {.http = false, .mqtt = false});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto h = (*n)->pipeline().features();
  std::uint32_t opens = 0;
  ASSERT_TRUE((*n)->pipeline().CallOnUser("user-7", [&](stream::Partition& p) {
    const stream::UserFeatures* f = p.Get(h).Find("default", "user-7");
    if (f) opens = f->events_total[static_cast<int>(stream::EventType::kAppOpen)];
    return Status::Ok();
  }).ok());
  EXPECT_EQ(opens, 1300u);
}

TEST_F(NodeTest, NewerOrUnreadableLayoutIsRefusedWithAClearMessage) {
  for (const char* layout : {"9", "two"}) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    {
      auto db = store::Db::Open((dir_ / "store").string(), {}, {store::kMetaFamily}).value();
      store::WriteBatch b;
      b.Put(db->Family(store::kMetaFamily).value(), "layout", layout);
      b.Put(db->Family(store::kMetaFamily).value(), "partitions", "8");
      ASSERT_TRUE(db->Write(std::move(b)).ok());
    }
    auto n = Node::Start(Quiet());
    ASSERT_FALSE(n.ok()) << layout;
    if (std::string(layout) == "9") {
      EXPECT_EQ(n.status().code(), Code::kFailedPrecondition);
      EXPECT_NE(n.status().message().find("storage layout 9, written by a newer herald"),
                std::string::npos)
          << n.status().message();
    } else {
      EXPECT_EQ(n.status().code(), Code::kCorruption);
      EXPECT_NE(n.status().message().find("layout record is unreadable"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace herald::node
