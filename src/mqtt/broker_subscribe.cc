// SUBSCRIBE, UNSUBSCRIBE, retained messages and the device ACL.
#include "mqtt/broker.h"
#include "mqtt/broker_internal.h"
#include "mqtt/topic.h"

namespace herald::mqtt {

bool Broker::AclAllowsSubscribe(const ConnState& c, std::string_view filter) const {
  if (!c.principal) return true;  // open mode
  // u/<user> and anything below it, with no wildcard above the user level.
  const std::string base = "u/" + c.principal->user_id;
  if (filter == base) return true;
  return filter.size() > base.size() + 1 && filter.substr(0, base.size()) == base &&
         filter[base.size()] == '/';
}

bool Broker::AclAllowsPublish(const ConnState& c, std::string_view topic) const {
  if (!c.principal) return true;
  return topic == "r/" + c.principal->user_id;
}

bool Broker::HandleSubscribe(Link* link, const Subscribe& sub) {
  ConnState& c = *link->state;
  Session& s = *sessions_.at(c.session);
  Suback ack{sub.packet_id, {}};
  std::vector<std::pair<std::string, std::uint8_t>> granted;
  for (const Subscription& f : sub.subscriptions) {
    if (!AclAllowsSubscribe(c, f.filter)) {
      m_acl_denied_sub_->Inc();
      ack.codes.push_back(SubackCode::kFailure);
      continue;
    }
    auto qos = static_cast<std::uint8_t>(f.qos);
    std::string internal = c.mount() + f.filter;
    trie_.Insert(internal, s.id, qos);
    s.SetSub(internal, qos);
    ack.codes.push_back(static_cast<SubackCode>(qos));
    granted.emplace_back(std::move(internal), qos);
  }
  m_subscriptions_->Set(static_cast<std::int64_t>(trie_.size()));
  auto answer = [this, conn_id = c.id, ack = std::move(ack),
                 granted = std::move(granted)](Status st) {
    Link* l = LinkById(conn_id);
    if (!l) return;
    if (!st.ok()) {
      l->Close();  // not stored: no SUBACK; the client subscribes again
      return;
    }
    auto sess = sessions_.find(l->state->session);
    if (sess == sessions_.end()) return;  // taken over meanwhile: this link is closing
    Encode(ack, &l->out);
    // Retained messages follow the SUBACK (MQTT-3.3.1-6).
    for (const auto& [filter, qos] : granted) SendRetained(*sess->second, filter, qos);
    l->Flush();
    Resume(*l->state, kPauseStore);
  };
  if (s.clean) {
    answer(Status::Ok());
  } else {
    // A persistent session's subscriptions are stored before the SUBACK, and the
    // connection's next packets wait for it, so they are answered in order.
    Pause(c, kPauseStore);
    PersistSession(s, std::move(answer));
  }
  return true;
}

bool Broker::HandleUnsubscribe(Link* link, const Unsubscribe& unsub) {
  ConnState& c = *link->state;
  Session& s = *sessions_.at(c.session);
  for (const std::string& f : unsub.filters) {
    std::string internal = c.mount() + f;
    if (s.EraseSub(internal)) trie_.Remove(internal, s.id);
  }
  m_subscriptions_->Set(static_cast<std::int64_t>(trie_.size()));
  auto answer = [this, conn_id = c.id, id = unsub.packet_id](Status st) {
    Link* l = LinkById(conn_id);
    if (!l) return;
    if (!st.ok()) return l->Close();
    Encode(Unsuback{id}, &l->out);
    l->Flush();
    Resume(*l->state, kPauseStore);
  };
  if (s.clean) {
    answer(Status::Ok());
  } else {
    Pause(c, kPauseStore);
    PersistSession(s, std::move(answer));
  }
  return true;
}

void Broker::SetRetained(const MessagePtr& msg, store::WriteBatch* batch) {
  store::WriteBatch local;
  store::WriteBatch& b = batch ? *batch : local;
  if (msg->payload.empty()) {
    // An empty retained message deletes the topic's retained message (MQTT-3.3.1-10).
    retained_.erase(msg->topic);
    b.Delete(retained_cf_, msg->topic);
  } else {
    auto copy = std::make_shared<Message>(*msg);
    copy->tracker.reset();
    copy->expires_at = 0;
    retained_[msg->topic] = copy;
    std::string record;
    record.push_back(static_cast<char>(msg->qos));
    record.append(msg->payload);
    b.Put(retained_cf_, msg->topic, record);
  }
  m_retained_->Set(static_cast<std::int64_t>(retained_.size()));
  if (!batch) Commit(std::move(local), [](Status) {});
}

void Broker::SendRetained(Session& s, const std::string& internal_filter, std::uint8_t qos) {
  if (retained_.empty()) return;
  store::WriteBatch batch;
  for (const auto& [topic, msg] : retained_) {
    if (std::string_view(topic).substr(0, s.mount_len) != s.mount()) continue;  // another tenant
    if (!TopicMatches(internal_filter, topic)) continue;
    std::uint8_t q = std::min(qos, msg->qos);
    if (q == 0) {
      Publish p;
      p.retain = true;  // sent because of a new subscription (MQTT-3.3.1-8)
      p.topic = std::string_view(topic).substr(s.mount_len);
      p.payload = msg->payload;
      Encode(p, &s.link->out);
      m_out_[0]->Inc();
      continue;
    }
    // QoS 1/2 retained copies travel through the window like any other message,
    // marked as retained.
    auto copy = std::make_shared<Message>(*msg);
    copy->from_retained = true;
    Enqueue(s, copy, q, &batch);
  }
  Commit(std::move(batch), [](Status) {});
}

}  // namespace herald::mqtt
