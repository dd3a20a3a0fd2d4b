// Broker protocol logic against in-memory links, with a real store underneath.
#include "mqtt/broker.h"

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <mutex>

namespace herald::mqtt {
namespace {

class FakeLink : public Link {
 public:
  void Flush() override {}
  void Close() override { closing = true; }
  std::string Remote() const override { return "fake"; }
  bool closing = false;

  // Decodes and removes every packet written to this link so far.
  std::vector<Packet> Take() {
    std::vector<Packet> packets;
    size_t off = 0;
    while (off < out.size()) {
      DecodeResult r = Decode(std::string_view(out).substr(off));
      if (r.outcome != DecodeOutcome::kPacket) break;
      // Server-to-client packets decode with the client rules too; copy publishes.
      if (auto* p = std::get_if<Publish>(&r.packet)) {
        owned_.push_back(OwnedPublish::CopyOf(*p));
        r.packet = owned_.back().view();
      }
      packets.push_back(r.packet);
      off += r.consumed;
    }
    out.erase(0, off);
    return packets;
  }

 private:
  std::deque<OwnedPublish> owned_;
};

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("broker-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    std::vector<std::string> cfs = {kSessionsFamily, kMessagesFamily, kRetainedFamily};
    db_ = store::Db::Open(dir_.string(), {}, cfs).value();
    config_.open_mode = true;
    config_.max_inflight = 4;
    config_.max_queued_messages = 10;
    MakeBroker();
  }
  void TearDown() override {
    broker_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void MakeBroker() {
    broker_.reset();
    BrokerOptions o{config_, db_.get(), devices_, sink_, &clock_, &metrics_,
                    [this](std::function<void()> fn) {
                      std::lock_guard<std::mutex> l(mu_);
                      posted_.push_back(std::move(fn));
                    }};
    if (inline_background_) o.background = [](std::function<void()> fn) { fn(); };
    broker_ = std::make_unique<Broker>(o);
    ASSERT_TRUE(broker_->Recover().ok());
  }

  // Waits for every store commit issued so far, then runs their callbacks.
  void Settle() {
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(db_->Write(store::WriteBatch()).ok());
      std::vector<std::function<void()>> work;
      {
        std::lock_guard<std::mutex> l(mu_);
        work.swap(posted_);
      }
      for (auto& fn : work) fn();
    }
  }

  void Send(FakeLink& link, const auto& packet) {
    std::string bytes;
    Encode(packet, &bytes);
    size_t used = broker_->OnInput(&link, bytes);
    EXPECT_EQ(used, bytes.size());
  }

  std::unique_ptr<FakeLink> Connect(const std::string& id, bool clean, bool expect_present = false) {
    auto link = std::make_unique<FakeLink>();
    broker_->OnOpen(link.get());
    mqtt::Connect c;
    c.client_id = id;
    c.clean_session = clean;
    Send(*link, c);
    auto packets = link->Take();
    EXPECT_GE(packets.size(), 1u);
    auto* ack = std::get_if<Connack>(&packets[0]);
    EXPECT_TRUE(ack && ack->code == ConnackCode::kAccepted);
    if (ack) {
      EXPECT_EQ(ack->session_present, expect_present);
    }
    // Anything after the CONNACK (redeliveries) goes back for the test to read.
    for (size_t i = 1; i < packets.size(); ++i) Encode(packets[i], &link->out);
    return link;
  }

  void Subscribe(FakeLink& link, const std::string& filter, QoS qos) {
    Send(link, mqtt::Subscribe{1, {{filter, qos}}});
    Settle();  // a persistent session's SUBACK waits for the store
    auto p = link.Take();
    ASSERT_FALSE(p.empty());
    ASSERT_TRUE(std::holds_alternative<Suback>(p[0]));
    // Retained messages that followed the SUBACK go back for the test to read.
    for (size_t i = 1; i < p.size(); ++i) Encode(p[i], &link.out);
  }

  void Disconnect(FakeLink& link, bool graceful = true) {
    if (graceful) {
      std::string bytes;
      Encode(mqtt::Disconnect{}, &bytes);
      broker_->OnInput(&link, bytes);
    }
    broker_->OnClosed(&link);
  }

  static std::vector<Publish> Publishes(const std::vector<Packet>& packets) {
    std::vector<Publish> out;
    for (const auto& p : packets) {
      if (auto* pub = std::get_if<Publish>(&p)) out.push_back(*pub);
    }
    return out;
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<store::Db> db_;
  MqttConfig config_;
  VirtualClock clock_{1'767'571'200LL * kMicrosPerSecond};
  MetricsRegistry metrics_;
  std::unique_ptr<Broker> broker_;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  EventSink* sink_ = nullptr;
  const DeviceRegistry* devices_ = nullptr;  // secure mode when set (and !open_mode)
  bool inline_background_ = false;  // store reads and passes run at once, on this thread
};

TEST_F(BrokerTest, Qos1PublishIsDeliveredAndAcknowledged) {
  auto sub = Connect("sub", true);
  Subscribe(*sub, "a/+", QoS::kAtLeastOnce);
  auto pub = Connect("pub", true);
  Send(*pub, Publish{false, QoS::kAtLeastOnce, false, 7, "a/b", "hello"});
  Settle();
  auto to_pub = pub->Take();
  ASSERT_EQ(to_pub.size(), 1u);
  EXPECT_EQ(std::get<Puback>(to_pub[0]).packet_id, 7);
  auto got = Publishes(sub->Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "hello");
  EXPECT_EQ(got[0].qos, QoS::kAtLeastOnce);
  EXPECT_FALSE(got[0].retain);
}

TEST_F(BrokerTest, OverlappingSubscriptionsDeliverOneCopyAtTheHighestQos) {
  auto sub = Connect("sub", true);
  Subscribe(*sub, "a/#", QoS::kExactlyOnce);
  Subscribe(*sub, "a/b", QoS::kAtMostOnce);
  auto pub = Connect("pub", true);
  Send(*pub, Publish{false, QoS::kExactlyOnce, false, 1, "a/b", "x"});
  auto got = Publishes(sub->Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, QoS::kExactlyOnce);
}

TEST_F(BrokerTest, Qos2HandshakeBothDirections) {
  auto sub = Connect("sub", true);
  Subscribe(*sub, "t", QoS::kExactlyOnce);
  auto pub = Connect("pub", true);
  Send(*pub, Publish{false, QoS::kExactlyOnce, false, 5, "t", "once"});
  Send(*pub, Publish{true, QoS::kExactlyOnce, false, 5, "t", "once"});  // retransmission
  auto to_pub = pub->Take();
  ASSERT_EQ(to_pub.size(), 2u);
  EXPECT_EQ(std::get<Pubrec>(to_pub[0]).packet_id, 5);
  Send(*pub, Pubrel{5});
  EXPECT_EQ(std::get<Pubcomp>(pub->Take().at(0)).packet_id, 5);

  auto got = Publishes(sub->Take());
  ASSERT_EQ(got.size(), 1u);  // the retransmission was not routed again
  Send(*sub, Pubrec{got[0].packet_id});
  EXPECT_EQ(std::get<Pubrel>(sub->Take().at(0)).packet_id, got[0].packet_id);
  Send(*sub, Pubcomp{got[0].packet_id});
  EXPECT_EQ(metrics_.GetGauge("herald_mqtt_queued_messages", "").Value(), 0);
}

TEST_F(BrokerTest, PersistentSessionQueuesWhileOfflineAndRedeliversWithDup) {
  auto sub = Connect("dev", false);
  Subscribe(*sub, "u/1", QoS::kAtLeastOnce);
  auto pub = Connect("pub", true);
  Send(*pub, Publish{false, QoS::kAtLeastOnce, false, 1, "u/1", "m1"});
  Settle();
  auto first = Publishes(sub->Take());
  ASSERT_EQ(first.size(), 1u);
  Disconnect(*sub, false);  // no PUBACK: m1 stays in flight
  for (int i = 2; i <= 3; ++i) {
    Send(*pub, Publish{false, QoS::kAtLeastOnce, false, static_cast<std::uint16_t>(i), "u/1",
                       "m" + std::to_string(i)});
  }
  Settle();
  auto again = Connect("dev", false, /*expect_present=*/true);
  Settle();  // the queue waited on disk: read in behind the CONNACK
  auto got = Publishes(again->Take());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].payload, "m1");
  EXPECT_TRUE(got[0].dup);
  EXPECT_EQ(got[1].payload, "m2");
  EXPECT_FALSE(got[1].dup);
  EXPECT_EQ(got[2].payload, "m3");
}

TEST_F(BrokerTest, AnUnreadableSessionRecordIsReportedAndSkipped) {
  auto ok = Connect("keeps", /*clean=*/false);
  Subscribe(*ok, "t/keeps", QoS::kAtLeastOnce);
  broker_->OnClosed(ok.get());
  Settle();
  auto cf = db_->Family(kSessionsFamily).value();
  store::WriteBatch b;
  b.Put(cf, "broken", "{\"subs\":[[1,2]]}");
  b.Put(cf, "not-json", "\x01\x02");
  ASSERT_TRUE(db_->Write(std::move(b)).ok());
  MakeBroker();  // recovers without dying
  EXPECT_EQ(broker_->sessions(), 1u);
  EXPECT_EQ(metrics_.GetCounter("herald_recovery_bad_records_total", "", {{"kind", "mqtt_session"}}).Value(), 2u);
  auto back = Connect("keeps", false, /*expect_present=*/true);
}

TEST_F(BrokerTest, QueuedMessagesSurviveABrokerRestart) {
  {
    auto sub = Connect("dev", false);
    Subscribe(*sub, "u/1", QoS::kAtLeastOnce);
    Disconnect(*sub);
    auto pub = Connect("pub", true);
    for (int i = 1; i <= 3; ++i) {
      Send(*pub, Publish{false, QoS::kAtLeastOnce, false, static_cast<std::uint16_t>(i), "u/1",
                         "m" + std::to_string(i)});
    }
    Settle();
    EXPECT_EQ(pub->Take().size(), 3u);  // acknowledged only after the store commit
    Disconnect(*pub);
    Settle();
  }
  MakeBroker();  // a new broker on the same store, as after kill -9
  auto again = Connect("dev", false, true);
  Settle();
  auto got = Publishes(again->Take());
  ASSERT_EQ(got.size(), 3u);
  for (auto& p : got) Send(*again, Puback{p.packet_id});
  Settle();
  MakeBroker();
  auto third = Connect("dev", false, true);
  Settle();
  EXPECT_TRUE(Publishes(third->Take()).empty());  // acknowledged messages are gone
}

TEST_F(BrokerTest, InflightWindowAndQueueLimitCountDrops) {
  auto sub = Connect("dev", false);
  Subscribe(*sub, "u/1", QoS::kAtLeastOnce);
  auto pub = Connect("pub", true);
  for (int i = 1; i <= 12; ++i) {
    Send(*pub, Publish{false, QoS::kAtLeastOnce, false, static_cast<std::uint16_t>(i), "u/1", "m"});
  }
  Settle();
  auto got = Publishes(sub->Take());
  EXPECT_EQ(got.size(), 4u);  // max_inflight
  EXPECT_EQ(metrics_.GetCounter("herald_mqtt_dropped_total", "", {{"reason", "queue_full"}}).Value(), 2u);
  Send(*sub, Puback{got[0].packet_id});
  EXPECT_EQ(Publishes(sub->Take()).size(), 1u);  // a slot opened in the window
}

TEST_F(BrokerTest, RetainedMessagesSetReplaceAndDelete) {
  auto pub = Connect("pub", true);
  Send(*pub, Publish{false, QoS::kAtMostOnce, true, 0, "r/x", "v1"});
  Send(*pub, Publish{false, QoS::kAtMostOnce, true, 0, "r/x", "v2"});
  auto s1 = Connect("s1", true);
  Subscribe(*s1, "r/#", QoS::kAtMostOnce);
  auto got = Publishes(s1->Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "v2");
  EXPECT_TRUE(got[0].retain);
  Send(*pub, Publish{false, QoS::kAtMostOnce, true, 0, "r/x", ""});
  auto s2 = Connect("s2", true);
  Subscribe(*s2, "r/#", QoS::kAtMostOnce);
  EXPECT_TRUE(Publishes(s2->Take()).empty());
}

TEST_F(BrokerTest, WillIsPublishedOnlyOnUngracefulClose) {
  auto sub = Connect("sub", true);
  Subscribe(*sub, "will/#", QoS::kAtMostOnce);
  for (bool graceful : {true, false}) {
    auto link = std::make_unique<FakeLink>();
    broker_->OnOpen(link.get());
    mqtt::Connect c;
    c.client_id = graceful ? "g" : "u";
    c.will = Will{"will/" + c.client_id, "gone", QoS::kAtMostOnce, false};
    Send(*link, c);
    Disconnect(*link, graceful);
  }
  auto got = Publishes(sub->Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "will/u");
}

TEST_F(BrokerTest, FirstPacketMustBeConnectAndASecondConnectCloses) {
  auto link = std::make_unique<FakeLink>();
  broker_->OnOpen(link.get());
  std::string bytes;
  Encode(Pingreq{}, &bytes);
  broker_->OnInput(link.get(), bytes);
  EXPECT_TRUE(link->closing);
  broker_->OnClosed(link.get());

  auto c = Connect("twice", true);
  mqtt::Connect again;
  again.client_id = "twice";
  std::string b2;
  Encode(again, &b2);
  broker_->OnInput(c.get(), b2);
  EXPECT_TRUE(c->closing);
}

TEST_F(BrokerTest, SameClientIdTakesOverTheSession) {
  auto first = Connect("dup", true);
  auto second = Connect("dup", true);
  EXPECT_TRUE(first->closing);
  broker_->OnClosed(first.get());
  Subscribe(*second, "x", QoS::kAtMostOnce);  // the new connection is fully usable
  EXPECT_EQ(broker_->sessions(), 1u);
}

TEST_F(BrokerTest, DeliverReportsRefusedDeliveredQueuedAndExpired) {
  std::vector<DeliveryOutcome> outcomes;
  auto record = [&](DeliveryOutcome o) { outcomes.push_back(o); };
  PushMessage m{"t", "u1", "m1", "{}", 0};
  broker_->Deliver(m, record);  // nobody subscribed
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0], DeliveryOutcome::kRefused);

  auto dev = Connect("dev", false);
  Subscribe(*dev, "u/u1", QoS::kAtLeastOnce);  // open mode: no tenant mount
  broker_->Deliver(m, record);
  Settle();
  auto got = Publishes(dev->Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(outcomes.size(), 1u);  // waiting for the PUBACK
  Send(*dev, Puback{got[0].packet_id});
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[1], DeliveryOutcome::kDelivered);

  Disconnect(*dev);
  broker_->Deliver(m, record);
  Settle();
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[2], DeliveryOutcome::kQueued);

  PushMessage short_lived = m;
  short_lived.expires_at = clock_.Now() + kMicrosPerSecond;
  broker_->Deliver(short_lived, record);
  Settle();
  clock_.Advance(2 * kMicrosPerSecond);
  broker_->Tick();
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(outcomes[3], DeliveryOutcome::kQueued);
  // Offline queues are on disk: an expired message is dropped when it is read in,
  // never delivered.
  auto back = Connect("dev", false, true);
  Settle();
  auto delivered = Publishes(back->Take());
  ASSERT_EQ(delivered.size(), 1u);  // the one queued before, not the expired one
  EXPECT_EQ(metrics_.GetCounter("herald_mqtt_dropped_total", "", {{"reason", "expired"}}).Value(), 1u);
}

class RecordingSink : public EventSink {
 public:
  bool OnGatewayEvent(GatewayEvent e, Done done) override {
    events.push_back(std::move(e));
    if (done) done(Status::Ok());
    return true;
  }
  void NotifyWhenDrained(std::function<void()> fn) override { fn(); }
  std::vector<GatewayEvent> events;
};

// Secure mode: a device authenticates with its token, is confined to its topics,
// and its presence, deliveries and receipts become events for the pipeline.
TEST_F(BrokerTest, DeviceEventsAclAndReceipts) {
  DeviceRegistry* reg = nullptr;
  std::unique_ptr<store::Db> dev_db =
      store::Db::Open((dir_ / "devices").string(), {}, {kDevicesFamily}).value();
  auto registry = DeviceRegistry::Open(dev_db.get(), &clock_).value();
  reg = registry.get();
  std::string token = reg->Register("shop", "u1", "d1").value();
  RecordingSink sink;
  config_.open_mode = false;
  broker_.reset();
  BrokerOptions o{config_, db_.get(), reg, &sink, &clock_, &metrics_,
                  [this](std::function<void()> fn) {
                    std::lock_guard<std::mutex> l(mu_);
                    posted_.push_back(std::move(fn));
                  }};
  broker_ = std::make_unique<Broker>(o);
  ASSERT_TRUE(broker_->Recover().ok());

  auto bad = std::make_unique<FakeLink>();
  broker_->OnOpen(bad.get());
  mqtt::Connect wrong;
  wrong.client_id = "d1";
  wrong.username = "d1";
  wrong.password = token + "x";
  Send(*bad, wrong);
  EXPECT_EQ(std::get<Connack>(bad->Take().at(0)).code, ConnackCode::kBadUsernameOrPassword);
  EXPECT_TRUE(bad->closing);
  broker_->OnClosed(bad.get());

  auto dev = std::make_unique<FakeLink>();
  broker_->OnOpen(dev.get());
  mqtt::Connect c;
  c.client_id = "d1";
  c.username = "d1";
  c.password = token;
  Send(*dev, c);
  EXPECT_EQ(std::get<Connack>(dev->Take().at(0)).code, ConnackCode::kAccepted);
  Send(*dev, mqtt::Subscribe{2, {{"u/u1", QoS::kAtLeastOnce}, {"u/u2", QoS::kAtLeastOnce},
                                 {"#", QoS::kAtMostOnce}}});
  Settle();
  auto suback = std::get<Suback>(dev->Take().at(0));
  EXPECT_EQ(suback.codes, (std::vector<SubackCode>{SubackCode::kGrantedQoS1, SubackCode::kFailure,
                                                   SubackCode::kFailure}));
  EXPECT_EQ(metrics_.GetCounter("herald_mqtt_acl_denied_total", "", {{"action", "subscribe"}}).Value(), 2u);

  std::vector<DeliveryOutcome> outcomes;
  broker_->Deliver({"shop", "u1", "m1", R"({"id":"m1"})", 0, "acct", "camp"},
                   [&](DeliveryOutcome d) { outcomes.push_back(d); });
  broker_->Deliver({"other", "u1", "m2", "{}", 0},  // same user id in another tenant
                   [&](DeliveryOutcome d) { outcomes.push_back(d); });
  auto got = Publishes(dev->Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "u/u1");  // the tenant mount is invisible to the device
  Send(*dev, Puback{got[0].packet_id});
  Send(*dev, Publish{false, QoS::kAtLeastOnce, false, 9, "r/u1",
                     R"({"message_id":"m1","type":"opened"})"});
  Send(*dev, Publish{false, QoS::kAtMostOnce, false, 0, "r/u1", "not json"});
  EXPECT_TRUE(dev->Take().empty());  // the receipt's PUBACK waits until it is stored
  Settle();
  EXPECT_EQ(std::get<Puback>(dev->Take().at(0)).packet_id, 9);
  EXPECT_EQ(outcomes, (std::vector<DeliveryOutcome>{DeliveryOutcome::kRefused,
                                                    DeliveryOutcome::kDelivered}));
  // Publishing outside r/<user> closes the connection.
  Send(*dev, Publish{false, QoS::kAtMostOnce, false, 0, "u/u2", "x"});
  EXPECT_TRUE(dev->closing);
  broker_->OnClosed(dev.get());

  std::vector<std::string> types;
  for (const auto& e : sink.events) types.push_back(e.type + ":" + e.message_id);
  EXPECT_EQ(types, (std::vector<std::string>{"online:", "refused:m2", "delivered:m1", "opened:m1",
                                             "offline:"}));
  EXPECT_EQ(sink.events[2].account_id, "acct");  // delivered: the push's ids
  EXPECT_EQ(sink.events[2].campaign_id, "camp");
  EXPECT_EQ(sink.events[3].device_id, "d1");
  EXPECT_EQ(sink.events[3].tenant, "shop");
  EXPECT_EQ(sink.events[3].ts, clock_.Now());
  EXPECT_EQ(metrics_.GetCounter("herald_mqtt_receipts_rejected_total", "").Value(), 1u);
  broker_.reset();
}

// Flow control: a backed-up subscriber holds the connections publishing to it,
// but never a connection whose own queue must drain first.
class FlowControlTest : public BrokerTest {
 protected:
  void SetUp() override {
    BrokerTest::SetUp();
    config_.flow_high_water = 3;
    config_.max_queued_messages = 100;
    MakeBroker();
  }
  void PublishN(FakeLink& from, const std::string& topic, int n, std::uint16_t first_id) {
    for (int i = 0; i < n; ++i) {
      Send(from, Publish{false, QoS::kAtLeastOnce, false,
                         static_cast<std::uint16_t>(first_id + i), topic, "m" + std::to_string(i)});
    }
  }
  // Acknowledges every PUBLISH the link received so far; returns how many.
  size_t AckAll(FakeLink& link) {
    auto got = Publishes(link.Take());
    for (const Publish& p : got) Send(link, Puback{p.packet_id});
    return got.size();
  }
};

TEST_F(FlowControlTest, APublisherWaitsForABackedUpSubscriberAndGoesOnWhenItDrains) {
  auto sub = Connect("sub", true);
  Subscribe(*sub, "t", QoS::kAtLeastOnce);
  auto pub = Connect("pub", true);
  PublishN(*pub, "t", 4 + 3, 1);  // the window (4) and 3 queued: the high-water mark
  EXPECT_TRUE(pub->input_paused());
  EXPECT_EQ(metrics_.GetCounter("herald_mqtt_flow_pauses_total", "").Value(), 1u);
  AckAll(*sub);
  EXPECT_FALSE(pub->input_paused());
  EXPECT_EQ(metrics_.GetCounter("herald_mqtt_dropped_total", "", {{"reason", "queue_full"}}).Value(), 0u);
}

TEST_F(FlowControlTest, AClientIsNeverHeldByItsOwnSubscription) {
  auto self = Connect("self", true);
  Subscribe(*self, "loop", QoS::kAtLeastOnce);
  PublishN(*self, "loop", 20, 1);  // no PUBACK for its own copies yet
  EXPECT_FALSE(self->input_paused());
  Settle();
  EXPECT_EQ(AckAll(*self), 4u);  // the window; the rest comes as it acknowledges
}

TEST_F(FlowControlTest, TwoClientsFeedingEachOtherNeverBothStop) {
  auto a = Connect("a", true);
  Subscribe(*a, "to-a", QoS::kAtLeastOnce);
  auto b = Connect("b", true);
  Subscribe(*b, "to-b", QoS::kAtLeastOnce);
  PublishN(*a, "to-b", 7, 1);  // b backs up: a is held
  EXPECT_TRUE(a->input_paused());
  // a backs up too. Both queues drain only while their clients are read, so
  // neither is held: b's input carries its own PUBACKs, and a must be read again.
  PublishN(*b, "to-a", 7, 1);
  EXPECT_FALSE(b->input_paused());
  EXPECT_FALSE(a->input_paused());
  AckAll(*a);  // a drains: it is held again for b's queue
  AckAll(*a);
  EXPECT_FALSE(b->input_paused());
  EXPECT_TRUE(a->input_paused());
  AckAll(*b);
  AckAll(*b);
  EXPECT_FALSE(a->input_paused());
  EXPECT_FALSE(b->input_paused());
}

TEST_F(FlowControlTest, ATakeoverReleasesThePublishersTheOldConnectionHeld) {
  auto sub = Connect("sub", true);
  Subscribe(*sub, "t", QoS::kAtLeastOnce);
  auto pub = Connect("pub", true);
  PublishN(*pub, "t", 7, 1);
  ASSERT_TRUE(pub->input_paused());
  auto again = Connect("sub", true);  // a clean session: the old queue ends
  EXPECT_FALSE(pub->input_paused());
  broker_->OnClosed(sub.get());
}

// A connected persistent session reads the tail of its queue from disk. A read that
// runs before the newest copies are committed comes back short; the session reads
// again once they are, and every acknowledged message arrives, in order.
TEST_F(BrokerTest, AQueueReadThatRacesItsCommitLosesNothing) {
  config_.session_window = 2;
  config_.max_inflight = 2;
  MakeBroker();
  auto sub = Connect("sub", false);
  Subscribe(*sub, "t", QoS::kAtLeastOnce);
  auto pub = Connect("pub", true);
  auto publish = [&](int i) {
    Send(*pub, Publish{false, QoS::kAtLeastOnce, false, static_cast<std::uint16_t>(i + 1), "t",
                       "m" + std::to_string(i)});
  };
  publish(0);
  publish(1);
  Settle();
  auto first = Publishes(sub->Take());
  ASSERT_EQ(first.size(), 2u);  // the window is full
  std::vector<std::string> got = {std::string(first[0].payload), std::string(first[1].payload)};
  publish(2);  // on disk only, its commit still under way
  Send(*sub, Puback{first[0].packet_id});  // room: the tail is read before m2 is there
  Send(*sub, Puback{first[1].packet_id});
  for (int round = 0; round < 10 && got.size() < 3; ++round) {
    Settle();
    for (const Publish& p : Publishes(sub->Take())) {
      got.emplace_back(p.payload);
      Send(*sub, Puback{p.packet_id});
    }
  }
  EXPECT_EQ(got, (std::vector<std::string>{"m0", "m1", "m2"}));
  EXPECT_EQ(metrics_.GetGauge("herald_mqtt_queued_messages", "").Value(), 0);
}

// A SUBACK of a persistent session waits for the store; if the session is taken
// over meanwhile, the old connection just closes.
TEST_F(BrokerTest, ASubackAfterATakeoverIsDroppedWithTheOldConnection) {
  auto first = Connect("dev", false);
  Send(*first, mqtt::Subscribe{1, {{"t", QoS::kAtLeastOnce}}});  // not settled yet
  auto second = Connect("dev", false, true);
  EXPECT_TRUE(first->closing);
  Settle();
  for (const Packet& p : first->Take()) EXPECT_FALSE(std::holds_alternative<Suback>(p));
  broker_->OnClosed(first.get());
}

// QoS 2 to a persistent session leaves only once its packet id is durable, so a
// crash can only make it come back as that same id with DUP.
TEST_F(BrokerTest, Qos2ToAPersistentSessionWaitsForItsMark) {
  auto sub = Connect("sub", false);
  Subscribe(*sub, "t", QoS::kExactlyOnce);
  auto pub = Connect("pub", true);
  Send(*pub, Publish{false, QoS::kExactlyOnce, false, 1, "t", "once"});
  EXPECT_TRUE(Publishes(sub->Take()).empty());  // the copy and its mark are not committed
  Settle();
  auto got = Publishes(sub->Take());
  ASSERT_EQ(got.size(), 1u);
  // A PUBREL lets the client forget the id: it too waits for the PUBREC mark.
  Send(*sub, Pubrec{got[0].packet_id});
  EXPECT_TRUE(sub->Take().empty());
  Settle();
  auto rel = sub->Take();
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(std::get<Pubrel>(rel[0]).packet_id, got[0].packet_id);
}

// Expired messages of an offline session are dropped from disk and reported,
// without waiting for the device to come back.
TEST_F(BrokerTest, ExpiredMessagesOnDiskAreDroppedWhileTheSessionIsOffline) {
  std::unique_ptr<store::Db> dev_db =
      store::Db::Open((dir_ / "devices").string(), {}, {kDevicesFamily}).value();
  auto registry = DeviceRegistry::Open(dev_db.get(), &clock_).value();
  std::string token = registry->Register("shop", "u1", "d1").value();
  RecordingSink sink;
  sink_ = &sink;
  devices_ = registry.get();
  inline_background_ = true;
  config_.open_mode = false;
  config_.expiry_scan_s = 1;
  MakeBroker();
  auto device = [&] {
    auto link = std::make_unique<FakeLink>();
    broker_->OnOpen(link.get());
    mqtt::Connect c;
    c.client_id = "d1";
    c.username = "d1";
    c.password = token;
    c.clean_session = false;
    Send(*link, c);
    EXPECT_EQ(std::get<Connack>(link->Take().at(0)).code, ConnackCode::kAccepted);
    return link;
  };
  auto dev = device();
  Subscribe(*dev, "u/u1", QoS::kAtLeastOnce);
  Disconnect(*dev);
  PushMessage soon{"shop", "u1", "m-soon", "soon", clock_.Now() + kMicrosPerSecond};
  PushMessage later{"shop", "u1", "m-later", "later", 0};
  std::vector<DeliveryOutcome> outcomes;
  broker_->Deliver(soon, [&](DeliveryOutcome o) { outcomes.push_back(o); });
  broker_->Deliver(later, [&](DeliveryOutcome o) { outcomes.push_back(o); });
  Settle();
  EXPECT_EQ(outcomes, (std::vector<DeliveryOutcome>{DeliveryOutcome::kQueued, DeliveryOutcome::kQueued}));
  EXPECT_EQ(metrics_.GetGauge("herald_mqtt_queued_messages", "").Value(), 2);
  clock_.Advance(2 * kMicrosPerSecond);
  for (int i = 0; i < 6; ++i) broker_->Tick();  // a pass a second, four ticks a second
  Settle();
  EXPECT_EQ(metrics_.GetGauge("herald_mqtt_queued_messages", "").Value(), 1);
  EXPECT_EQ(metrics_.GetCounter("herald_mqtt_dropped_total", "", {{"reason", "expired"}}).Value(), 1u);
  bool reported = false;
  for (const auto& e : sink.events) reported |= e.type == "expired" && e.message_id == "m-soon";
  EXPECT_TRUE(reported);
  auto back = device();
  Settle();
  auto got = Publishes(back->Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "later");
  broker_.reset();
}

// Output to one connection is bounded: a subscriber that does not read loses QoS 0
// past mqtt.max_output_bytes (counted) while QoS 1 waits in its session, and a
// client that does not read its acknowledgements is not read either.
TEST_F(BrokerTest, OutputToAConnectionThatDoesNotReadStaysBounded) {
  config_.max_output_bytes = 4096;
  config_.max_inflight = 4;
  MakeBroker();
  auto sub = Connect("sub", true);
  Subscribe(*sub, "t", QoS::kAtLeastOnce);
  auto pub = Connect("pub", true);
  const std::string big(1000, 'x');
  for (int i = 0; i < 10; ++i) Send(*pub, Publish{false, QoS::kAtMostOnce, false, 0, "t", big});
  EXPECT_LT(sub->out.size(), 4096u + 2 * big.size());
  EXPECT_GE(metrics_.GetCounter("herald_mqtt_dropped_total", "", {{"reason", "slow_subscriber_qos0"}}).Value(), 5u);
  for (int i = 0; i < 6; ++i) {
    Send(*pub, Publish{false, QoS::kAtLeastOnce, false, static_cast<std::uint16_t>(i + 1), "t", big});
  }
  EXPECT_EQ(metrics_.GetGauge("herald_mqtt_queued_messages", "").Value(), 6);  // none dropped

  auto deaf = Connect("deaf", true);
  for (int i = 0; i < 3000 && !deaf->input_paused(); ++i) Send(*deaf, Pingreq{});
  EXPECT_TRUE(deaf->input_paused());  // about 4 KiB of PINGRESPs it never read
  EXPECT_LE(deaf->out.size(), 4096u + 2);
  deaf->Take();  // it reads them
  broker_->Tick();
  EXPECT_FALSE(deaf->input_paused());
}

}  // namespace
}  // namespace herald::mqtt
