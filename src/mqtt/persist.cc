// Persistence of sessions, queued messages and retained messages; the record
// formats are in persist_format.h.
#include "core/bytes.h"
#include "core/log.h"
#include "mqtt/broker.h"
#include "mqtt/broker_internal.h"
#include "mqtt/persist_format.h"

namespace herald::mqtt {
void Broker::Commit(store::WriteBatch batch, std::function<void(Status)> done, bool bounded) {
  if (batch.empty()) {
    done(Status::Ok());
    return;
  }
  auto post = opt_.post;
  ++commits_in_flight_;
  auto on_done = [this, post, done = std::move(done)](Status st) mutable {
    if (!st.ok()) log::Error("mqtt store write failed", {{"error", st}});
    post([this, done = std::move(done), st] {
      --commits_in_flight_;
      ++commits_done_;
      done(st);
      if (!refill_waiting_.empty()) {
        std::vector<SessionId> ids;
        ids.swap(refill_waiting_);
        for (SessionId id : ids) {
          auto it = sessions_.find(id);
          if (it == sessions_.end()) continue;
          it->second->refill_waits = false;
          Refill(*it->second);
        }
      }
    });
  };
  if (bounded) {
    opt_.db->WriteAsync(std::move(batch), std::move(on_done));
  } else {
    opt_.db->WriteAsyncAlways(std::move(batch), std::move(on_done));
  }
}

void Broker::PutSessionRecord(store::WriteBatch* b, const Session& s) {
  SessionRecord r{std::string(s.client_id()), std::string(s.mount()), std::string(s.tenant()),
                  std::string(s.user_id()), std::string(s.device_id()), s.subs, s.awaiting_rel};
  b->Put(sessions_cf_, s.key, EncodeSessionRecord(r));
}

void Broker::PersistInflight(store::WriteBatch* b, const Session& s, const Outgoing& o) {
  b->Put(messages_cf_, InflightKey(s.key, o.seq), EncodeInflightRecord(o.packet_id, o.pubrec));
}

void Broker::PersistSession(const Session& s, std::function<void(Status)> done) {
  store::WriteBatch b;
  PutSessionRecord(&b, s);
  Commit(std::move(b), done ? std::move(done) : [](Status) {});
}

void Broker::ErasePersistedSession(const Session& s) {
  store::WriteBatch b;
  b.Delete(sessions_cf_, s.key);
  auto erase = [&](const Outgoing& o) {
    if (!o.seq) return;
    b.Delete(messages_cf_, MessageKey(s.key, o.seq));
    b.Delete(messages_cf_, InflightKey(s.key, o.seq));
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
  b->Put(messages_cf_, MessageKey(s.key, seq), EncodeMessageRecord(m, qos));
  if (!batch) Commit(std::move(local), [](Status) {});
  return seq;
}

void Broker::ErasePersistedMessage(const Session& s, std::uint64_t seq) {
  store::WriteBatch b;
  b.Delete(messages_cf_, MessageKey(s.key, seq));
  b.Delete(messages_cf_, InflightKey(s.key, seq));
  Commit(std::move(b), [](Status) {});
}

Status Broker::Recover() {
  size_t bad_sessions = 0;
  HERALD_RETURN_IF_ERROR(opt_.db->Scan(sessions_cf_, "", [&](std::string_view key, std::string_view v) {
    auto r = DecodeSessionRecord(v);
    if (!r.ok()) {
      // Reported and skipped: one bad record must not keep every device out.
      ++bad_sessions;
      log::Error("mqtt session record skipped", {{"key", std::string(key)}, {"error", r.status()}});
      return true;
    }
    auto s = std::make_unique<Session>();
    s->id = next_session_id_++;
    s->key = std::string(key);
    s->mount_len = static_cast<std::uint16_t>(r->mount.size());
    if (!r->tenant.empty()) {
      auto p = std::make_shared<Principal>();
      p->tenant = r->tenant;
      p->user_id = r->user_id;
      p->device_id = r->device_id;
      p->mount = r->mount;
      s->principal = std::move(p);
    }
    s->clean = false;
    for (const auto& [filter, qos] : r->subs) {
      s->SetSub(filter, qos);
      trie_.Insert(filter, s->id, qos);
    }
    s->awaiting_rel = r->awaiting_rel;
    session_by_key_[s->key] = s->id;
    sessions_[s->id] = std::move(s);
    return true;
  }));
  if (bad_sessions) {
    metrics_->GetCounter("herald_recovery_bad_records_total",
                         "Stored records that could not be read at start-up and were skipped.",
                         {{"kind", "mqtt_session"}})
        .Inc(bad_sessions);
  }

  // Queued messages stay on disk: a session learns only how many it has and where
  // they start, and reads them in when its device connects (broker_spill.cc).
  size_t queued = 0, orphans = 0;
  store::WriteBatch cleanup;
  std::string last_key;  // a message's in-flight mark sorts right after it
  HERALD_RETURN_IF_ERROR(opt_.db->Scan(messages_cf_, "", [&](std::string_view key, std::string_view v) {
    if (!last_key.empty() && key.size() == last_key.size() + 1 && key.back() == '\x01' &&
        key.substr(0, last_key.size()) == last_key) {
      return true;  // read with its message on refill
    }
    last_key.clear();
    // <session key> 0x00 <seq: 8 bytes>; anything else (a mark whose message is
    // gone, a session that no longer exists, a record that does not decode) goes.
    std::string skey;
    std::uint64_t seq = 0;
    if (key.size() >= 9 && key[key.size() - 9] == '\0') {
      skey.assign(key.substr(0, key.size() - 9));
      ByteReader(key.substr(key.size() - 8)).FixedBE(&seq);
    }
    auto sid = skey.empty() ? session_by_key_.end() : session_by_key_.find(skey);
    // Checked, not copied: the message stays on disk until its device connects.
    if (sid == session_by_key_.end() || !ValidMessageRecord(v)) {
      cleanup.Delete(messages_cf_, key);
      ++orphans;
      return true;
    }
    next_seq_ = std::max(next_seq_, seq + 1);
    Session& sess = *sessions_.at(sid->second);
    if (!sess.spilled) sess.spill_seq = seq;
    ++sess.spilled;
    last_key.assign(key);
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
