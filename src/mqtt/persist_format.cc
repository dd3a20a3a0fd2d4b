#include "mqtt/persist_format.h"

#include <nlohmann/json.hpp>

#include "core/bytes.h"

namespace herald::mqtt {

std::string MessageKey(const std::string& session_key, std::uint64_t seq) {
  std::string k = session_key;
  k.push_back('\0');
  ByteWriter(&k).FixedBE(seq);
  return k;
}

std::string EncodeMessageRecord(const Message& m, std::uint8_t qos) {
  std::string r;
  r.reserve(13 + m.topic.size() + m.message_id.size() + m.payload.size());
  ByteWriter w(&r);
  auto short_string = [&w](const std::string& s) {
    std::string_view v = std::string_view(s).substr(0, 255);
    w.Byte(static_cast<std::uint8_t>(v.size()));
    w.Raw(v);
  };
  bool ids = !m.account_id.empty() || !m.campaign_id.empty();
  w.Byte(qos);
  w.Byte(static_cast<std::uint8_t>((m.from_retained ? 1 : 0) | (ids ? 2 : 0)));
  w.Fixed<std::int64_t>(m.expires_at);
  w.Fixed(static_cast<std::uint16_t>(m.topic.size()));
  w.Raw(m.topic);
  short_string(m.message_id);
  if (ids) {
    short_string(m.account_id);
    short_string(m.campaign_id);
  }
  w.Raw(m.payload);
  return r;
}

bool DecodeMessageRecord(std::string_view bytes, Message* m, std::uint8_t* qos) {
  ByteReader r(bytes);
  std::uint8_t flags = 0;
  std::uint16_t topic_len = 0;
  std::string_view topic;
  auto short_string = [&r](std::string* out) {
    std::uint8_t n;
    std::string_view v;
    if (!r.Byte(&n) || !r.Raw(n, &v)) return false;
    out->assign(v);
    return true;
  };
  if (!r.Byte(qos) || !r.Byte(&flags) || !r.Fixed(&m->expires_at) || !r.Fixed(&topic_len) ||
      !r.Raw(topic_len, &topic) || !short_string(&m->message_id)) {
    return false;
  }
  if ((flags & 2) && (!short_string(&m->account_id) || !short_string(&m->campaign_id))) {
    return false;
  }
  m->from_retained = flags & 1;
  m->topic.assign(topic);
  m->payload.assign(r.Rest());
  m->qos = *qos;
  return *qos == 1 || *qos == 2;
}

std::string InflightKey(const std::string& session_key, std::uint64_t seq) {
  std::string k = MessageKey(session_key, seq);
  k.push_back('\x01');
  return k;
}

std::string EncodeInflightRecord(std::uint16_t packet_id, bool pubrec) {
  std::string out;
  ByteWriter w(&out);
  w.Fixed(packet_id);
  w.Byte(pubrec ? 1 : 0);
  return out;
}

bool DecodeInflightRecord(std::string_view bytes, std::uint16_t* packet_id, bool* pubrec) {
  ByteReader r(bytes);
  std::uint8_t flags;
  if (!r.Fixed(packet_id) || !r.Byte(&flags) || !r.done() || *packet_id == 0 || flags > 1) {
    return false;
  }
  *pubrec = flags & 1;
  return true;
}

bool ValidMessageRecord(std::string_view bytes) {
  ByteReader r(bytes);
  std::uint8_t qos = 0, flags = 0, n = 0;
  std::uint16_t topic_len = 0;
  Micros expires = 0;
  std::string_view skip;
  bool ok = r.Byte(&qos) && r.Byte(&flags) && r.Fixed(&expires) && r.Fixed(&topic_len) &&
            r.Raw(topic_len, &skip) && r.Byte(&n) && r.Raw(n, &skip);
  if (ok && (flags & 2)) ok = r.Byte(&n) && r.Raw(n, &skip) && r.Byte(&n) && r.Raw(n, &skip);
  return ok && (qos == 1 || qos == 2);
}

std::string EncodeSessionRecord(const SessionRecord& r) {
  nlohmann::json subs = nlohmann::json::array();
  for (const auto& [filter, qos] : r.subs) subs.push_back({filter, qos});
  nlohmann::json j = {{"client_id", r.client_id}, {"mount", r.mount},
                      {"tenant", r.tenant},       {"user_id", r.user_id},
                      {"device_id", r.device_id}, {"subs", subs}};
  if (!r.awaiting_rel.empty()) j["awaiting_rel"] = r.awaiting_rel;
  return j.dump();
}

Result<SessionRecord> DecodeSessionRecord(std::string_view bytes) {
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("session record is not a JSON object");
  SessionRecord r;
  for (auto [name, out] : {std::pair{"client_id", &r.client_id}, {"mount", &r.mount},
                           {"tenant", &r.tenant}, {"user_id", &r.user_id},
                           {"device_id", &r.device_id}}) {
    auto it = j.find(name);
    if (it == j.end()) continue;
    if (!it->is_string()) return Status::Corruption(std::string("session record: ") + name + " is not a string");
    *out = it->get<std::string>();
  }
  if (auto it = j.find("subs"); it != j.end()) {
    if (!it->is_array()) return Status::Corruption("session record: subs is not an array");
    for (const auto& sub : *it) {
      if (!sub.is_array() || sub.size() != 2 || !sub[0].is_string() || !sub[1].is_number_unsigned() ||
          sub[1].get<unsigned>() > 2) {
        return Status::Corruption("session record: a subscription is not [filter, qos 0..2]");
      }
      r.subs.emplace_back(sub[0].get<std::string>(), sub[1].get<std::uint8_t>());
    }
  }
  if (auto it = j.find("awaiting_rel"); it != j.end()) {
    if (!it->is_array()) return Status::Corruption("session record: awaiting_rel is not an array");
    for (const auto& id : *it) {
      if (!id.is_number_unsigned() || id.get<unsigned>() == 0 || id.get<unsigned>() > 65535) {
        return Status::Corruption("session record: awaiting_rel holds a bad packet id");
      }
      r.awaiting_rel.push_back(id.get<std::uint16_t>());
    }
  }
  return r;
}

}  // namespace herald::mqtt
