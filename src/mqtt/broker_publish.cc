// PUBLISH in both directions: routing, the QoS 1/2 handshakes, the in-flight
// window, wills and receipts.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "mqtt/broker.h"
#include "mqtt/broker_internal.h"

namespace herald::mqtt {

bool Broker::HandlePublish(Link* link, const Publish& p) {
  ConnState& c = *link->state;
  const int q = static_cast<int>(p.qos);
  m_in_[q]->Inc();
  if (!AclAllowsPublish(c, p.topic)) {
    m_acl_denied_pub_->Inc();
    return false;  // a refused publish closes the connection
  }
  Session& s = *sessions_.at(c.session);
  if (p.qos == QoS::kExactlyOnce && s.AwaitingRel(p.packet_id)) {
    // A retransmission of a message already taken: acknowledge, do not route again.
    AckPublisher(c, p.packet_id, true, true);
    return true;
  }
  if (c.principal) {
    // Devices publish only receipts; they are events, not messages to route.
    store::WriteBatch batch;
    if (p.qos == QoS::kExactlyOnce) {
      s.AddAwaitingRel(p.packet_id);
      // Stored before the PUBREC, so a resend after a crash is not a second receipt.
      if (!s.clean) PutSessionRecord(&batch, s);
    }
    HandleReceipt(c, p, std::move(batch));
    return true;
  }
  auto msg = std::make_shared<Message>();
  msg->topic = c.mount();
  msg->topic.append(p.topic);
  msg->payload.assign(p.payload);
  msg->qos = static_cast<std::uint8_t>(p.qos);
  msg->retain = p.retain;
  msg->expires_at = opt_.clock->Now() +
                    static_cast<Micros>(opt_.config.message_ttl_s) * kMicrosPerSecond;
  store::WriteBatch batch;
  // A QoS 1/2 publisher's acknowledgement also waits for its retained record.
  if (p.retain) SetRetained(msg, p.qos == QoS::kAtMostOnce ? nullptr : &batch);
  // Where this turn's output to the publisher stood before routing: a copy routed
  // back to the publisher itself lands after it.
  const size_t before_route = link->out.size();
  publishing_conn_ = c.id;
  Route(msg, &batch);
  publishing_conn_ = 0;
  if (p.qos == QoS::kAtMostOnce) return true;
  if (p.qos == QoS::kExactlyOnce) {
    s.AddAwaitingRel(p.packet_id);
    // A persistent session remembers the id until PUBREL, across restarts, so a
    // resent PUBLISH after a crash is not routed twice. Stored before the PUBREC.
    if (!s.clean) PutSessionRecord(&batch, s);
  }
  const bool qos2 = p.qos == QoS::kExactlyOnce;
  if (batch.empty()) {
    if (c.acks.empty()) {
      // The acknowledgement goes ahead of the copy routed back to a publisher that
      // subscribes to its own topic. In the other order the client answers the copy
      // first and its next PUBLISH then waits for that answer's TCP ACK (Nagle and
      // delayed ACK: about 40 ms a message).
      std::string ack;
      if (qos2) {
        Encode(Pubrec{p.packet_id}, &ack);
      } else {
        Encode(Puback{p.packet_id}, &ack);
      }
      link->out.insert(std::min(before_route, link->out.size()), ack);
      link->Flush();
    } else {
      AckPublisher(c, p.packet_id, qos2, true);
    }
    return true;
  }
  // Acknowledge only once the copies for persistent sessions are durable.
  AckPublisher(c, p.packet_id, qos2, false);
  std::uint64_t conn_id = c.id;
  std::uint16_t packet_id = p.packet_id;
  Commit(
      std::move(batch), [this, conn_id, packet_id](Status st) { AckReady(conn_id, packet_id, st.ok()); },
      /*bounded=*/true);
  return true;
}

namespace {

void EncodeAck(std::uint8_t kind, std::uint16_t id, std::string* out) {
  switch (kind) {
    case PendingAck::kPubrec: return Encode(Pubrec{id}, out);
    case PendingAck::kPubcomp: return Encode(Pubcomp{id}, out);
    default: return Encode(Puback{id}, out);
  }
}

}  // namespace

void Broker::AckPublisher(ConnState& c, std::uint16_t id, bool qos2, bool ready) {
  AckPublisher(c, id, qos2 ? PendingAck::kPubrec : PendingAck::kPuback, ready);
}

void Broker::AckPublisher(ConnState& c, std::uint16_t id, std::uint8_t kind, bool ready) {
  if (ready && c.acks.empty()) {
    EncodeAck(kind, id, &c.link->out);
    c.link->Flush();
    return;
  }
  c.acks.push_back({id, static_cast<PendingAck::Kind>(kind), ready});
  FlushAcks(c);
}

void Broker::FlushAcks(ConnState& c) {
  bool sent = false;
  while (!c.acks.empty() && c.acks.front().ready) {
    const PendingAck& a = c.acks.front();
    EncodeAck(a.kind, a.packet_id, &c.link->out);
    c.acks.pop_front();
    sent = true;
  }
  if (sent) c.link->Flush();
}

Link* Broker::LinkById(std::uint64_t conn_id) const {
  auto it = conn_states_.find(conn_id);
  return it == conn_states_.end() ? nullptr : it->second->link;
}

size_t Broker::Route(const MessagePtr& msg, store::WriteBatch* batch) {
  // One copy per session, at the highest QoS any of its matching subscriptions
  // granted (MQTT-3.3.5-1), capped by the message's QoS.
  // The vector is reused across calls, so routing allocates nothing in the common
  // case; taking it out of the member keeps a reentrant call (an outcome callback
  // that delivers again) correct.
  std::vector<std::pair<SessionId, std::uint8_t>> targets;
  targets.swap(route_targets_);
  targets.clear();
  trie_.Match(msg->topic, [&](SessionId s, std::uint8_t q) { targets.emplace_back(s, q); });
  if (targets.size() > 1) {
    std::sort(targets.begin(), targets.end());
    size_t w = 0;
    for (size_t r = 0; r < targets.size(); ++r) {
      if (w > 0 && targets[w - 1].first == targets[r].first) {
        targets[w - 1].second = std::max(targets[w - 1].second, targets[r].second);
      } else {
        targets[w++] = targets[r];
      }
    }
    targets.resize(w);
  }
  for (const auto& [sid, granted] : targets) {
    Enqueue(*sessions_.at(sid), msg, std::min(granted, msg->qos), batch);
  }
  size_t reached = targets.size();
  route_targets_.swap(targets);
  return reached;
}

void Broker::Enqueue(Session& s, const MessagePtr& msg, std::uint8_t qos, store::WriteBatch* batch) {
  if (qos == 0) {
    if (!s.link) {
      Drop("offline_qos0", nullptr);
      return;
    }
    if (s.link->pending_output() > opt_.config.max_output_bytes) {
      Drop("slow_subscriber_qos0", nullptr);  // QoS 0 is the only kind shed under pressure
      return;
    }
    Outgoing o{msg, 0, 0, false, 0};
    SendPublish(s, o, false);
    s.link->Flush();
    return;
  }
  if (s.queued() >= opt_.config.max_queued_messages) {
    Drop("queue_full", nullptr);  // Deliver() sees no pending copy and reports refused
    return;
  }
  Outgoing o{msg, qos, 0, false, 0};
  if (!s.clean) o.seq = PersistMessage(batch, s, *msg, qos);
  if (msg->tracker) {
    msg->tracker->pending++;
    if (s.link) msg->tracker->online++;
  }
  m_queued_->Add(1);
  if (!s.clean && (!s.link || s.spilled ||
                   s.queue.size() + s.inflight.size() >= opt_.config.session_window)) {
    // On disk only, behind what is already there; read in as the window drains.
    if (!s.spilled) s.spill_seq = o.seq;
    ++s.spilled;
    Refill(s);
  } else {
    s.queue.push_back(std::move(o));
    Pump(s);
  }
  // A connected subscriber that falls behind slows its publishers down instead of
  // dropping what they were promised (PUBACK): stop reading the publisher until
  // the queue drains. Offline sessions are bounded by max_queued_messages.
  // A client publishing to its own subscription is never held by it: its queue
  // drains only while its input (its PUBACKs) is read.
  if (s.link && publishing_conn_ && s.queue.size() + s.spilled >= opt_.config.flow_high_water &&
      s.link->state->id != publishing_conn_ &&
      std::find(s.blocked.begin(), s.blocked.end(), publishing_conn_) == s.blocked.end()) {
    if (Link* pub = LinkById(publishing_conn_)) {
      const bool first = s.blocked.empty();
      s.blocked.push_back(publishing_conn_);
      ConnState& c = *pub->state;
      ++c.flow_blocks;
      SyncFlow(c);
      // Backed up now: the subscriber's own input must keep flowing.
      if (first) SyncFlow(*s.link->state);
    }
  }
}

void Broker::Pump(Session& s) {
  if (!s.link) return;
  bool sent = false;
  Micros now = 0;
  store::WriteBatch marks;
  // QoS 2 to a persistent session goes out only once its mark (the packet id) is
  // durable: after a crash it is resent with that id and DUP, which the client
  // recognises, rather than under a new id as a second message.
  std::vector<std::uint16_t> held;
  while (!s.queue.empty() && s.inflight.size() < opt_.config.max_inflight) {
    Outgoing o = std::move(s.queue.front());
    s.queue.pop_front();
    if (o.msg->expires_at) {
      if (!now) now = opt_.clock->Now();
      if (o.msg->expires_at <= now) {
        if (o.seq) ErasePersistedMessage(s, o.seq);
        m_queued_->Add(-1);
        // A push read back from disk has no tracker any more: report it here.
        if (!o.msg->tracker && !o.msg->message_id.empty()) {
          Emit(s.tenant(), s.user_id(), "", "expired", o.msg.get());
        }
        Drop("expired", o.msg);
        continue;
      }
    }
    o.packet_id = NextPacketId(s);
    if (o.seq) PersistInflight(&marks, s, o);
    if (o.seq && o.qos == 2) {
      held.push_back(o.packet_id);
    } else {
      SendPublish(s, o, false);
      sent = true;
    }
    s.inflight.push_back(std::move(o));
  }
  if (sent) s.link->Flush();
  if (!marks.empty()) {
    std::function<void(Status)> done = [](Status) {};
    if (!held.empty()) {
      done = [this, sid = s.id, conn_id = s.link->state->id, held = std::move(held)](Status st) {
        auto it = sessions_.find(sid);
        if (it == sessions_.end()) return;
        Session& s = *it->second;
        // Reconnected meanwhile: the refill sent them again from their marks.
        if (!s.link || s.link->state->id != conn_id) return;
        if (!st.ok()) return s.link->Close();  // not durable: the session reads them again
        for (std::uint16_t id : held) {
          for (Outgoing& o : s.inflight) {
            if (o.packet_id == id && o.qos == 2 && !o.pubrec) SendPublish(s, o, false);
          }
        }
        s.link->Flush();
      };
    }
    Commit(std::move(marks), std::move(done));
  }
  if (!s.blocked.empty() &&
      s.queue.size() + s.spilled < std::max<std::uint64_t>(opt_.config.flow_high_water / 2, 1)) {
    ReleasePublishers(s);
  }
  if (s.spilled && s.queue.size() < opt_.config.session_window / 2) Refill(s);
}

void Broker::SendPublish(Session& s, Outgoing& o, bool dup) {
  Publish p;
  p.dup = dup && o.qos > 0;
  p.qos = static_cast<QoS>(o.qos);
  // Normal delivery never carries RETAIN (MQTT-3.3.1-9); a retained copy sent for a
  // new subscription does (MQTT-3.3.1-8).
  p.retain = o.msg->from_retained;
  p.packet_id = o.packet_id;
  p.topic = std::string_view(o.msg->topic).substr(s.mount_len);
  p.payload = o.msg->payload;
  Encode(p, &s.link->out);
  m_out_[o.qos]->Inc();
}

bool Broker::HandlePuback(Link* link, std::uint16_t id) {
  Complete(*sessions_.at(link->state->session), id, false);
  return true;
}

bool Broker::HandlePubrec(Link* link, std::uint16_t id) {
  Session& s = *sessions_.at(link->state->session);
  for (Outgoing& o : s.inflight) {
    if (o.packet_id == id && o.qos == 2) {
      o.pubrec = true;
      if (o.seq) {
        // After a restart PUBREL goes again instead of the PUBLISH. PUBREL lets the
        // client forget the id, so it waits for that mark: a PUBLISH resent after it
        // would be a new message to the client.
        store::WriteBatch b;
        PersistInflight(&b, s, o);
        Commit(std::move(b), [this, conn_id = link->state->id, id](Status st) {
          Link* l = LinkById(conn_id);
          if (!l) return;
          if (!st.ok()) return l->Close();
          Encode(Pubrel{id}, &l->out);
          l->Flush();
        });
        return true;
      }
      break;
    }
  }
  Encode(Pubrel{id}, &link->out);
  link->Flush();
  return true;
}

bool Broker::HandlePubrel(Link* link, std::uint16_t id) {
  ConnState& c = *link->state;
  Session& s = *sessions_.at(c.session);
  bool known = s.AwaitingRel(id);
  s.EraseAwaitingRel(id);
  if (s.clean || !known) {
    AckPublisher(c, id, PendingAck::kPubcomp, true);
    return true;
  }
  // PUBCOMP frees the id for the client's next QoS 2 message: forget it durably first.
  AckPublisher(c, id, PendingAck::kPubcomp, false);
  store::WriteBatch b;
  PutSessionRecord(&b, s);
  Commit(std::move(b), [this, conn_id = c.id, id](Status st) { AckReady(conn_id, id, st.ok()); });
  return true;
}

bool Broker::HandlePubcomp(Link* link, std::uint16_t id) {
  Complete(*sessions_.at(link->state->session), id, true);
  return true;
}

void Broker::Complete(Session& s, std::uint16_t packet_id, bool qos2) {
  // Acknowledgements usually arrive in order: look at the front first.
  auto it = s.inflight.begin();
  for (; it != s.inflight.end(); ++it) {
    if (it->packet_id == packet_id && (it->qos == 2) == qos2) break;
  }
  if (it == s.inflight.end()) return;  // unknown id: ignore, as the spec allows
  if (it->seq) ErasePersistedMessage(s, it->seq);
  if (const auto& t = it->msg->tracker) {
    t->pending--;
    if (!t->resolved) {
      m_delivery_seconds_->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t->started).count());
      t->Resolve(DeliveryOutcome::kDelivered);
    }
  }
  if (!it->msg->message_id.empty()) {
    Emit(s.tenant(), s.user_id(), s.device_id(), "delivered", it->msg.get());
  }
  s.inflight.erase(it);
  m_queued_->Add(-1);
  Pump(s);
}

void Broker::PublishWill(ConnState& c) {
  if (!c.will) return;
  Will w = std::move(*c.will);
  c.will.reset();
  if (!AclAllowsPublish(c, w.topic) || c.principal) return;  // devices have no wills to route
  auto msg = std::make_shared<Message>();
  msg->topic = c.mount() + w.topic;
  msg->payload = std::move(w.payload);
  msg->qos = static_cast<std::uint8_t>(w.qos);
  msg->retain = w.retain;
  msg->expires_at = opt_.clock->Now() +
                    static_cast<Micros>(opt_.config.message_ttl_s) * kMicrosPerSecond;
  if (msg->retain) SetRetained(msg);
  store::WriteBatch batch;
  Route(msg, &batch);
  Commit(std::move(batch), [](Status) {});
}

void Broker::HandleReceipt(ConnState& c, const Publish& p, store::WriteBatch batch) {
  static const char* kTypes[] = {"opened", "clicked", "dismissed", "not_interested", "complaint",
                                 "converted"};
  const bool acked = p.qos != QoS::kAtMostOnce, qos2 = p.qos == QoS::kExactlyOnce;
  auto j = nlohmann::json::parse(p.payload, nullptr, false);
  const char* type = nullptr;
  if (j.is_object() && j.contains("message_id") && j["message_id"].is_string() &&
      j.contains("type") && j["type"].is_string()) {
    std::string t = j["type"].get<std::string>();
    for (const char* known : kTypes) {
      if (t == known) type = known;
    }
  }
  if (!type) {
    m_bad_receipts_->Inc();  // nothing to store but the QoS 2 state: acknowledged then
    if (acked) {
      AckPublisher(c, p.packet_id, qos2, batch.empty());
      if (!batch.empty()) {
        Commit(std::move(batch), [this, conn_id = c.id, id = p.packet_id](Status st) {
          AckReady(conn_id, id, st.ok());
        });
      }
    }
    return;
  }
  m_receipts_->Inc();
  Message receipt;
  receipt.message_id = j["message_id"].get<std::string>();
  std::string article;
  if (j.contains("article_id") && j["article_id"].is_string() && j["article_id"].get_ref<const std::string&>().size() <= 128) {
    article = j["article_id"].get<std::string>();
  }
  std::function<void(Status)> durable;
  if (acked) {
    // The PUBACK waits until the receipt is in the event log (and the QoS 2 state in
    // the store), in PUBLISH order.
    AckPublisher(c, p.packet_id, qos2, false);
    struct Join {
      int left = 1;
      bool ok = true;
    };
    auto join = std::make_shared<Join>();
    auto arrive = [this, join, conn_id = c.id, id = p.packet_id](bool ok) {
      join->ok = join->ok && ok;
      if (--join->left == 0) AckReady(conn_id, id, join->ok);
    };
    if (!batch.empty()) {
      join->left = 2;
      Commit(std::move(batch), [arrive](Status st) mutable { arrive(st.ok()); });
    }
    durable = [this, arrive](Status s) mutable {
      if (s.code() == Code::kInvalidArgument) {
        // Not storable (an id that is not an id): acknowledged and counted, so the
        // device does not send it again forever.
        m_bad_receipts_->Inc();
        return arrive(true);
      }
      arrive(s.ok());
    };
  }
  bool room = Emit(c.principal->tenant, c.principal->user_id, c.principal->device_id, type,
                   &receipt, std::move(durable), article);
  if (room) return;
  // The sink is backed up: read no more from this device until it drains.
  Pause(c, kPauseSink);
  sink_paused_.push_back(c.id);
  if (!sink_wait_armed_) {
    sink_wait_armed_ = true;
    opt_.events->NotifyWhenDrained([post = opt_.post, this] { post([this] { OnSinkDrained(); }); });
  }
}

}  // namespace herald::mqtt
