// A node assembles and restarts; old data directories are migrated or refused.
#include "node/node.h"

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "api/router.h"
#include "core/time_format.h"
#include "store/db.h"
#include "store/keys.h"
#include "stream/feature_store.h"
#include "stream/features.h"
#include "stream/pipeline.h"
#include "log/event_log.h"
#include "stream/timezones.h"
#include "node/gateway_sink.h"
#include "mqtt/codec.h"
#include "mqtt/delivery.h"
#include "mqtt/gateway.h"
#include "mqtt/devices.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
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

// A blocking MQTT client on herald's codec, for tests that need a real socket.
class MqttTestClient {
 public:
  explicit MqttTestClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~MqttTestClient() { ::close(fd_); }
  bool ok() const { return connected_; }
  template <typename P>
  void Send(const P& packet) {
    std::string bytes;
    mqtt::Encode(packet, &bytes);
    SendRaw(bytes);
  }
  void SendRaw(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
  // The next packet within `ms`, or nullopt.
  std::optional<mqtt::Packet> Next(int ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      mqtt::DecodeResult r = mqtt::Decode(in_);
      if (r.outcome == mqtt::DecodeOutcome::kPacket) {
        in_.erase(0, r.consumed);
        return r.packet;  // no payload views are kept: only control packets are read
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      in_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string in_;
};

// The gateway's loop never waits for the event log: with the log's writes stuck,
// a device flooding receipts is held (its socket is not read) while every other
// connection is served; once the log moves, the held receipts are acknowledged.
TEST_F(NodeTest, TheGatewayKeepsServingWhileTheLogIsStuck) {
  std::mutex mu;
  std::condition_variable cv;
  bool stuck = false;
  NodeOptions o;
  o.http = false;
  o.log_write_fault = [&](PartitionId) {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return !stuck; });
    return Status::Ok();
  };
  auto n = Node::Start(Quiet(), std::move(o));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto release = [&] {
    {
      std::lock_guard<std::mutex> l(mu);
      stuck = false;
    }
    cv.notify_all();
  };
  struct Guard {
    std::function<void()> fn;
    ~Guard() { fn(); }
  } guard{release};  // whatever fails, the log moves again before the node stops
  std::string t1 = (*n)->devices().Register("default", "u1", "d1").value();
  std::string t2 = (*n)->devices().Register("default", "u2", "d2").value();
  std::uint16_t port = (*n)->gateway()->tcp_endpoint().port;
  auto connect = [&](MqttTestClient& c, const std::string& id, const std::string& token) {
    mqtt::Connect cn;
    cn.client_id = id;
    cn.username = id;
    cn.password = token;
    c.Send(cn);
    auto ack = c.Next(5000);
    return ack && std::holds_alternative<mqtt::Connack>(*ack) &&
           std::get<mqtt::Connack>(*ack).code == mqtt::ConnackCode::kAccepted;
  };
  MqttTestClient flood(port);
  ASSERT_TRUE(flood.ok());
  ASSERT_TRUE(connect(flood, "d1", t1));
  {
    std::lock_guard<std::mutex> l(mu);
    stuck = true;
  }
  // More receipts than a partition of the log takes while its writes are stuck.
  std::string burst;
  for (int i = 0; i < 30000; ++i) {
    std::string body = R"({"message_id":"m)" + std::to_string(i) + R"(","type":"opened"})";
    mqtt::Encode(mqtt::Publish{false, mqtt::QoS::kAtMostOnce, false, 0, "r/u1", body}, &burst);
  }
  std::string payload = R"({"message_id":"last","type":"clicked"})";
  mqtt::Encode(mqtt::Publish{false, mqtt::QoS::kAtLeastOnce, false, 77, "r/u1", payload}, &burst);
  std::thread writer([&] { flood.SendRaw(burst); });  // blocks once herald stops reading
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  MqttTestClient other(port);
  bool served = other.ok() && connect(other, "d2", t2);
  if (served) {
    other.Send(mqtt::Pingreq{});
    auto pong = other.Next(5000);
    served = pong && std::holds_alternative<mqtt::Pingresp>(*pong);
  }
  EXPECT_TRUE(served) << "the loop waited for the stuck log";
  // The log is saturated: the sink holds a high-water mark of receipts and the
  // flooding device is no longer read.
  EXPECT_GE((*n)->metrics().GetGauge("herald_gateway_events_queued", "").Value(), 16384);
  auto early = flood.Next(200);
  EXPECT_FALSE(early.has_value()) << "a receipt was acknowledged before it was durable";
  release();
  writer.join();
  auto ack = flood.Next(20000);
  ASSERT_TRUE(ack.has_value());
  ASSERT_TRUE(std::holds_alternative<mqtt::Puback>(*ack));
  EXPECT_EQ(std::get<mqtt::Puback>(*ack).packet_id, 77);
  EXPECT_TRUE((*n)->Stop().ok());
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

namespace herald::node {
namespace {

// docs/openapi.yaml documents every route the node serves: each pattern is a path
// of the document, with the route's method under it.
TEST_F(NodeTest, EveryRouteIsInTheOpenApiDocument) {
  auto n = Node::Start(Quiet(), {.http = false, .mqtt = false});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  std::ifstream in(HERALD_OPENAPI_FILE);
  std::ostringstream os;
  os << in.rdbuf();
  const std::string doc = os.str();
  ASSERT_FALSE(doc.empty());
  const auto routes = (*n)->router().Routes();
  ASSERT_GT(routes.size(), 30u);
  for (const auto& [method, pattern] : routes) {
    const std::string head = "\n  " + pattern + ":\n";
    const size_t at = doc.find(head);
    ASSERT_NE(at, std::string::npos) << pattern << " is not a path of docs/openapi.yaml";
    const size_t end = doc.find("\n  /", at + head.size());
    const std::string block = doc.substr(at, end == std::string::npos ? std::string::npos : end - at);
    std::string m = method;
    for (char& ch : m) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_NE(block.find("\n    " + m + ":\n"), std::string::npos)
        << method << " " << pattern << " is not in docs/openapi.yaml";
  }
}

}  // namespace
}  // namespace herald::node
