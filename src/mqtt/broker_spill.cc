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

void Broker::Refill(Session& s) {
  if (s.clean || !s.spilled || s.refilling || !s.link) return;
  size_t room = opt_.config.session_window > s.queue.size() + s.inflight.size()
                    ? opt_.config.session_window - s.queue.size() - s.inflight.size()
                    : 0;
  if (!room) return;
  s.refilling = true;
  auto load = [this, sid = s.id, key = s.key, from = s.spill_seq, room, db = opt_.db,
               cf = messages_cf_, post = opt_.post] {
    // Off the loop: read up to `room` messages (and their in-flight marks) from `from`.
    std::vector<Outgoing> loaded;
    std::string prefix = key;
    prefix.push_back('\0');
    std::string start = MessageKey(key, from);
    bool full = false;
    Status st = db->ScanFrom(cf, prefix, start, [&](std::string_view k, std::string_view v) {
      if (k.size() == prefix.size() + 9 && k.back() == '\x01') {  // the mark of the last one
        bool pubrec = false;
        if (!loaded.empty() && DecodeInflightRecord(v, &loaded.back().packet_id, &pubrec)) {
          loaded.back().pubrec = pubrec && loaded.back().qos == 2;
        }
        return true;
      }
      if (k.size() != prefix.size() + 8) return true;
      if (full) return false;  // one past the window: stop after its mark
      std::uint64_t seq = 0;
      ByteReader(k.substr(prefix.size())).FixedBE(&seq);
      auto m = std::make_shared<Message>();
      std::uint8_t qos = 0;
      if (!DecodeMessageRecord(v, m.get(), &qos)) return true;  // skipped at recovery too
      loaded.push_back(Outgoing{std::move(m), qos, 0, false, seq});
      full = loaded.size() >= room;
      return true;
    });
    if (!st.ok()) log::Error("mqtt queue read failed", {{"error", st}});
    bool exhausted = st.ok() && !full;
    post([this, sid, from, loaded = std::move(loaded), exhausted]() mutable {
      OnRefilled(sid, from, std::move(loaded), exhausted);
    });
  };
  if (opt_.background) {
    opt_.background(std::move(load));
  } else {
    load();
  }
}

void Broker::OnRefilled(SessionId sid, std::uint64_t from, std::vector<Outgoing> loaded,
                        bool exhausted) {
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return;  // gone meanwhile
  Session& s = *it->second;
  s.refilling = false;
  if (s.spill_seq != from || !s.spilled) return;  // spilled again meanwhile: the next refill reads it
  if (!s.link) return Spill(s);                  // offline again: keep nothing
  size_t n = std::min<size_t>(loaded.size(), s.spilled);
  for (size_t i = 0; i < n; ++i) {
    Outgoing& o = loaded[i];
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
  if (s.spilled && n) {
    s.spill_seq = s.queue.empty() ? s.inflight.back().seq + 1 : s.queue.back().seq + 1;
  }
  if (exhausted && s.spilled) {
    // Fewer on disk than counted (unreadable records were skipped): the count was high.
    m_queued_->Add(-static_cast<std::int64_t>(s.spilled));
    s.spilled = 0;
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
        db->WriteAsync(std::move(b), [](Status) {});
        b = store::WriteBatch();
      }
      return true;
    });
    if (!st.ok()) log::Error("mqtt queue cleanup failed", {{"error", st}});
    if (!b.empty()) db->WriteAsync(std::move(b), [](Status) {});
  };
  if (opt_.background) {
    opt_.background(std::move(erase));
  } else {
    erase();
  }
}

}  // namespace herald::mqtt
