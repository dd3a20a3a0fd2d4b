#include "engine/engine_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>

#include "core/bytes.h"
#include "core/log.h"
#include "store/keys.h"
#include "stream/json_text.h"

namespace herald::engine {

namespace {
constexpr std::uint8_t kVersion = 3;  // 3 added ads and digests, 2 the score; 1 is read as unscored
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
  for (const auto& r : m.receipts) w.String(r.article_id);
  w.Varint(m.price_micros);
  w.Varint(m.charge_micros);
  w.Zigzag(m.budget_day);
  w.Varint(m.articles.size());
  for (const auto& a : m.articles) {
    w.String(a.id);
    w.Varint(a.features.size());
    for (std::uint32_t f : a.features) w.Varint(f);
  }
  return out;
}

Result<MessageRecord> DecodeMessage(std::string_view bytes) {
  ByteReader r(bytes);
  MessageRecord m;
  std::uint8_t v = 0;
  std::uint64_t n = 0;
  bool ok = r.Byte(&v) && v >= 1 && v <= kVersion && r.String(&m.user_id) && r.String(&m.account_id) &&
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
  if (ok && v >= 3) {
    for (auto& rc : m.receipts) ok = ok && r.String(&rc.article_id);
    std::uint64_t count = 0;
    ok = ok && r.Varint(&m.price_micros) && r.Varint(&m.charge_micros) && r.Zigzag(&m.budget_day) &&
         r.Varint(&count) && count <= 64;
    for (std::uint64_t i = 0; ok && i < count; ++i) {
      MessageRecord::Article a;
      std::uint64_t n = 0;
      ok = r.String(&a.id) && r.Varint(&n) && n <= 4096;
      for (std::uint64_t k = 0; ok && k < n; ++k) {
        std::uint64_t f = 0;
        ok = r.Varint(&f);
        a.features.push_back(static_cast<std::uint32_t>(f));
      }
      m.articles.push_back(std::move(a));
    }
  }
  if (!ok || !r.done()) return Status::Corruption("undecodable message record");
  return m;
}

bool MessageRecord::Engaged(Micros until) const {
  return std::any_of(receipts.begin(), receipts.end(),
                     [&](const Receipt& r) { return r.at <= until && (r.type == "opened" || r.type == "clicked"); });
}

bool MessageRecord::ArticleEngaged(std::string_view id, Micros until) const {
  return std::any_of(receipts.begin(), receipts.end(), [&](const Receipt& r) {
    if (r.at > until || (r.type != "opened" && r.type != "clicked")) return false;
    return r.article_id == id || (r.article_id.empty() && !articles.empty() && articles.front().id == id);
  });
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

namespace {

// Adds `members` (`"k":v,...`) to the compact JSON object `attrs`.
void AddMembers(const std::string& members, std::string* attrs) {
  if (attrs->size() < 2 || attrs->back() != '}') {
    *attrs = "{" + members + "}";
    return;
  }
  attrs->pop_back();
  if (attrs->size() > 1) attrs->push_back(',');
  *attrs += members;
  attrs->push_back('}');
}

void AppendHexList(const std::vector<std::uint32_t>& values, std::string* out) {
  char buf[16];
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out->push_back(',');
    auto h = std::to_chars(buf, buf + sizeof buf, values[i], 16);
    out->append(buf, h.ptr);
  }
}

// "hex,hex,..." up to the end of `p` or the first character that is neither.
std::string_view ParseHexList(std::string_view p, std::vector<std::uint32_t>* out) {
  out->clear();
  while (!p.empty() && out->size() < 4096) {
    std::uint32_t f = 0;
    auto res = std::from_chars(p.data(), p.data() + p.size(), f, 16);
    if (res.ec != std::errc()) break;
    out->push_back(f);
    p.remove_prefix(static_cast<size_t>(res.ptr - p.data()));
    if (p.empty() || p.front() != ',') break;
    p.remove_prefix(1);
  }
  return p;
}

void AppendNumber(const char* key, double v, std::string* out) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 9);
  if (!out->empty()) out->push_back(',');
  out->push_back('"');
  out->append(key);
  out->append("\":");
  out->append(buf, r.ptr);
}

std::uint64_t Millionths(double v) {
  return std::isfinite(v) && v > 0 && v < 1e12 ? static_cast<std::uint64_t>(std::llround(v * 1e6)) : 0;
}

}  // namespace

void AppendScoreAttrs(double pctr, std::uint32_t version, const std::vector<std::uint32_t>& features,
                      std::string* attrs) {
  std::string add;
  add.reserve(32 + features.size() * 7);
  if (!std::isfinite(pctr) || pctr < 0 || pctr > 1) pctr = -1;  // a diverged model: no score
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, pctr, std::chars_format::general, 6);
  add += "\"pctr\":";
  add.append(buf, r.ptr);
  add += ",\"model_version\":";
  add += std::to_string(version);
  add += ",\"x\":\"";
  AppendHexList(features, &add);
  add.push_back('"');
  AddMembers(add, attrs);
}

void AppendPayloadAttr(const std::string& payload, std::string* attrs) {
  std::string add = "\"payload\":";
  stream::json::AppendString(&add, payload);
  AddMembers(add, attrs);
}

void AppendAdAttrs(double price, double charge, std::int64_t budget_day, std::string* attrs) {
  std::string add;
  AppendNumber("price", price, &add);
  AppendNumber("charge", charge, &add);
  AppendNumber("budget_day", static_cast<double>(budget_day), &add);
  AddMembers(add, attrs);
}

void AppendArticleAttrs(const std::vector<MessageRecord::Article>& articles, std::string* attrs) {
  std::string add = "\"articles\":";
  std::string list;
  for (size_t i = 0; i < articles.size(); ++i) {
    if (i) list.push_back(';');
    list += articles[i].id;
    list.push_back(':');
    AppendHexList(articles[i].features, &list);
  }
  stream::json::AppendString(&add, list);
  AddMembers(add, attrs);
}

void ParseScoreAttrs(std::string_view attrs, MessageRecord* m) {
  stream::json::MemberReader r(attrs);
  std::string_view key, raw;
  while (r.Next(&key, &raw)) {
    double v = 0;
    if (key == "pctr") {
      if (stream::json::NumberValue(raw, &v) && v >= 0 && v <= 1) m->pctr = v;
    } else if (key == "model_version") {
      if (stream::json::NumberValue(raw, &v) && v >= 0 && v < 4294967296.0) m->model_version = static_cast<std::uint32_t>(v);
    } else if (key == "x" && raw.size() >= 2 && raw.front() == '"') {
      ParseHexList(raw.substr(1, raw.size() - 2), &m->features);
    } else if (key == "price" && stream::json::NumberValue(raw, &v)) {
      m->price_micros = Millionths(v);
    } else if (key == "charge" && stream::json::NumberValue(raw, &v)) {
      m->charge_micros = Millionths(v);
    } else if (key == "budget_day" && stream::json::NumberValue(raw, &v) && v > 0 && v < 1e7) {
      m->budget_day = static_cast<std::int64_t>(v);
    } else if (key == "articles") {
      std::string list;
      if (!stream::json::StringValue(raw, &list)) continue;
      m->articles.clear();
      std::string_view p = list;
      while (!p.empty() && m->articles.size() < 64) {
        const size_t colon = p.find(':');
        if (colon == std::string_view::npos) break;
        MessageRecord::Article a;
        a.id.assign(p.substr(0, colon));
        p = ParseHexList(p.substr(colon + 1), &a.features);
        m->articles.push_back(std::move(a));
        if (p.empty() || p.front() != ';') break;
        p.remove_prefix(1);
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
  spend_micros += o.spend_micros;
  price_micros += o.price_micros;
  if (o.budget_day > budget_day) {
    budget_day = o.budget_day;
    day_committed_micros = o.day_committed_micros;
  } else if (o.budget_day == budget_day) {
    day_committed_micros += o.day_committed_micros;
  }
  return *this;
}

namespace {
std::uint64_t* Fields(Funnel& f, size_t i) {
  std::uint64_t* all[] = {&f.sent,         &f.delivered,    &f.queued,     &f.expired,
                          &f.refused,      &f.opened,       &f.clicked,    &f.converted,
                          &f.dismissed,    &f.not_interested, &f.complaint, &f.spend_micros,
                          &f.price_micros, &f.budget_day,   &f.day_committed_micros};
  return all[i];
}
constexpr size_t kFunnelFields = 15, kFunnelFieldsBeforeAds = 11;
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

std::vector<InDoubtPush> EngineStore::InDoubt(Micros now) {
  std::map<std::string, InDoubtPush> all;
  const std::string prefix = store::PartitionTagPrefix(partition_, store::StateTag::kEngineInDoubt);
  (void)db_->Scan(cf_, prefix, [&](std::string_view key, std::string_view value) {
    ByteReader r(value);
    std::uint8_t v = 0;
    InDoubtPush d;
    const std::string_view suffix = key.substr(prefix.size());
    const size_t zero = suffix.find('\0');
    if (zero == std::string_view::npos) return true;
    if (r.Byte(&v) && v == 1 && r.String(&d.user_id) && r.String(&d.account_id) && r.String(&d.campaign_id) &&
        r.Zigzag(&d.expires_at) && r.String(&d.payload) && r.done()) {
      d.tenant.assign(suffix.substr(0, zero));
      d.message_id.assign(suffix.substr(zero + 1));
      all.emplace(std::string(suffix), std::move(d));
    }
    return true;
  });
  for (const std::string& key : doubt_cleared_) all.erase(key);  // their outcome came since
  for (const auto& [key, d] : in_doubt_) all[key] = d;
  std::vector<InDoubtPush> out;
  for (auto& [key, d] : all) {
    if (d.expires_at && d.expires_at <= now) {
      doubt_cleared_.push_back(key);  // past its life: the next checkpoint drops it
      in_doubt_.erase(key);
      continue;
    }
    // An outcome checkpointed after the entry was stored: no doubt left.
    auto m = Find(d.tenant, d.message_id);
    if (m.ok() && !m->outcome.empty()) continue;
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<std::pair<std::string, Funnel>> EngineStore::AdFunnels() const {
  std::vector<std::pair<std::string, Funnel>> out;
  for (const auto& [k, f] : funnels_) {
    if (f.budget_day) out.emplace_back(k, f);
  }
  return out;
}

Status EngineStore::Load(stream::StateReader& reader) {
  // Messages load on first use; the campaigns' counts are few and load here.
  return reader.For(store::StateTag::kEngineCampaign).Scan("", [&](std::string_view suffix, std::string_view value) {
    ByteReader r(value);
    Funnel f;
    bool ok = true;
    for (size_t i = 0; ok && i < kFunnelFields; ++i) {
      if (i == kFunnelFieldsBeforeAds && r.done()) break;  // a record from before ads
      ok = r.Varint(Fields(f, i));
    }
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
  auto funnel = [&]() -> Funnel* {
    if (campaign.empty()) return nullptr;
    const std::string ck = Key(ev.tenant, campaign);
    auto [f, fresh] = funnels_.try_emplace(ck);
    dirty_funnels_.push_back(ck);
    return &f->second;
  };
  // A digest counts for the campaigns of the articles it listed (a receipt naming
  // one, or naming none for an open or click, counts for that one, or the first).
  auto count = [&](std::uint64_t Funnel::*field, std::string_view article = {}) {
    if (m.articles.empty() || !m.campaign_id.empty()) {
      if (Funnel* f = funnel()) ++(f->*field);
      return;
    }
    for (const auto& a : m.articles) {
      if (!article.empty() && a.id != article) continue;
      const std::string ck = Key(ev.tenant, a.id);
      ++(funnels_[ck].*field);
      dirty_funnels_.push_back(ck);
    }
  };
  switch (ev.type) {
    case EventType::kSent: {
      const bool first_send = !m.sent_at;
      m.user_id = ev.user_id;
      m.account_id = ev.account_id;
      m.campaign_id = ev.campaign_id;
      m.sent_at = ev.ts;
      m.expires_at = policy::AttrTime(ev.attrs, "expires_at", 0);
      ParseScoreAttrs(ev.attrs, &m);
      if (first_send) count(&Funnel::sent);
      if (first_send && m.charge_micros && m.budget_day > 0) {
        // What an ad's push commits of its budget day (charged once delivered).
        if (Funnel* f = funnel()) {
          const auto day = static_cast<std::uint64_t>(m.budget_day);
          if (day > f->budget_day) {
            f->budget_day = day;
            f->day_committed_micros = 0;
          }
          if (day == f->budget_day) f->day_committed_micros += m.charge_micros;
        }
      }
      const bool sampled = !m.features.empty() || !m.articles.empty();
      if (first_send && sample_window_ > 0 && sampled) {
        new_samples_.emplace_back(ev.ts + sample_window_, SampleKey(ev.ts + sample_window_, ev.tenant, ev.message_id));
      }
      // The push is in the policy's state now (it was registered first).
      Release(ev.tenant, ev.user_id, ev.message_id);
      if (first_send && m.outcome.empty()) {
        // In doubt until the gateway's outcome comes back.
        stream::json::MemberReader pr(ev.attrs);
        std::string_view k, raw;
        InDoubtPush d;
        while (pr.Next(&k, &raw)) {
          if (k == "payload") stream::json::StringValue(raw, &d.payload);
        }
        if (!d.payload.empty()) {
          d.tenant = ev.tenant;
          d.user_id = ev.user_id;
          d.message_id = ev.message_id;
          d.account_id = ev.account_id;
          d.campaign_id = ev.campaign_id;
          d.expires_at = m.expires_at;
          in_doubt_[key] = std::move(d);
        }
      }
      break;
    }
    case EventType::kDelivered:
    case EventType::kQueued:
    case EventType::kExpired:
    case EventType::kRefused:
      if (in_doubt_.erase(key) || m.outcome.empty()) doubt_cleared_.push_back(key);
      // Delivered wins over queued (a queued push is delivered later).
      if (m.outcome != "delivered" && m.outcome != stream::EventTypeName(ev.type)) {
        m.outcome = std::string(stream::EventTypeName(ev.type));
        m.outcome_at = ev.ts;
        count(ev.type == EventType::kDelivered ? &Funnel::delivered
              : ev.type == EventType::kQueued  ? &Funnel::queued
              : ev.type == EventType::kExpired ? &Funnel::expired
                                               : &Funnel::refused);
        if (ev.type == EventType::kDelivered && m.charge_micros) {
          // An ad is charged once, when it is first delivered.
          if (Funnel* f = funnel()) {
            f->spend_micros += m.charge_micros;
            f->price_micros += m.price_micros;
          }
        }
      }
      break;
    default: {
      const bool first = std::none_of(m.receipts.begin(), m.receipts.end(),
                                      [&](const Receipt& r) { return r.type == receipt; });
      Receipt rc{receipt, ev.ts, {}};
      {
        if (!m.articles.empty()) {
          // A digest's receipt may name the article (one of those listed).
          stream::json::MemberReader ar(ev.attrs);
          std::string_view k, raw;
          std::string id;
          while (ar.Next(&k, &raw)) {
            if (k == "article_id" && stream::json::StringValue(raw, &id) &&
                std::any_of(m.articles.begin(), m.articles.end(), [&](const auto& a) { return a.id == id; })) {
              rc.article_id = id;
            }
          }
        }
      }
      const std::string named = !m.articles.empty() && rc.article_id.empty() ? m.articles.front().id : rc.article_id;
      if (m.receipts.size() < 64) m.receipts.push_back(std::move(rc));
      if (first) {
        const bool engaged = ev.type == EventType::kOpened || ev.type == EventType::kClicked;
        const std::string_view article = engaged ? std::string_view(named) : std::string_view();
        count(ev.type == EventType::kOpened          ? &Funnel::opened
              : ev.type == EventType::kClicked       ? &Funnel::clicked
              : ev.type == EventType::kConverted     ? &Funnel::converted
              : ev.type == EventType::kDismissed     ? &Funnel::dismissed
              : ev.type == EventType::kNotInterested ? &Funnel::not_interested
                                                     : &Funnel::complaint,
              article);
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
  // Pushes still in doubt are stored; those whose outcome came go.
  stream::CheckpointWriter dw = w.For(store::StateTag::kEngineInDoubt);
  for (const std::string& key : doubt_cleared_) dw.Delete(key);
  doubt_cleared_.clear();
  for (const auto& [key, d] : in_doubt_) {
    std::string v;
    ByteWriter bw(&v);
    bw.Byte(1);
    bw.String(d.user_id);
    bw.String(d.account_id);
    bw.String(d.campaign_id);
    bw.Zigzag(d.expires_at);
    bw.String(d.payload);
    dw.Put(key, v);
  }
  in_doubt_.clear();
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
