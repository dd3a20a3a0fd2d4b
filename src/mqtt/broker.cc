// Broker: connection life cycle, input decoding, the periodic sweep, Deliver().
#include "mqtt/broker.h"

#include "core/log.h"
#include "mqtt/broker_internal.h"

namespace herald::mqtt {
namespace {

std::atomic<std::uint64_t> g_next_conn_id{1};

}  // namespace

const char* DeliveryOutcomeName(DeliveryOutcome o) {
  switch (o) {
    case DeliveryOutcome::kDelivered: return "delivered";
    case DeliveryOutcome::kQueued: return "queued";
    case DeliveryOutcome::kExpired: return "expired";
    case DeliveryOutcome::kRefused: return "refused";
  }
  return "refused";
}

Broker::Broker(BrokerOptions options) : opt_(std::move(options)), metrics_(opt_.metrics) {
  MetricsRegistry& m = *metrics_;
  m_connections_ = &m.GetGauge("herald_mqtt_connections", "Open MQTT network connections.");
  m_sessions_ = &m.GetGauge("herald_mqtt_sessions", "MQTT sessions, online and offline.");
  m_subscriptions_ = &m.GetGauge("herald_mqtt_subscriptions", "Subscriptions in the index.");
  m_queued_ = &m.GetGauge("herald_mqtt_queued_messages",
                          "QoS 1/2 messages queued or in flight for sessions.");
  m_retained_ = &m.GetGauge("herald_mqtt_retained_messages", "Retained messages.");
  for (int q = 0; q < 3; ++q) {
    m_in_[q] = &m.GetCounter("herald_mqtt_messages_in_total", "PUBLISH packets received.",
                             {{"qos", std::to_string(q)}});
    m_out_[q] = &m.GetCounter("herald_mqtt_messages_out_total", "PUBLISH packets sent.",
                              {{"qos", std::to_string(q)}});
  }
  m_acl_denied_sub_ = &m.GetCounter("herald_mqtt_acl_denied_total",
                                    "Subscribes and publishes refused by the ACL.",
                                    {{"action", "subscribe"}});
  m_acl_denied_pub_ = &m.GetCounter("herald_mqtt_acl_denied_total",
                                    "Subscribes and publishes refused by the ACL.",
                                    {{"action", "publish"}});
  m_auth_failed_ = &m.GetCounter("herald_mqtt_auth_failures_total",
                                 "CONNECTs refused for bad or missing credentials.");
  m_protocol_errors_ = &m.GetCounter("herald_mqtt_protocol_errors_total",
                                     "Connections closed for a protocol violation.");
  m_receipts_ = &m.GetCounter("herald_mqtt_receipts_total", "Device receipts accepted.");
  m_flow_pauses_ = &m.GetCounter("herald_mqtt_flow_pauses_total",
                                 "Publishers paused because a connected subscriber fell behind.");
  m_bad_receipts_ = &m.GetCounter("herald_mqtt_receipts_rejected_total",
                                  "Device receipts that were not valid receipt JSON.");
  m_delivery_seconds_ = &m.GetHistogram("herald_mqtt_delivery_seconds",
                                        "Deliver() to the first device acknowledgement.",
                                        LatencyBuckets());
  auto cf = [&](const char* name) { return opt_.db->Family(name).value(); };
  sessions_cf_ = cf(kSessionsFamily);
  messages_cf_ = cf(kMessagesFamily);
  retained_cf_ = cf(kRetainedFamily);
}

// Links may already be gone when the broker is destroyed (the loop owns them), so
// the destructor never touches them; ConnStates are owned by conn_states_.
Broker::~Broker() = default;

void Broker::Drop(const char* reason, const MessagePtr& msg) {
  metrics_->GetCounter("herald_mqtt_dropped_total", "Messages dropped, by reason.",
                       {{"reason", reason}})
      .Inc();
  if (msg && msg->tracker) {
    auto& t = *msg->tracker;
    if (--t.pending <= 0 && !t.resolved) {
      bool expired = std::string_view(reason) == "expired";
      t.Resolve(expired ? DeliveryOutcome::kExpired : DeliveryOutcome::kRefused);
      EmitOutcome(t, expired ? "expired" : "refused");
    }
  }
}

bool Broker::Emit(const std::string& tenant, const std::string& user, const std::string& device,
                  const char* type, const Message* push, std::function<void(Status)> done,
                  const std::string& article_id) {
  if (!opt_.events || tenant.empty()) {
    if (done) done(Status::Ok());
    return true;
  }
  GatewayEvent e{tenant, user, device, type, {}, {}, {}, opt_.clock->Now(), article_id};
  if (push) {
    e.message_id = push->message_id;
    e.account_id = push->account_id;
    e.campaign_id = push->campaign_id;
  }
  EventSink::Done on_loop;
  if (done) {
    // The sink calls back on its own thread; the broker's state lives on the loop.
    on_loop = [post = opt_.post, done = std::move(done)](Status s) mutable {
      post([done = std::move(done), s] { done(s); });
    };
  }
  return opt_.events->OnGatewayEvent(std::move(e), std::move(on_loop));
}

void Broker::Pause(ConnState& c, std::uint8_t reason) {
  if (!c.paused) c.link->PauseInput();
  c.paused |= reason;
}

void Broker::Resume(ConnState& c, std::uint8_t reason) {
  if (!(c.paused & reason)) return;
  c.paused &= static_cast<std::uint8_t>(~reason);
  if (!c.paused) c.link->ResumeInput();
}

void Broker::OnSinkDrained() {
  sink_wait_armed_ = false;
  std::vector<std::uint64_t> ids;
  ids.swap(sink_paused_);
  for (std::uint64_t id : ids) {
    if (Link* l = LinkById(id)) Resume(*l->state, kPauseSink);
  }
}

void Broker::ReleasePublishers(Session& s) {
  if (s.blocked.empty()) return;
  std::vector<std::uint64_t> ids;
  ids.swap(s.blocked);
  for (std::uint64_t id : ids) {
    Link* l = LinkById(id);
    if (!l) continue;  // gone meanwhile
    ConnState& c = *l->state;
    if (c.flow_blocks > 0) --c.flow_blocks;
    SyncFlow(c);
  }
  // No longer backed up: its own connection may be held again for what it feeds.
  if (s.link && s.link->state) SyncFlow(*s.link->state);
}

bool Broker::Backlogged(const ConnState& c) const {
  if (!c.session) return false;
  auto it = sessions_.find(c.session);
  return it != sessions_.end() && !it->second->blocked.empty();
}

void Broker::SyncFlow(ConnState& c) {
  if (c.flow_blocks > 0 && !Backlogged(c)) {
    if (!(c.paused & kPauseFlow)) m_flow_pauses_->Inc();
    Pause(c, kPauseFlow);
  } else {
    Resume(c, kPauseFlow);
  }
}

void Broker::AckReady(std::uint64_t conn_id, std::uint16_t packet_id, bool ok) {
  Link* l = LinkById(conn_id);
  if (!l) return;
  if (!ok) {
    l->Close();  // not acknowledged: the client sends it again
    return;
  }
  for (PendingAck& a : l->state->acks) {
    if (a.packet_id == packet_id && !a.ready) {
      a.ready = true;
      break;
    }
  }
  FlushAcks(*l->state);
}

void Broker::EmitOutcome(const DeliveryTracker& t, const char* type) {
  if (!opt_.events || t.tenant.empty()) return;
  opt_.events->OnGatewayEvent({t.tenant, t.user_id, {}, type, t.message_id, t.account_id,
                               t.campaign_id, opt_.clock->Now()});
}

void Broker::OnOpen(Link* link) {
  auto owned = std::make_unique<ConnState>();
  ConnState* c = owned.get();
  c->id = g_next_conn_id++;
  conn_states_[c->id] = std::move(owned);
  c->link = link;
  c->last_packet = std::chrono::steady_clock::now();
  link->state = c;
  m_connections_->Set(static_cast<std::int64_t>(conn_states_.size()));
}

size_t Broker::OnInput(Link* link, std::string_view input) {
  ConnState& c = *link->state;
  DecodeLimits limits{opt_.config.max_packet_bytes};
  size_t off = 0;
  while (off < input.size()) {
    DecodeResult r = Decode(input.substr(off), limits);
    if (r.outcome == DecodeOutcome::kNeedMore) break;
    if (r.outcome == DecodeOutcome::kError) {
      if (r.error.kind == DecodeErrorKind::kConnectRefused && !c.connected) {
        Encode(Connack{false, r.error.connack}, &link->out);
      } else {
        m_protocol_errors_->Inc();
        log::Debug("mqtt protocol error", {{"remote", link->Remote()}, {"reason", r.error.reason}});
      }
      link->Close();
      return input.size();
    }
    off += r.consumed;
    c.last_packet = std::chrono::steady_clock::now();
    if (!HandlePacket(link, r.packet)) {
      link->Close();
      return input.size();
    }
    if (link->input_paused()) break;  // flow control: the rest waits for ResumeInput()
  }
  if (link->pending_output() > opt_.config.max_output_bytes && !(c.paused & kPauseOutput)) {
    // A client that sends without reading its answers (PUBACKs, PINGRESPs) is not
    // read either until they drain: its output stays bounded.
    Pause(c, kPauseOutput);
    output_paused_.push_back(c.id);
  }
  return off;
}

bool Broker::HandlePacket(Link* link, Packet& packet) {
  ConnState& c = *link->state;
  PacketType type = TypeOf(packet);
  if (!c.connected) {
    // The first packet must be CONNECT (MQTT-3.1.0-1).
    if (type != PacketType::kConnect) {
      m_protocol_errors_->Inc();
      return false;
    }
    return HandleConnect(link, std::get<Connect>(packet));
  }
  switch (type) {
    case PacketType::kConnect:  // a second CONNECT is a violation (MQTT-3.1.0-2)
      m_protocol_errors_->Inc();
      return false;
    case PacketType::kPublish: return HandlePublish(link, std::get<Publish>(packet));
    case PacketType::kPuback: return HandlePuback(link, std::get<Puback>(packet).packet_id);
    case PacketType::kPubrec: return HandlePubrec(link, std::get<Pubrec>(packet).packet_id);
    case PacketType::kPubrel: return HandlePubrel(link, std::get<Pubrel>(packet).packet_id);
    case PacketType::kPubcomp: return HandlePubcomp(link, std::get<Pubcomp>(packet).packet_id);
    case PacketType::kSubscribe: return HandleSubscribe(link, std::get<Subscribe>(packet));
    case PacketType::kUnsubscribe: return HandleUnsubscribe(link, std::get<Unsubscribe>(packet));
    case PacketType::kPingreq:
      Encode(Pingresp{}, &link->out);
      link->Flush();
      return true;
    case PacketType::kDisconnect:
      c.graceful = true;
      c.will.reset();
      return false;
    default:  // a packet only a server sends
      m_protocol_errors_->Inc();
      return false;
  }
}

void Broker::OnClosed(Link* link) {
  ConnState* c = link->state;
  if (!c) return;
  if (c->connected && !c->graceful) PublishWill(*c);
  if (c->connected && c->principal) {
    const Principal& p = *c->principal;
    Emit(p.tenant, p.user_id, p.device_id, "offline", nullptr);
  }
  DetachSession(*c);
  link->state = nullptr;
  conn_states_.erase(c->id);  // destroys *c
  m_connections_->Set(static_cast<std::int64_t>(conn_states_.size()));
}

void Broker::Tick() {
  auto now = std::chrono::steady_clock::now();
  std::vector<Link*> expired;
  for (const auto& [id, state] : conn_states_) {
    const ConnState& c = *state;
    Link* link = c.link;
    auto idle = now - c.last_packet;
    // 1.5 x keep-alive (MQTT-3.1.2-24); a connection that never sends CONNECT gets 10 s.
    if (!c.connected ? idle > std::chrono::seconds(10)
                     : c.keep_alive && idle > std::chrono::milliseconds(1500) * c.keep_alive) {
      expired.push_back(link);
    }
  }
  for (Link* link : expired) link->Close();

  if (!output_paused_.empty()) {
    std::vector<std::uint64_t> still;
    for (std::uint64_t id : output_paused_) {
      Link* l = LinkById(id);
      if (!l) continue;
      if (l->pending_output() > opt_.config.max_output_bytes / 2) {
        still.push_back(id);
      } else {
        Resume(*l->state, kPauseOutput);
      }
    }
    output_paused_.swap(still);
  }

  // Expire the messages that offline sessions keep on disk (4 ticks a second).
  const std::uint64_t every = std::max<std::uint64_t>(opt_.config.expiry_scan_s * 4, 1);
  if (ticks_++ % every == 0 && ticks_ > 1) StartExpiryPass();
}

void Broker::Deliver(PushMessage push, DeliveryCallback done) {
  auto tracker = std::make_shared<DeliveryTracker>();
  tracker->tenant = push.tenant;
  tracker->user_id = push.user_id;
  tracker->message_id = push.message_id;
  tracker->account_id = push.account_id;
  tracker->campaign_id = push.campaign_id;
  tracker->done = std::move(done);
  tracker->started = std::chrono::steady_clock::now();
  auto msg = std::make_shared<Message>();
  msg->topic = (opt_.config.open_mode ? std::string() : push.tenant + "/") + "u/" + push.user_id;
  msg->payload = std::move(push.payload);
  msg->qos = 1;
  msg->message_id = push.message_id;
  msg->account_id = std::move(push.account_id);
  msg->campaign_id = std::move(push.campaign_id);
  msg->expires_at = push.expires_at
                        ? push.expires_at
                        : opt_.clock->Now() + static_cast<Micros>(opt_.config.message_ttl_s) *
                                                  kMicrosPerSecond;
  msg->tracker = tracker;
  if (msg->expires_at <= opt_.clock->Now()) {
    tracker->Resolve(DeliveryOutcome::kExpired);
    EmitOutcome(*tracker, "expired");
    return;
  }
  store::WriteBatch batch;
  size_t reached = Route(msg, &batch);
  if (reached == 0 || tracker->pending == 0) {
    tracker->Resolve(DeliveryOutcome::kRefused);
    EmitOutcome(*tracker, "refused");
    return;
  }
  // With a device online the first PUBACK resolves it; otherwise it is queued once
  // the copies for persistent sessions are durable.
  Commit(
      std::move(batch),
      [this, tracker](Status st) {
        if (tracker->resolved || tracker->online > 0) return;
        if (!st.ok()) {
          tracker->Resolve(DeliveryOutcome::kRefused);
          EmitOutcome(*tracker, "refused");
          return;
        }
        tracker->Resolve(DeliveryOutcome::kQueued);
        EmitOutcome(*tracker, "queued");
      },
      /*bounded=*/true);
}

}  // namespace herald::mqtt
