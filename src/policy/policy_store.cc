#include "policy/policy_store.h"

#include <algorithm>
#include <cmath>

#include "core/bytes.h"
#include "core/log.h"
#include "core/time_format.h"
#include "stream/json_text.h"
#include "stream/timezones.h"

namespace herald::policy {
namespace {

constexpr std::uint8_t kDecisionVersion = 1;
constexpr Micros kDayMicros = 86400 * kMicrosPerSecond;

void AppendBE64(std::string* s, std::uint64_t v) {
  ByteWriter w(s);
  w.FixedBE<std::uint64_t>(v);
}

enum AccountEvent { kPush = 0, kMark = 1, kComplaint = 2 };

}  // namespace

std::string EncodeDecision(const DecisionRecord& r) {
  std::string out;
  ByteWriter w(&out);
  const Decision& d = r.decision;
  w.Byte(kDecisionVersion);
  w.Zigzag(r.at);
  w.String(r.message_id);
  w.String(r.account_id);
  w.Byte(static_cast<std::uint8_t>(d.verdict));
  w.Byte(static_cast<std::uint8_t>(d.rule));
  w.Zigzag(d.until);
  w.Varint(d.count);
  w.Varint(d.limit);
  w.Varint(d.day_after_follow);
  w.Zigzag(d.since);
  for (Micros c : d.causes) w.Zigzag(c);
  w.Fixed<double>(d.weight);
  w.Fixed<double>(d.rate);
  return out;
}

Result<DecisionRecord> DecodeDecision(std::string_view bytes) {
  ByteReader r(bytes);
  DecisionRecord out;
  Decision& d = out.decision;
  std::uint8_t version = 0, verdict = 0, rule = 0;
  if (!r.Byte(&version) || version != kDecisionVersion) return Status::Corruption("decision record: unknown version");
  bool ok = r.Zigzag(&out.at) && r.String(&out.message_id) && r.String(&out.account_id) && r.Byte(&verdict) &&
            r.Byte(&rule) && r.Zigzag(&d.until) && r.Uint(&d.count) && r.Uint(&d.limit) &&
            r.Uint(&d.day_after_follow) && r.Zigzag(&d.since);
  for (Micros& c : d.causes) ok = ok && r.Zigzag(&c);
  ok = ok && r.Fixed(&d.weight) && r.Fixed(&d.rate);
  if (!ok || !r.done() || verdict > 2 || rule >= kRuleCount) return Status::Corruption("decision record: malformed");
  d.verdict = static_cast<Verdict>(verdict);
  d.rule = static_cast<Rule>(rule);
  return out;
}

namespace {

// An attrs time: unix seconds (a number) or ISO-8601 text, within event time's range.
Micros TimeValue(std::string_view raw, Micros fallback) {
  double seconds = 0;
  if (stream::json::NumberValue(raw, &seconds)) {
    if (!(seconds >= 946684800.0 && seconds < 4102444800.0)) return fallback;
    return static_cast<Micros>(seconds * kMicrosPerSecond);
  }
  std::string text;
  if (!stream::json::StringValue(raw, &text)) return fallback;
  auto parsed = ParseIsoTime(text);
  if (!parsed.ok() || *parsed < stream::kMinEventTime || *parsed >= stream::kMaxEventTime) return fallback;
  return *parsed;
}

}  // namespace

Micros AttrTime(std::string_view attrs, const char* key, Micros fallback) {
  // As a JSON parser reads an object: the last of repeated keys counts, and a
  // malformed object gives nothing.
  stream::json::MemberReader r(attrs);
  std::string_view k, raw, found;
  while (r.Next(&k, &raw)) {
    if (k == key) found = raw;
  }
  if (!r.ok() || found.empty()) return fallback;
  return TimeValue(found, fallback);
}

PushAttrs ParsePushAttrs(std::string_view attrs, Micros ts) {
  PushAttrs a;
  stream::json::MemberReader r(attrs);
  std::string_view k, raw;
  std::string text;
  double ttl = -1;
  while (r.Next(&k, &raw)) {
    if (k == "priority") {
      if (stream::json::StringValue(raw, &text) && text == "transactional") a.lane = Lane::kTransactional;
    } else if (k == "urgent") {
      if (raw == "true" || raw == "false") a.urgent = raw == "true";
    } else if (k == "expires_at") {
      a.expires_at = TimeValue(raw, 0);  // the last one counts
    } else if (k == "ttl_s") {
      double v = 0;
      if (stream::json::NumberValue(raw, &v) && v >= 0 && v == std::floor(v)) ttl = v;
    } else if (k == "collapse_key") {
      if (!stream::json::StringValue(raw, &a.collapse_key)) a.collapse_key.clear();
    } else if (k == "idempotency_key") {
      if (!stream::json::StringValue(raw, &a.idempotency_key)) a.idempotency_key.clear();
    }
  }
  if (!r.ok()) return PushAttrs{};  // a malformed object gives nothing
  ttl = std::min(ttl, 365.0 * 86400);
  if (ttl >= 0 && !a.expires_at) {
    a.expires_at = ts + static_cast<Micros>(std::min<std::uint64_t>(static_cast<std::uint64_t>(ttl), 365ull * 86400)) *
                            kMicrosPerSecond;
  }
  return a;
}

PolicyStore::PolicyStore(store::Db* db, store::ColumnFamily cf, PartitionId p, const PolicyConfig* cfg,
                         const AccountDirectory* accounts, Micros lateness, size_t max_hot_users)
    : db_(db),
      cf_(cf),
      partition_(p),
      cfg_(cfg),
      accounts_(accounts),
      lateness_(lateness),
      max_hot_users_(max_hot_users) {}

void PolicyStore::BuildKey(std::string_view tenant, std::string_view user_id) {
  key_.assign(tenant);
  key_.push_back('\0');
  key_.append(user_id);
}

PolicyStore::User* PolicyStore::Lookup(bool create, Status* failure) {
  if (auto it = users_.find(std::string_view(key_)); it != users_.end()) return &it->second;
  User loaded;
  bool found = false;
  store_key_ = store::PartitionKey(partition_, store::StateTag::kPolicyUser, key_);
  auto u = db_->Get(cf_, store_key_);
  if (!u.ok()) {
    log::Error("policy state read failed", {{"partition", partition_}, {"error", u.status()}});
    if (failure) *failure = u.status();
    return nullptr;
  }
  if (u->has_value()) {
    auto parsed = DeserializeUser(**u);
    if (parsed.ok()) {
      loaded.user = *parsed;
      found = true;
    } else {
      log::Error("unreadable policy user record; its counters start over",
                 {{"partition", partition_}, {"error", parsed.status()}});
    }
  }
  std::string prefix = store::PartitionKey(partition_, store::StateTag::kPolicyFollow, key_);
  prefix.push_back('\0');
  Status s = db_->Scan(cf_, prefix, [&](std::string_view, std::string_view value) {
    auto f = DeserializeFollow(value);
    if (f.ok()) {
      loaded.follows.push_back(*f);
    } else {
      log::Error("unreadable follow record skipped", {{"partition", partition_}, {"error", f.status()}});
    }
    return true;
  });
  if (!s.ok()) {
    if (failure) *failure = s;
    return nullptr;
  }
  found = found || !loaded.follows.empty();
  if (!found && !create) return nullptr;
  std::sort(loaded.follows.begin(), loaded.follows.end(),
            [](const FollowPolicy& a, const FollowPolicy& b) { return a.account < b.account; });
  return &users_.try_emplace(key_, std::move(loaded)).first->second;
}

const PolicyStore::User* PolicyStore::Find(std::string_view tenant, std::string_view user_id,
                                           Status* failure) {
  BuildKey(tenant, user_id);
  return Lookup(false, failure);
}

void PolicyStore::MarkDirty(User& u) {
  if (u.dirty) return;
  u.dirty = true;
  dirty_.push_back(key_);
}

void PolicyStore::MarkFollowDirty(User& u, std::uint64_t account) {
  MarkDirty(u);
  if (std::find(u.dirty_follows.begin(), u.dirty_follows.end(), account) == u.dirty_follows.end()) {
    u.dirty_follows.push_back(account);
  }
}

void PolicyStore::CountAccount(const std::string& tenant, std::uint64_t account, Micros at, int what) {
  if (!account) return;
  std::string k = tenant;
  k.push_back('\0');
  AppendBE64(&k, account);
  ByteWriter w(&k);
  w.FixedBE<std::uint16_t>(static_cast<std::uint16_t>(at / kDayMicros));
  AccountDay& d = account_days_[k];
  (what == kPush ? d.counts.pushes : what == kMark ? d.counts.not_interested : d.counts.complaints) += 1;
  d.dirty = true;
}

void PolicyStore::Record(User& u, const stream::Event& e, const Decision& d) {
  DecisionRecord r{e.ts, e.message_id, e.account_id, d};
  const std::uint32_t seq = u.user.decision_seq++;
  std::string suffix = key_;
  suffix.push_back('\0');
  ByteWriter w(&suffix);
  w.FixedBE<std::uint32_t>(seq);
  new_decisions_[suffix] = EncodeDecision(r);
  if (seq >= cfg_->decisions_kept) {
    std::string old = key_;
    old.push_back('\0');
    ByteWriter o(&old);
    o.FixedBE<std::uint32_t>(static_cast<std::uint32_t>(seq - cfg_->decisions_kept));
    new_decisions_.erase(old);
    old_decisions_.push_back(std::move(old));
  }
}

Status PolicyStore::RecordUnsent(std::string_view tenant, std::string_view user_id, std::string_view message_id,
                                 std::string_view account_id, Micros at, const Decision& d) {
  BuildKey(tenant, user_id);
  Status failure;
  User* u = Lookup(true, &failure);
  if (!u) return failure.ok() ? Status::Unavailable("no policy state") : failure;
  stream::Event e;
  e.ts = at;
  e.message_id.assign(message_id);
  e.account_id.assign(account_id);
  Record(*u, e, d);
  MarkDirty(*u);
  return Status::Ok();
}

void PolicyStore::OnEvent(stream::AppliedEvent& ae) {
  using stream::EventType;
  const stream::Event& e = ae.event;
  switch (e.type) {
    case EventType::kFollow: case EventType::kUnfollow: case EventType::kSent: case EventType::kDelivered:
    case EventType::kOpened: case EventType::kClicked: case EventType::kNotInterested:
    case EventType::kComplaint:
      break;
    default:
      return;  // no policy state changes: no lookup
  }
  latest_ = std::max(latest_, e.ts);
  BuildKey(e.tenant, e.user_id);
  User* found = Lookup(true, &ae.failure);
  if (!found) return;
  User& u = *found;
  const cctz::time_zone& tz = ae.user.tz ? *ae.user.tz : stream::UtcTimeZone();
  Fold(u.user, e.ts - lateness_, *cfg_);
  MarkDirty(u);
  const std::uint64_t account = e.account_id.empty() ? 0 : AccountKey(e.account_id);
  switch (e.type) {
    case EventType::kFollow: case EventType::kUnfollow: {
      if (!account) return;
      FollowPolicy& f = FollowFor(u, account);
      if (e.type == EventType::kUnfollow) {
        ApplyUnfollow(f);
      } else {
        // Never in the future: a follow cannot start after it was reported.
        ApplyFollow(f, std::min(e.ts, AttrTime(e.attrs, "followed_at", e.ts)));
      }
      MarkFollowDirty(u, account);
      return;
    }
    case EventType::kSent: case EventType::kDelivered: {
      const std::uint32_t message = e.message_id.empty() ? 0 : SmallKey(e.message_id);
      if (IsRecentPush(u.user, message)) {  // counted already, by its sent or delivered event
        if (e.type == EventType::kDelivered) ApplyDelivered(u.user, message, e.ts, *cfg_);
        return;
      }
      if (e.type == EventType::kDelivered && !message) return;
      // The account's type from the directory; not its reputation, which is not
      // in the log, so that a replay records the same decision.
      AccountType type = AccountType::kBusiness;
      if (account && accounts_) {
        if (std::optional<Account> a = accounts_->Find(e.tenant, e.account_id)) type = a->type;
      }
      AccountView view;
      view.key = account;
      view.type = type;
      FollowPolicy* f = account ? &FollowFor(u, account) : nullptr;
      PushAttrs attrs = ParsePushAttrs(e.attrs, e.ts);
      const std::uint32_t collapse = attrs.collapse_key.empty() ? 0 : SmallKey(attrs.collapse_key);
      const std::uint32_t idem = attrs.idempotency_key.empty() ? 0 : SmallKey(attrs.idempotency_key);
      if (e.type == EventType::kSent) {
        Candidate c;
        c.account = view;
        c.user_hash = SmallKey(e.user_id);
        c.lane = attrs.lane;
        c.urgent = attrs.urgent;
        c.expires_at = attrs.expires_at;
        c.collapse_key = collapse;
        c.idempotency_key = idem;
        Record(u, e, Decide(u.user, f, c, e.ts, tz, *cfg_));
      }
      ApplySend(u.user, f, type, attrs.lane, message, collapse, idem, e.ts, tz, *cfg_);
      if (account) MarkFollowDirty(u, account);
      CountAccount(e.tenant, account, e.ts, kPush);
      return;
    }
    case EventType::kOpened: case EventType::kClicked:
      ApplyOpen(u.user, e.message_id.empty() ? 0 : SmallKey(e.message_id), e.ts);
      return;
    case EventType::kNotInterested: case EventType::kComplaint: {
      std::uint64_t target = account;
      if (!target && !e.message_id.empty()) target = AccountOfPending(u.user, SmallKey(e.message_id));
      if (!target) return;
      const bool complaint = e.type == EventType::kComplaint;
      ApplyMark(FollowFor(u, target), complaint, e.ts, *cfg_);
      MarkFollowDirty(u, target);
      CountAccount(e.tenant, target, e.ts, complaint ? kComplaint : kMark);
      return;
    }
    default:
      return;
  }
}

Result<std::vector<DecisionRecord>> PolicyStore::Decisions(std::string_view tenant, std::string_view user_id,
                                                           size_t limit, Micros now) {
  BuildKey(tenant, user_id);
  std::string suffix_prefix = key_;
  suffix_prefix.push_back('\0');
  std::map<std::string, std::string> all;
  std::string prefix = store::PartitionTagPrefix(partition_, store::StateTag::kPolicyDecision);
  const size_t strip = prefix.size();
  prefix += suffix_prefix;
  HERALD_RETURN_IF_ERROR(db_->Scan(cf_, prefix, [&](std::string_view k, std::string_view v) {
    all.emplace(std::string(k.substr(strip)), std::string(v));
    return true;
  }));
  for (const auto& d : old_decisions_) all.erase(d);
  for (auto it = new_decisions_.lower_bound(suffix_prefix);
       it != new_decisions_.end() && it->first.compare(0, suffix_prefix.size(), suffix_prefix) == 0; ++it) {
    all[it->first] = it->second;
  }
  std::vector<DecisionRecord> out;
  const Micros oldest = now - static_cast<Micros>(cfg_->decisions_ttl_s) * kMicrosPerSecond;
  for (auto it = all.rbegin(); it != all.rend() && out.size() < limit; ++it) {
    auto r = DecodeDecision(it->second);
    if (!r.ok()) continue;
    if (r->at < oldest) break;
    out.push_back(std::move(*r));
  }
  return out;
}

std::vector<std::pair<std::pair<std::string, std::uint64_t>, AccountCounts>> PolicyStore::AccountWindow(
    Micros now) const {
  std::map<std::pair<std::string, std::uint64_t>, AccountCounts> sum;
  const std::int64_t today = now / kDayMicros;
  const std::int64_t from = today - static_cast<std::int64_t>(cfg_->reputation_window_days) + 1;
  for (const auto& [k, d] : account_days_) {
    ByteReader r(std::string_view(k).substr(k.size() - 10));
    std::uint64_t account = 0;
    std::uint16_t day = 0;
    r.FixedBE(&account);
    r.FixedBE(&day);
    if (day < from || day > today) continue;
    AccountCounts& c = sum[{k.substr(0, k.size() - 11), account}];
    c.pushes += d.counts.pushes;
    c.not_interested += d.counts.not_interested;
    c.complaints += d.counts.complaints;
  }
  return {sum.begin(), sum.end()};
}

Status PolicyStore::Load(stream::StateReader& reader) {
  // Users load lazily; the per-account day counts are few and load here.
  return reader.Scan("", [&](std::string_view suffix, std::string_view value) {
    ByteReader r(value);
    AccountDay d;
    if (suffix.size() < 11 || !r.Varint(&d.counts.pushes) || !r.Varint(&d.counts.not_interested) ||
        !r.Varint(&d.counts.complaints) || !r.done()) {
      log::Error("unreadable account counts record skipped", {{"partition", partition_}});
      return true;
    }
    account_days_[std::string(suffix)] = d;
    return true;
  });
}

void PolicyStore::Checkpoint(stream::CheckpointWriter& w) {
  stream::CheckpointWriter users = w.For(store::StateTag::kPolicyUser);
  stream::CheckpointWriter follows = w.For(store::StateTag::kPolicyFollow);
  stream::CheckpointWriter decisions = w.For(store::StateTag::kPolicyDecision);
  for (const std::string& key : dirty_) {
    auto it = users_.find(key);
    if (it == users_.end()) continue;
    User& u = it->second;
    users.Put(key, SerializeUser(u.user));
    for (std::uint64_t account : u.dirty_follows) {
      const FollowPolicy* f = FollowOf(u, account);
      if (!f) continue;
      std::string k = key;
      k.push_back('\0');
      AppendBE64(&k, account);
      follows.Put(k, SerializeFollow(*f));
    }
    u.dirty_follows.clear();
    u.dirty = false;
  }
  dirty_.clear();
  for (const auto& [k, v] : new_decisions_) decisions.Put(k, v);
  for (const auto& k : old_decisions_) decisions.Delete(k);
  new_decisions_.clear();
  old_decisions_.clear();
  // Day counts: the dirty ones; those past the longest window are deleted.
  const std::int64_t keep_from = latest_ / kDayMicros - 28;
  for (auto it = account_days_.begin(); it != account_days_.end();) {
    std::uint16_t day = 0;
    ByteReader r(std::string_view(it->first).substr(it->first.size() - 2));
    r.FixedBE(&day);
    if (day < keep_from) {
      w.Delete(it->first);
      it = account_days_.erase(it);
      continue;
    }
    if (it->second.dirty) {
      std::string v;
      ByteWriter bw(&v);
      bw.Varint(it->second.counts.pushes);
      bw.Varint(it->second.counts.not_interested);
      bw.Varint(it->second.counts.complaints);
      w.Put(it->first, v);
      it->second.dirty = false;
    }
    ++it;
  }
}

void PolicyStore::OnCheckpointed() {
  for (auto it = users_.begin(); it != users_.end() && users_.size() > max_hot_users_;) {
    if (it->second.dirty) {
      ++it;
      continue;
    }
    it = users_.erase(it);
  }
}

}  // namespace herald::policy
