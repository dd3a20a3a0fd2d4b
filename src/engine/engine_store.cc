#include "engine/engine_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "core/bytes.h"
#include "core/log.h"
#include "store/keys.h"
#include "stream/json_text.h"

namespace herald::engine {

namespace {
constexpr std::uint8_t kVersion = 2;  // 2 added the score; 1 is read as unscored
}  // namespace

std::string EncodeMessage(const MessageRecord& m) {
  std::string out;
  ByteWriter w(&out);
  w.Byte(kVersion);
  w.String(m.user_id);
  w.String(m.account_id);
  w.String(m.campaign_id);
  w.Zigzag(m.sent_at);
  w.Zigzag(m.expires_at);
  w.String(m.outcome);
  w.Zigzag(m.outcome_at);
  w.Varint(m.receipts.size());
  for (const auto& r : m.receipts) {
    w.String(r.type);
    w.Zigzag(r.at);
  }
  std::uint64_t bits;
  std::memcpy(&bits, &m.pctr, sizeof bits);
  w.Fixed<std::uint64_t>(bits);
  w.Varint(m.model_version);
  w.Varint(m.features.size());
  for (std::uint32_t f : m.features) w.Varint(f);
  return out;
}

Result<MessageRecord> DecodeMessage(std::string_view bytes) {
  ByteReader r(bytes);
  MessageRecord m;
  std::uint8_t v = 0;
  std::uint64_t n = 0;
  bool ok = r.Byte(&v) && (v == 1 || v == kVersion) && r.String(&m.user_id) && r.String(&m.account_id) &&
            r.String(&m.campaign_id) && r.Zigzag(&m.sent_at) && r.Zigzag(&m.expires_at) && r.String(&m.outcome) &&
            r.Zigzag(&m.outcome_at) && r.Varint(&n) && n <= 64;
  for (std::uint64_t i = 0; ok && i < n; ++i) {
    Receipt rc;
    ok = r.String(&rc.type) && r.Zigzag(&rc.at);
    m.receipts.push_back(std::move(rc));
  }
  if (ok && v >= 2) {
    std::uint64_t bits = 0, version = 0, count = 0;
    ok = r.Fixed(&bits) && r.Varint(&version) && r.Varint(&count) && count <= 4096;
    std::memcpy(&m.pctr, &bits, sizeof bits);
    m.model_version = static_cast<std::uint32_t>(version);
    for (std::uint64_t i = 0; ok && i < count; ++i) {
      std::uint64_t f = 0;
      ok = r.Varint(&f);
      m.features.push_back(static_cast<std::uint32_t>(f));
    }
  }
  if (!ok || !r.done()) return Status::Corruption("undecodable message record");
  return m;
}

bool MessageRecord::Engaged(Micros until) const {
  return std::any_of(receipts.begin(), receipts.end(),
                     [&](const Receipt& r) { return r.at <= until && (r.type == "opened" || r.type == "clicked"); });
}

std::string SampleKey(Micros close, std::string_view tenant, std::string_view message_id) {
  std::string k;
  ByteWriter w(&k);
  w.FixedBE<std::uint64_t>(static_cast<std::uint64_t>(close));
  k.append(tenant);
  k.push_back('\0');
  k.append(message_id);
  return k;
}

bool DecodeSampleKey(std::string_view suffix, Micros* close, std::string* tenant, std::string* message_id) {
  if (suffix.size() < 10) return false;
  ByteReader r(suffix.substr(0, 8));
  std::uint64_t c = 0;
  if (!r.FixedBE(&c)) return false;
  const std::string_view rest = suffix.substr(8);
  const size_t zero = rest.find('\0');
  if (zero == std::string_view::npos) return false;
  *close = static_cast<Micros>(c);
  tenant->assign(rest.substr(0, zero));
  message_id->assign(rest.substr(zero + 1));
  return true;
}

void AppendScoreAttrs(double pctr, std::uint32_t version, const std::vector<std::uint32_t>& features,
                      std::string* attrs) {
  // attrs is a compact JSON object; the score goes before its closing brace.
  char buf[64];
  std::string add;
  add.reserve(32 + features.size() * 7);
  if (!std::isfinite(pctr) || pctr < 0 || pctr > 1) pctr = -1;  // a diverged model: no score
  auto r = std::to_chars(buf, buf + sizeof buf, pctr, std::chars_format::general, 6);
  add += "\"pctr\":";
  add.append(buf, r.ptr);
  add += ",\"model_version\":";
  add += std::to_string(version);
  add += ",\"x\":\"";
  for (size_t i = 0; i < features.size(); ++i) {
    if (i) add.push_back(',');
    auto h = std::to_chars(buf, buf + sizeof buf, features[i], 16);
    add.append(buf, h.ptr);
  }
  add.push_back('"');
  if (attrs->size() < 2 || attrs->back() != '}') {
    *attrs = "{" + add + "}";
    return;
  }
  attrs->pop_back();
  if (attrs->size() > 1) attrs->push_back(',');
  *attrs += add;
  attrs->push_back('}');
}

void ParseScoreAttrs(std::string_view attrs, MessageRecord* m) {
  stream::json::MemberReader r(attrs);
  std::string_view key, raw;
  while (r.Next(&key, &raw)) {
    if (key == "pctr") {
      double v = -1;
      if (stream::json::NumberValue(raw, &v) && v >= 0 && v <= 1) m->pctr = v;
    } else if (key == "model_version") {
      double v = 0;
      if (stream::json::NumberValue(raw, &v) && v >= 0 && v < 4294967296.0) m->model_version = static_cast<std::uint32_t>(v);
    } else if (key == "x" && raw.size() >= 2 && raw.front() == '"') {
      std::string_view p = raw.substr(1, raw.size() - 2);
      m->features.clear();
      while (!p.empty() && m->features.size() < 4096) {
        std::uint32_t f = 0;
        auto res = std::from_chars(p.data(), p.data() + p.size(), f, 16);
        if (res.ec != std::errc()) break;
        m->features.push_back(f);
        p.remove_prefix(static_cast<size_t>(res.ptr - p.data()));
        if (!p.empty() && p.front() == ',') p.remove_prefix(1);
      }
    }
  }
}

std::string EngineStore::Key(std::string_view tenant, std::string_view id) const {
  std::string k(tenant);
  k.push_back('\0');
  k.append(id);
  return k;
}

Result<MessageRecord> EngineStore::Find(std::string_view tenant, std::string_view message_id) {
  const std::string key = Key(tenant, message_id);
  if (auto it = messages_.find(key); it != messages_.end()) return it->second;
  auto v = db_->Get(cf_, store::PartitionKey(partition_, store::StateTag::kEngineMessage, key));
  if (!v.ok()) return v.status();
  if (!*v) return Status::NotFound("no message " + std::string(message_id));
  return DecodeMessage(**v);
}

const std::vector<Reservation>* EngineStore::Reserved(std::string_view tenant, std::string_view user_id) const {
  auto it = reserved_.find(Key(tenant, user_id));
  return it == reserved_.end() ? nullptr : &it->second;
}

void EngineStore::Reserve(std::string_view tenant, std::string_view user_id, Reservation r) {
  reserved_[Key(tenant, user_id)].push_back(std::move(r));
}

void EngineStore::Release(std::string_view tenant, std::string_view user_id, std::string_view message_id) {
  auto it = reserved_.find(Key(tenant, user_id));
  if (it == reserved_.end()) return;
  auto& list = it->second;
  list.erase(std::remove_if(list.begin(), list.end(), [&](const Reservation& r) { return r.message_id == message_id; }),
             list.end());
  if (list.empty()) reserved_.erase(it);
}

void EngineStore::ApplyReservations(std::string_view tenant, std::string_view user_id, policy::UserPolicy& u,
                                    policy::FollowPolicy* follow, std::uint64_t account, const cctz::time_zone& tz,
                                    const policy::PolicyConfig& cfg) const {
  const auto* list = Reserved(tenant, user_id);
  if (!list) return;
  for (const Reservation& r : *list) {
    policy::FollowPolicy* f = follow && r.account == account ? follow : nullptr;
    policy::ApplySend(u, f, r.type, r.lane, policy::SmallKey(r.message_id), r.collapse_key, r.idempotency_key, r.at,
                      tz, cfg);
  }
}

Funnel& Funnel::operator+=(const Funnel& o) {
  sent += o.sent;
  delivered += o.delivered;
  queued += o.queued;
  expired += o.expired;
  refused += o.refused;
  opened += o.opened;
  clicked += o.clicked;
  converted += o.converted;
  dismissed += o.dismissed;
  not_interested += o.not_interested;
  complaint += o.complaint;
  return *this;
}

namespace {
std::uint64_t* Fields(Funnel& f, size_t i) {
  std::uint64_t* all[] = {&f.sent,   &f.delivered, &f.queued,    &f.expired,        &f.refused,  &f.opened,
                          &f.clicked, &f.converted, &f.dismissed, &f.not_interested, &f.complaint};
  return all[i];
}
constexpr size_t kFunnelFields = 11;
}  // namespace

std::vector<std::string> EngineStore::TakeDueSamples(Micros now) {
  std::vector<std::string> due;
  while (!new_samples_.empty() && new_samples_.front().first <= now) {
    due.push_back(std::move(new_samples_.front().second));
    new_samples_.pop_front();
  }
  return due;
}

void EngineStore::ReturnSamples(std::vector<std::string> keys) {
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
    Micros close = 0;
    std::string tenant, id;
    if (DecodeSampleKey(*it, &close, &tenant, &id)) new_samples_.emplace_front(close, std::move(*it));
  }
}

void EngineStore::OnCheckpointed() {
  // The entries are in the store now: the harvest looks there once they close.
  if (checkpointing_close_ == kNever) return;
  if (stored_close_ != 0) stored_close_ = std::min(stored_close_, checkpointing_close_);
  const Micros close = checkpointing_close_;
  checkpointing_close_ = kNever;
  if (stored_) stored_(partition_, close);
}

Funnel EngineStore::FunnelOf(std::string_view tenant, std::string_view campaign_id) const {
  auto it = funnels_.find(Key(tenant, campaign_id));
  return it == funnels_.end() ? Funnel{} : it->second;
}

Status EngineStore::Load(stream::StateReader& reader) {
  // Messages load on first use; the campaigns' counts are few and load here.
  return reader.For(store::StateTag::kEngineCampaign).Scan("", [&](std::string_view suffix, std::string_view value) {
    ByteReader r(value);
    Funnel f;
    bool ok = true;
    for (size_t i = 0; ok && i < kFunnelFields; ++i) ok = r.Varint(Fields(f, i));
    if (!ok || !r.done()) {
      log::Error("unreadable campaign counts skipped", {{"partition", partition_}});
      return true;
    }
    funnels_[std::string(suffix)] = f;
    return true;
  });
}

void EngineStore::OnEvent(stream::AppliedEvent& e) {
  using stream::EventType;
  const stream::Event& ev = e.event;
  watermark_ = std::max(watermark_, e.watermark);
  if (ev.message_id.empty()) return;
  const char* receipt = nullptr;
  switch (ev.type) {
    case EventType::kSent:
    case EventType::kDelivered:
    case EventType::kQueued:
    case EventType::kExpired:
    case EventType::kRefused:
      break;
    case EventType::kOpened: receipt = "opened"; break;
    case EventType::kClicked: receipt = "clicked"; break;
    case EventType::kDismissed: receipt = "dismissed"; break;
    case EventType::kNotInterested: receipt = "not_interested"; break;
    case EventType::kComplaint: receipt = "complaint"; break;
    case EventType::kConverted: receipt = "converted"; break;
    default: return;
  }
  const std::string key = Key(ev.tenant, ev.message_id);
  auto it = messages_.find(key);
  if (it == messages_.end() && ev.type == EventType::kSent) {
    // A sent event starts the message's record: nothing to read first.
    it = messages_.emplace(key, MessageRecord{}).first;
  } else if (it == messages_.end()) {
    auto stored = Find(ev.tenant, ev.message_id);
    if (!stored.ok() && stored.status().code() != Code::kNotFound) {
      e.failure = Status::Unavailable("message record unreadable: " + stored.status().message());
      return;
    }
    if (!stored.ok() && ev.type != EventType::kSent) return;  // a receipt for a push herald did not send
    it = messages_.emplace(key, stored.ok() ? std::move(*stored) : MessageRecord{}).first;
  }
  MessageRecord& m = it->second;
  const std::string campaign = ev.type == EventType::kSent ? ev.campaign_id : m.campaign_id;
  auto count = [&](std::uint64_t Funnel::*field) {
    if (campaign.empty()) return;
    const std::string ck = Key(ev.tenant, campaign);
    auto [f, fresh] = funnels_.try_emplace(ck);
    ++(f->second.*field);
    dirty_funnels_.push_back(ck);
  };
  switch (ev.type) {
    case EventType::kSent: {
      const bool first_send = !m.sent_at;
      if (first_send) count(&Funnel::sent);
      m.user_id = ev.user_id;
      m.account_id = ev.account_id;
      m.campaign_id = ev.campaign_id;
      m.sent_at = ev.ts;
      m.expires_at = policy::AttrTime(ev.attrs, "expires_at", 0);
      ParseScoreAttrs(ev.attrs, &m);
      if (first_send && sample_window_ > 0 && !m.features.empty()) {
        new_samples_.emplace_back(ev.ts + sample_window_, SampleKey(ev.ts + sample_window_, ev.tenant, ev.message_id));
      }
      // The push is in the policy's state now (it was registered first).
      Release(ev.tenant, ev.user_id, ev.message_id);
      break;
    }
    case EventType::kDelivered:
    case EventType::kQueued:
    case EventType::kExpired:
    case EventType::kRefused:
      // Delivered wins over queued (a queued push is delivered later).
      if (m.outcome != "delivered" && m.outcome != stream::EventTypeName(ev.type)) {
        m.outcome = std::string(stream::EventTypeName(ev.type));
        m.outcome_at = ev.ts;
        count(ev.type == EventType::kDelivered ? &Funnel::delivered
              : ev.type == EventType::kQueued  ? &Funnel::queued
              : ev.type == EventType::kExpired ? &Funnel::expired
                                               : &Funnel::refused);
      }
      break;
    default: {
      const bool first = std::none_of(m.receipts.begin(), m.receipts.end(),
                                      [&](const Receipt& r) { return r.type == receipt; });
      if (m.receipts.size() < 64) m.receipts.push_back({receipt, ev.ts});
      if (first) {
        count(ev.type == EventType::kOpened          ? &Funnel::opened
              : ev.type == EventType::kClicked       ? &Funnel::clicked
              : ev.type == EventType::kConverted     ? &Funnel::converted
              : ev.type == EventType::kDismissed     ? &Funnel::dismissed
              : ev.type == EventType::kNotInterested ? &Funnel::not_interested
                                                     : &Funnel::complaint);
      }
      break;
    }
  }
  dirty_.push_back(key);
}

void EngineStore::Checkpoint(stream::CheckpointWriter& w) {
  std::sort(dirty_.begin(), dirty_.end());
  dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
  for (const std::string& key : dirty_) {
    auto it = messages_.find(key);
    if (it != messages_.end()) w.Put(key, EncodeMessage(it->second));
  }
  dirty_.clear();
  stream::CheckpointWriter fw = w.For(store::StateTag::kEngineCampaign);
  std::sort(dirty_funnels_.begin(), dirty_funnels_.end());
  dirty_funnels_.erase(std::unique(dirty_funnels_.begin(), dirty_funnels_.end()), dirty_funnels_.end());
  for (const std::string& key : dirty_funnels_) {
    std::string v;
    ByteWriter bw(&v);
    Funnel& f = funnels_[key];
    for (size_t i = 0; i < kFunnelFields; ++i) bw.Varint(*Fields(f, i));
    fw.Put(key, v);
  }
  dirty_funnels_.clear();
  stream::CheckpointWriter sw = w.For(store::StateTag::kEngineSample);
  for (const auto& [close, key] : new_samples_) {
    sw.Put(key, "");
    checkpointing_close_ = std::min(checkpointing_close_, close);
  }
  new_samples_.clear();
  // Written messages leave memory; those past their days leave the store too.
  for (auto it = messages_.begin(); it != messages_.end();) {
    if (it->second.sent_at && it->second.sent_at + kMessageDays * kMicrosPerDay < watermark_) w.Delete(it->first);
    it = messages_.erase(it);
  }
}

}  // namespace herald::engine
