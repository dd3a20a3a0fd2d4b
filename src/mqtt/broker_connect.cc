// CONNECT handling and the session life cycle.
#include "core/log.h"
#include "mqtt/broker.h"
#include "mqtt/broker_internal.h"

namespace herald::mqtt {

bool Broker::HandleConnect(Link* link, Connect& connect) {
  ConnState& c = *link->state;
  auto refuse = [&](ConnackCode code) {
    Encode(Connack{false, code}, &link->out);
    return false;  // the link is closed after the CONNACK is written
  };
  if (!opt_.config.open_mode) {
    if (!connect.username || !connect.password) {
      m_auth_failed_->Inc();
      return refuse(ConnackCode::kNotAuthorized);
    }
    auto id = opt_.devices->Authenticate(*connect.username, *connect.password);
    if (!id.ok()) {
      m_auth_failed_->Inc();
      return refuse(ConnackCode::kBadUsernameOrPassword);
    }
    auto p = std::make_shared<Principal>();
    p->mount = id->tenant + "/";
    p->tenant = std::move(id->tenant);
    p->user_id = std::move(id->user_id);
    p->device_id = std::move(id->device_id);
    c.principal = std::move(p);
  }
  if (connect.client_id.empty()) {
    // Zero-length id with clean session (the codec refuses it otherwise).
    connect.client_id = "herald-" + std::to_string(++assigned_ids_) + "-" + std::to_string(c.id);
  }
  c.keep_alive = connect.keep_alive;
  if (connect.will) c.will = std::make_unique<Will>(std::move(*connect.will));
  bool present = false;
  Session& s = AttachSession(link, connect, &present);
  c.session = s.id;
  c.connected = true;
  Encode(Connack{present, ConnackCode::kAccepted}, &link->out);
  // Resume a persistent session: unacknowledged messages go again with DUP set,
  // released QoS 2 messages get their PUBREL again (MQTT-4.4.0-1).
  for (Outgoing& o : s.inflight) {
    if (o.qos == 2 && o.pubrec) {
      Encode(Pubrel{o.packet_id}, &link->out);
    } else {
      SendPublish(s, o, true);
    }
  }
  Pump(s);
  Refill(s);  // the window of a queue that waited on disk
  link->Flush();
  if (c.principal) Emit(c.principal->tenant, c.principal->user_id, c.principal->device_id, "online", nullptr);
  return true;
}

Broker::Session& Broker::AttachSession(Link* link, const Connect& connect, bool* present) {
  ConnState& c = *link->state;
  std::string key = c.mount() + connect.client_id;
  auto found = session_by_key_.find(key);
  if (found != session_by_key_.end()) {
    Session& old = *sessions_.at(found->second);
    if (old.link) {
      // Takeover (MQTT-3.1.4-2): the older connection is closed. It did not send
      // DISCONNECT, so its will is published.
      Link* old_link = old.link;
      ConnState& oc = *old_link->state;
      if (!oc.graceful) PublishWill(oc);
      oc.graceful = true;
      oc.will.reset();
      ReleasePublishers(old);  // the new connection holds them again if still behind
      old.link = nullptr;
      oc.session = 0;
      old_link->Close();
    }
    if (connect.clean_session || old.clean) {
      DestroySession(old);
    } else {
      *present = true;
      old.link = link;
      old.principal = c.principal;
      return old;
    }
  }
  auto s = std::make_unique<Session>();
  s->id = next_session_id_++;
  s->key = key;
  s->mount_len = static_cast<std::uint16_t>(c.mount().size());
  s->clean = connect.clean_session;
  s->principal = c.principal;
  s->link = link;
  Session& ref = *s;
  session_by_key_[ref.key] = s->id;
  sessions_[s->id] = std::move(s);
  m_sessions_->Set(static_cast<std::int64_t>(sessions_.size()));
  if (!ref.clean) PersistSession(ref);
  return ref;
}

void Broker::DetachSession(ConnState& c) {
  if (!c.session) return;
  auto it = sessions_.find(c.session);
  c.session = 0;
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  ReleasePublishers(s);  // offline, its queue is bounded by max_queued_messages instead
  s.link = nullptr;
  if (s.clean) {
    DestroySession(s);
  } else {
    Spill(s);  // an offline session holds no message in memory
  }
}

void Broker::DestroySession(Session& s) {
  ReleasePublishers(s);
  for (const auto& [filter, qos] : s.subs) trie_.Remove(filter, s.id);
  m_subscriptions_->Set(static_cast<std::int64_t>(trie_.size()));
  auto end_copy = [&](const Outgoing& o) {
    m_queued_->Add(-1);
    Drop("session_ended", o.msg);
  };
  for (const Outgoing& o : s.inflight) end_copy(o);
  for (const Outgoing& o : s.queue) end_copy(o);
  if (s.spilled) {
    m_queued_->Add(-static_cast<std::int64_t>(s.spilled));
    metrics_->GetCounter("herald_mqtt_dropped_total", "Messages dropped, by reason.",
                         {{"reason", "session_ended"}})
        .Inc(s.spilled);
    EraseSpilled(s);
  }
  if (!s.clean) ErasePersistedSession(s);
  session_by_key_.erase(s.key);
  sessions_.erase(s.id);  // destroys s
  m_sessions_->Set(static_cast<std::int64_t>(sessions_.size()));
}

std::uint16_t Broker::NextPacketId(Session& s) {
  // Skip ids still in flight; the window is far smaller than 65535.
  for (;;) {
    std::uint16_t id = s.next_packet_id++;
    if (s.next_packet_id == 0) s.next_packet_id = 1;
    if (id == 0) continue;
    bool used = false;
    for (const Outgoing& o : s.inflight) {
      if (o.packet_id == id) {
        used = true;
        break;
      }
    }
    if (!used) return id;
  }
}

}  // namespace herald::mqtt
