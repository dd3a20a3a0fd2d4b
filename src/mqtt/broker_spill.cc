// Queues that live on disk. A push engine's sessions are mostly offline, and
// each may hold days of messages: a persistent session keeps its queue in the
// store, and in memory only a window of it while the device is connected
// (mqtt.session_window). The window is refilled off the loop, in seq order,
// as the device acknowledges.
#include "core/bytes.h"
#include "core/log.h"
#include "mqtt/broker.h"
#include "mqtt/broker_internal.h"
#include "mqtt/persist_format.h"

namespace herald::mqtt {

void Broker::Spill(Session& s) {
  if (s.clean) return;
  s.refill_waits = false;  // the next connection reads afresh
  // Everything in memory is already in the store (with its in-flight mark when it
  // was sent): drop the copies, remember where the disk part starts.
  std::uint64_t first = 0;
  size_t n = 0;
  auto take = [&](const Outgoing& o) {
    if (!o.seq) return;
    if (!first || o.seq < first) first = o.seq;
    ++n;
  };
  for (const Outgoing& o : s.inflight) take(o);
  for (const Outgoing& o : s.queue) take(o);
  if (!n) return;
  s.inflight.clear();
  s.queue = Fifo<Outgoing>();
  if (!s.spilled || first < s.spill_seq) s.spill_seq = first;
  s.spilled += n;
}

struct Broker::RefillResult {
  std::uint64_t from = 0;        // the spill_seq the read started at
  std::uint64_t commits = 0;     // commits_done_ when it started
  std::vector<Outgoing> loaded;  // in seq order
  size_t bad = 0;                // unreadable records passed over
  bool complete = false;         // read to the end of the session's messages
  bool failed = false;
};

void Broker::Refill(Session& s) {
  if (s.clean || !s.spilled || s.refilling || s.refill_waits || s.expiring || !s.link) return;
  size_t room = opt_.config.session_window > s.queue.size() + s.inflight.size()
                    ? opt_.config.session_window - s.queue.size() - s.inflight.size()
                    : 0;
  if (!room) return;
  s.refilling = true;
  RefillResult r;
  r.from = s.spill_seq;
  r.commits = commits_done_;
  auto load = [this, sid = s.id, key = s.key, room, db = opt_.db, cf = messages_cf_,
               post = opt_.post, r = std::move(r)]() mutable {
    // Off the loop: read up to `room` messages (and their in-flight marks) from `from`.
    std::string prefix = key;
    prefix.push_back('\0');
    std::string start = MessageKey(key, r.from);
    bool full = false;
    std::uint64_t last_seq = 0;
    auto seq_of = [&](std::string_view k) {
      std::uint64_t seq = 0;
      ByteReader(k.substr(prefix.size(), 8)).FixedBE(&seq);
      return seq;
    };
    Status st = db->ScanFrom(cf, prefix, start, [&](std::string_view k, std::string_view v) {
      if (k.size() == prefix.size() + 9 && k.back() == '\x01') {
        // An in-flight mark sorts right after its message.
        bool pubrec = false;
        if (!r.loaded.empty() && seq_of(k) == last_seq &&
            DecodeInflightRecord(v, &r.loaded.back().packet_id, &pubrec)) {
          r.loaded.back().pubrec = pubrec && r.loaded.back().qos == 2;
        }
        return true;
      }
      if (k.size() != prefix.size() + 8) return true;
      if (full) return false;  // one past the window: stop after its mark
      std::uint64_t seq = seq_of(k);
      auto m = std::make_shared<Message>();
      std::uint8_t qos = 0;
      if (!DecodeMessageRecord(v, m.get(), &qos)) {
        ++r.bad;  // skipped at recovery too
        return true;
      }
      r.loaded.push_back(Outgoing{std::move(m), qos, 0, false, seq});
      last_seq = seq;
      full = r.loaded.size() >= room;
      return true;
    });
    if (!st.ok()) log::Error("mqtt queue read failed", {{"error", st}});
    r.failed = !st.ok();
    r.complete = st.ok() && !full;
    post([this, sid, r = std::move(r)]() mutable { OnRefilled(sid, std::move(r)); });
  };
  if (opt_.background) {
    opt_.background(std::move(load));
  } else {
    load();
  }
}

void Broker::OnRefilled(SessionId sid, RefillResult r) {
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return;  // gone meanwhile
  Session& s = *it->second;
  s.refilling = false;
  if (s.spill_seq != r.from || !s.spilled || !s.link) {
    // Spilled again or offline meanwhile: this read is stale.
    if (!s.link) return Spill(s);  // offline: keep nothing
    return Refill(s);              // read again from where the disk part starts now
  }
  size_t n = std::min<size_t>(r.loaded.size(), s.spilled);
  for (size_t i = 0; i < n; ++i) {
    Outgoing& o = r.loaded[i];
    if (o.packet_id) {
      // In flight when the session was last connected: again, as a duplicate.
      if (o.qos == 2 && o.pubrec) {
        Encode(Pubrel{o.packet_id}, &s.link->out);
      } else {
        SendPublish(s, o, true);
      }
      s.inflight.push_back(std::move(o));
    } else {
      s.queue.push_back(std::move(o));
    }
  }
  s.spilled -= n;
  if (n) s.spill_seq = r.loaded[n - 1].seq + 1;
  // Records that could not be read were counted but will never be delivered.
  size_t bad = std::min<size_t>(r.bad, s.spilled);
  if (bad) {
    s.spilled -= bad;
    m_queued_->Add(-static_cast<std::int64_t>(bad));
    log::Error("mqtt queued messages unreadable", {{"session", s.key}, {"count", bad}});
  }
  if (r.failed && s.spilled) {
    // The read failed (logged): try again after the next commit.
    s.refill_waits = true;
    refill_waiting_.push_back(s.id);
  } else if (r.complete && s.spilled) {
    // Fewer on disk than counted. Messages whose commit is still under way (or that
    // finished while the read ran) are not visible yet: read again once they are.
    if (commits_in_flight_ > 0) {
      s.refill_waits = true;
      refill_waiting_.push_back(s.id);
    } else if (commits_done_ != r.commits) {
      if (n) s.link->Flush();
      Pump(s);
      return Refill(s);
    } else {
      // Nothing left to land: the writes of the rest failed.
      log::Error("mqtt queued messages missing from the store",
                 {{"session", s.key}, {"count", s.spilled}});
      m_queued_->Add(-static_cast<std::int64_t>(s.spilled));
      s.spilled = 0;
    }
  }
  if (!s.spilled) s.spill_seq = 0;
  if (n) s.link->Flush();
  Pump(s);
}

void Broker::EraseSpilled(const Session& s) {
  if (s.clean || !s.spilled) return;
  // Up to the seq in use now: a new session under the same key gets later ones.
  auto erase = [db = opt_.db, cf = messages_cf_, key = s.key, from = s.spill_seq, until = next_seq_] {
    std::string prefix = key;
    prefix.push_back('\0');
    store::WriteBatch b;
    Status st = db->ScanFrom(cf, prefix, MessageKey(key, from), [&](std::string_view k, std::string_view) {
      std::uint64_t seq = 0;
      if (k.size() < prefix.size() + 8) return true;
      ByteReader(k.substr(prefix.size(), 8)).FixedBE(&seq);
      if (seq >= until) return false;
      b.Delete(cf, k);
      if (b.size() >= 4096) {
        db->WriteAsyncAlways(std::move(b), [](Status) {});
        b = store::WriteBatch();
      }
      return true;
    });
    if (!st.ok()) log::Error("mqtt queue cleanup failed", {{"error", st}});
    if (!b.empty()) db->WriteAsyncAlways(std::move(b), [](Status) {});
  };
  if (opt_.background) {
    opt_.background(std::move(erase));
  } else {
    erase();
  }
}

struct Broker::ExpiredOnDisk {
  std::string session_key;
  std::uint64_t seq = 0;
  SessionId session = 0;
  MessagePtr msg;
};

void Broker::StartExpiryPass() {
  if (expiry_running_ || !opt_.background) return;
  expiry_running_ = true;
  constexpr size_t kMaxPerPass = 65536;  // the rest waits for the next pass
  auto find = [this, db = opt_.db, cf = messages_cf_, now = opt_.clock->Now(), post = opt_.post] {
    std::vector<ExpiredOnDisk> found;
    Status st = db->Scan(cf, "", [&](std::string_view k, std::string_view v) {
      if (k.size() < 9 || k[k.size() - 9] != '\0') return true;  // an in-flight mark
      auto m = std::make_shared<Message>();
      std::uint8_t qos = 0;
      if (!DecodeMessageRecord(v, m.get(), &qos) || !m->expires_at || m->expires_at > now) return true;
      ExpiredOnDisk e;
      e.session_key.assign(k.substr(0, k.size() - 9));
      ByteReader(k.substr(k.size() - 8)).FixedBE(&e.seq);
      e.msg = std::move(m);
      found.push_back(std::move(e));
      return found.size() < kMaxPerPass;
    });
    if (!st.ok()) log::Error("mqtt expiry pass failed", {{"error", st}});
    post([this, found = std::move(found)]() mutable { OnExpiryFound(std::move(found)); });
  };
  opt_.background(std::move(find));
}

void Broker::OnExpiryFound(std::vector<ExpiredOnDisk> found) {
  // Only messages of offline sessions, still in their on-disk tail: a connected
  // session drops its expired messages as it reads them.
  std::vector<ExpiredOnDisk> take;
  for (ExpiredOnDisk& e : found) {
    auto k = session_by_key_.find(e.session_key);
    if (k == session_by_key_.end()) continue;
    Session& s = *sessions_.at(k->second);
    if (s.clean || s.link || s.refilling || !s.spilled || e.seq < s.spill_seq) continue;
    s.expiring = true;
    e.session = s.id;
    take.push_back(std::move(e));
  }
  if (take.empty()) {
    expiry_running_ = false;
    return;
  }
  auto erase = [this, db = opt_.db, cf = messages_cf_, post = opt_.post, take = std::move(take)]() mutable {
    store::WriteBatch b;
    for (const ExpiredOnDisk& e : take) {
      b.Delete(cf, MessageKey(e.session_key, e.seq));
      b.Delete(cf, InflightKey(e.session_key, e.seq));
    }
    // Waits for the commit, so no later read of the session can still see them.
    Status st = db->Write(std::move(b));
    post([this, take = std::move(take), st]() mutable { OnExpiryErased(std::move(take), st); });
  };
  opt_.background(std::move(erase));
}

void Broker::OnExpiryErased(std::vector<ExpiredOnDisk> erased, Status st) {
  expiry_running_ = false;
  if (!st.ok()) log::Error("mqtt expired messages not erased", {{"error", st}});
  std::vector<SessionId> touched;
  for (const ExpiredOnDisk& e : erased) {
    auto it = sessions_.find(e.session);
    if (it == sessions_.end()) continue;  // ended meanwhile: its messages went with it
    Session& s = *it->second;
    if (s.expiring) {
      s.expiring = false;
      touched.push_back(s.id);
    }
    if (!st.ok() || !s.spilled) continue;
    --s.spilled;
    m_queued_->Add(-1);
    if (!e.msg->message_id.empty()) Emit(s.tenant(), s.user_id(), "", "expired", e.msg.get());
    Drop("expired", nullptr);
  }
  for (SessionId id : touched) {
    Session& s = *sessions_.at(id);
    if (!s.spilled) s.spill_seq = 0;
    Refill(s);  // connected meanwhile: read what is left
  }
}

}  // namespace herald::mqtt
