// Persistence of sessions, queued messages and retained messages.
//
// On-disk format (column families of the store; changing it needs a migration):
//   mqtt_sessions  key: session key (mount + client id)
//                  value: JSON {"client_id","mount","tenant","user_id","device_id",
//                                "subs":[[internal_filter, qos], ...]}
//   mqtt_messages  key: session key, 0x00, seq (8 bytes big-endian)
//                  value: qos u8 | flags u8 (bit 0: retained copy) |
//                         expires_at i64 LE | topic_len u16 LE | topic |
//                         message_id_len u8 | message_id | payload
//   mqtt_retained  key: internal topic   value: qos u8 | payload
// Only persistent sessions (clean session = 0) are stored.
#include <nlohmann/json.hpp>

#include "core/bytes.h"
#include "core/log.h"
#include "mqtt/broker.h"
#include "mqtt/broker_internal.h"

namespace herald::mqtt {
namespace {

std::string MessageKey(const std::string& session_key, std::uint64_t seq) {
  std::string k = session_key;
  k.push_back('\0');
  ByteWriter(&k).FixedBE(seq);
  return k;
}

std::string EncodeRecord(const Message& m, std::uint8_t qos) {
  std::string r;
  r.reserve(13 + m.topic.size() + m.message_id.size() + m.payload.size());
  ByteWriter w(&r);
  std::string_view mid = std::string_view(m.message_id).substr(0, 255);
  w.Byte(qos);
  w.Byte(m.from_retained ? 1 : 0);
  w.Fixed<std::int64_t>(m.expires_at);
  w.Fixed(static_cast<std::uint16_t>(m.topic.size()));
  w.Raw(m.topic);
  w.Byte(static_cast<std::uint8_t>(mid.size()));
  w.Raw(mid);
  w.Raw(m.payload);
  return r;
}

bool DecodeRecord(std::string_view bytes, Message* m, std::uint8_t* qos) {
  ByteReader r(bytes);
  std::uint8_t flags = 0, mid_len = 0;
  std::uint16_t topic_len = 0;
  std::string_view topic, mid;
  if (!r.Byte(qos) || !r.Byte(&flags) || !r.Fixed(&m->expires_at) || !r.Fixed(&topic_len) ||
      !r.Raw(topic_len, &topic) || !r.Byte(&mid_len) || !r.Raw(mid_len, &mid)) {
    return false;
  }
  m->from_retained = flags & 1;
  m->topic.assign(topic);
  m->message_id.assign(mid);
  m->payload.assign(r.Rest());
  m->qos = *qos;
  return *qos == 1 || *qos == 2;
}

}  // namespace

void Broker::Commit(store::WriteBatch batch, std::function<void(Status)> done) {
  if (batch.empty()) {
    done(Status::Ok());
    return;
  }
  auto post = opt_.post;
  opt_.db->WriteAsync(std::move(batch), [post, done = std::move(done)](Status st) mutable {
    if (!st.ok()) log::Error("mqtt store write failed", {{"error", st}});
    post([done = std::move(done), st] { done(st); });
  });
}

void Broker::PersistSession(const Session& s) {
  nlohmann::json subs = nlohmann::json::array();
  for (const auto& [filter, qos] : s.subs) subs.push_back({filter, qos});
  nlohmann::json j = {{"client_id", s.client_id()}, {"mount", s.mount()},
                      {"tenant", s.tenant()},       {"user_id", s.user_id()},
                      {"device_id", s.device_id()}, {"subs", subs}};
  store::WriteBatch b;
  b.Put(sessions_cf_, s.key, j.dump());
  Commit(std::move(b), [](Status) {});
}

void Broker::ErasePersistedSession(const Session& s) {
  store::WriteBatch b;
  b.Delete(sessions_cf_, s.key);
  auto erase = [&](const Outgoing& o) {
    if (o.seq) b.Delete(messages_cf_, MessageKey(s.key, o.seq));
  };
  for (const Outgoing& o : s.inflight) erase(o);
  for (const Outgoing& o : s.queue) erase(o);
  Commit(std::move(b), [](Status) {});
}

std::uint64_t Broker::PersistMessage(store::WriteBatch* batch, const Session& s, const Message& m,
                                     std::uint8_t qos) {
  std::uint64_t seq = next_seq_++;
  store::WriteBatch local;
  store::WriteBatch* b = batch ? batch : &local;
  b->Put(messages_cf_, MessageKey(s.key, seq), EncodeRecord(m, qos));
  if (!batch) Commit(std::move(local), [](Status) {});
  return seq;
}

void Broker::ErasePersistedMessage(const Session& s, std::uint64_t seq) {
  store::WriteBatch b;
  b.Delete(messages_cf_, MessageKey(s.key, seq));
  Commit(std::move(b), [](Status) {});
}

Status Broker::Recover() {
  Status bad;
  HERALD_RETURN_IF_ERROR(opt_.db->Scan(sessions_cf_, "", [&](std::string_view key, std::string_view v) {
    auto j = nlohmann::json::parse(v, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      bad = Status::Corruption("mqtt session record is not JSON");
      return false;
    }
    auto s = std::make_unique<Session>();
    s->id = next_session_id_++;
    s->key = std::string(key);
    s->mount_len = static_cast<std::uint16_t>(j.value("mount", "").size());
    if (!j.value("tenant", "").empty()) {
      auto p = std::make_shared<Principal>();
      p->tenant = j.value("tenant", "");
      p->user_id = j.value("user_id", "");
      p->device_id = j.value("device_id", "");
      p->mount = j.value("mount", "");
      s->principal = std::move(p);
    }
    s->clean = false;
    for (const auto& sub : j.value("subs", nlohmann::json::array())) {
      auto filter = sub[0].get<std::string>();
      auto qos = sub[1].get<std::uint8_t>();
      s->SetSub(filter, qos);
      trie_.Insert(filter, s->id, qos);
    }
    session_by_key_[s->key] = s->id;
    sessions_[s->id] = std::move(s);
    return true;
  }));
  HERALD_RETURN_IF_ERROR(bad);

  size_t queued = 0, orphans = 0;
  store::WriteBatch cleanup;
  HERALD_RETURN_IF_ERROR(opt_.db->Scan(messages_cf_, "", [&](std::string_view key, std::string_view v) {
    if (key.size() < 9) return true;
    std::string skey(key.substr(0, key.size() - 9));
    std::uint64_t seq = 0;
    ByteReader(key.substr(key.size() - 8)).FixedBE(&seq);
    next_seq_ = std::max(next_seq_, seq + 1);
    auto sid = session_by_key_.find(skey);
    auto m = std::make_shared<Message>();
    std::uint8_t qos = 0;
    if (sid == session_by_key_.end() || !DecodeRecord(v, m.get(), &qos)) {
      cleanup.Delete(messages_cf_, key);
      ++orphans;
      return true;
    }
    sessions_.at(sid->second)->queue.push_back(Outgoing{m, qos, 0, false, seq});
    ++queued;
    return true;
  }));
  HERALD_RETURN_IF_ERROR(opt_.db->Write(std::move(cleanup)));

  HERALD_RETURN_IF_ERROR(opt_.db->Scan(retained_cf_, "", [&](std::string_view key, std::string_view v) {
    if (v.empty()) return true;
    auto m = std::make_shared<Message>();
    m->topic = std::string(key);
    m->qos = static_cast<std::uint8_t>(v[0]);
    m->payload = std::string(v.substr(1));
    m->retain = true;
    retained_[m->topic] = m;
    return true;
  }));
  m_sessions_->Set(static_cast<std::int64_t>(sessions_.size()));
  m_subscriptions_->Set(static_cast<std::int64_t>(trie_.size()));
  m_queued_->Set(static_cast<std::int64_t>(queued));
  m_retained_->Set(static_cast<std::int64_t>(retained_.size()));
  log::Info("mqtt state recovered", {{"sessions", sessions_.size()},
                                     {"queued", queued},
                                     {"retained", retained_.size()},
                                     {"orphans", orphans}});
  return Status::Ok();
}

}  // namespace herald::mqtt
