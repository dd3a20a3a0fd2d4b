#include "policy/replay.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <queue>

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include "log/event_log.h"
#include "policy/policy_store.h"
#include "stream/event_codec.h"
#include "stream/parse.h"
#include "stream/timezones.h"

namespace herald::policy {
namespace {


std::uint64_t Mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
  x ^= x >> 31;
  x *= 0x7fb5d329728ea185ull;
  x ^= x >> 27;
  return x;
}

int LocalDay(Micros t, const cctz::time_zone& tz) {
  using Seconds = std::chrono::time_point<std::chrono::system_clock, cctz::seconds>;
  const cctz::civil_day d(cctz::convert(Seconds(cctz::seconds(t / kMicrosPerSecond)), tz));
  return static_cast<int>(d - cctz::civil_day(2000, 1, 1));
}

}  // namespace

struct Replay::Run {
  struct User {
    UserPolicy user;
    std::vector<FollowPolicy> follows;  // by account key
  };
  struct Deferred {
    Micros until;
    std::uint64_t seq;
    stream::Event event;
    bool operator>(const Deferred& o) const { return until != o.until ? until > o.until : seq > o.seq; }
  };

  PolicyConfig cfg;
  Micros lateness = 0;
  std::unordered_map<std::string, User> users;
  std::unordered_set<std::uint64_t> seen;     // (user, message) of candidates
  std::unordered_set<std::uint64_t> dropped;  // ... that never reached the user
  std::unordered_set<std::uint64_t> waiting;  // ... deferred, not decided yet
  std::priority_queue<Deferred, std::vector<Deferred>, std::greater<>> deferred;
  std::unordered_map<std::uint64_t, std::uint32_t> per_user_day;
  std::uint64_t seq = 0;
  ReplayTotals totals;

  FollowPolicy& FollowFor(User& u, std::uint64_t account) {
    auto it = std::lower_bound(u.follows.begin(), u.follows.end(), account,
                               [](const FollowPolicy& f, std::uint64_t k) { return f.account < k; });
    if (it == u.follows.end() || it->account != account) {
      FollowPolicy f;
      f.account = account;
      it = u.follows.insert(it, f);
    }
    return *it;
  }

  // Decides a candidate at `now`; `again` when it was deferred before.
  void Decide(User& u, const stream::Event& e, Micros now, const cctz::time_zone& tz, AccountType type,
              bool again) {
    const std::uint64_t account = e.account_id.empty() ? 0 : AccountKey(e.account_id);
    const std::uint32_t message = e.message_id.empty() ? 0 : SmallKey(e.message_id);
    const std::uint64_t id = Mix(std::hash<std::string>()(e.user_id), message);
    FollowPolicy* f = account ? &FollowFor(u, account) : nullptr;
    PushAttrs attrs = ParsePushAttrs(e.attrs, e.ts);
    Candidate c;
    c.account.key = account;
    c.account.type = type;
    c.user_hash = SmallKey(e.user_id);
    c.lane = attrs.lane;
    c.urgent = attrs.urgent;
    c.expires_at = attrs.expires_at;
    c.collapse_key = attrs.collapse_key.empty() ? 0 : SmallKey(attrs.collapse_key);
    c.idempotency_key = attrs.idempotency_key.empty() ? 0 : SmallKey(attrs.idempotency_key);
    Fold(u.user, now - lateness, cfg);
    const policy::Decision d = policy::Decide(u.user, f, c, now, tz, cfg);
    if (d.verdict == Verdict::kDefer && d.until > now) {
      if (!again) ++totals.deferred;
      waiting.insert(id);
      deferred.push({d.until, seq++, e});
      return;
    }
    waiting.erase(id);
    if (d.verdict != Verdict::kAllow) {
      ++totals.suppressed[static_cast<size_t>(d.rule)];
      dropped.insert(id);
      return;
    }
    if (again) {
      ++totals.deferred_then_allowed;
    } else {
      ++totals.allowed;
    }
    ApplySend(u.user, f, type, c.lane, message, c.collapse_key, c.idempotency_key, now, tz, cfg);
    ++per_user_day[Mix(std::hash<std::string>()(e.user_id), static_cast<std::uint64_t>(LocalDay(now, tz)))];
  }
};

Replay::Replay(std::vector<PolicyConfig> configs, std::string tenant,
               std::unordered_map<std::string, AccountType> accounts, Micros lateness)
    : tenant_(std::move(tenant)), accounts_(std::move(accounts)) {
  for (auto& c : configs) {
    runs_.push_back(std::make_unique<Run>());
    runs_.back()->cfg = std::move(c);
    runs_.back()->lateness = lateness;
  }
}

Replay::~Replay() = default;

void Replay::SetZone(std::string_view user_id, std::string_view tz_name) {
  zones_[std::string(user_id)] = &stream::TimeZoneOrUtc(tz_name);
}

AccountType Replay::TypeOf(const stream::Event& e) const {
  if (e.account_id.empty()) return AccountType::kBusiness;
  if (auto it = accounts_.find(e.account_id); it != accounts_.end()) return it->second;
  if (e.attrs.find("\"account_type\"") != std::string::npos) {
    for (auto t : {AccountType::kService, AccountType::kSubscription, AccountType::kAd}) {
      if (e.attrs.find("\"account_type\":\"" + std::string(AccountTypeName(t)) + "\"") != std::string::npos) return t;
    }
  }
  return AccountType::kBusiness;
}

void Replay::Add(const stream::Event& e) {
  using stream::EventType;
  ++events_;
  auto zi = zones_.find(e.user_id);
  const cctz::time_zone& tz = zi != zones_.end() ? *zi->second : stream::UtcTimeZone();
  const AccountType type = TypeOf(e);
  for (auto& run : runs_) {
    // Deferred pushes due by now are decided first, in time order.
    while (!run->deferred.empty() && run->deferred.top().until <= e.ts) {
      Run::Deferred d = run->deferred.top();
      run->deferred.pop();
      auto& u = run->users[d.event.user_id];
      auto dz = zones_.find(d.event.user_id);
      const AccountType dt = TypeOf(d.event);
      run->Decide(u, d.event, d.until, dz != zones_.end() ? *dz->second : stream::UtcTimeZone(), dt, true);
    }
    switch (e.type) {
      case EventType::kFollow: case EventType::kUnfollow: case EventType::kSent: case EventType::kDelivered:
      case EventType::kOpened: case EventType::kClicked: case EventType::kNotInterested:
      case EventType::kComplaint:
        break;
      default:
        continue;
    }
    Run::User& u = run->users[e.user_id];
    const std::uint64_t account = e.account_id.empty() ? 0 : AccountKey(e.account_id);
    const std::uint32_t message = e.message_id.empty() ? 0 : SmallKey(e.message_id);
    const std::uint64_t id = Mix(std::hash<std::string>()(e.user_id), message);
    const bool gone = message && (run->dropped.count(id) || run->waiting.count(id));
    switch (e.type) {
      case EventType::kFollow: {
        if (!account) break;
        ApplyFollow(run->FollowFor(u, account), std::min(e.ts, AttrTime(e.attrs, "followed_at", e.ts)));
        break;
      }
      case EventType::kUnfollow:
        if (account) ApplyUnfollow(run->FollowFor(u, account));
        break;
      case EventType::kSent: case EventType::kDelivered: {
        if (gone) break;
        if (message && run->seen.count(id)) {
          if (e.type == EventType::kDelivered) {
            Fold(u.user, e.ts - run->lateness, run->cfg);
            ApplyDelivered(u.user, message, e.ts, run->cfg);
          }
          break;
        }
        if (e.type == EventType::kDelivered && !message) break;
        if (message) run->seen.insert(id);
        ++run->totals.candidates;
        run->Decide(u, e, e.ts, tz, type, false);
        break;
      }
      case EventType::kOpened: case EventType::kClicked:
        if (gone) break;
        Fold(u.user, e.ts - run->lateness, run->cfg);
        ApplyOpen(u.user, message, e.ts);
        break;
      case EventType::kNotInterested: case EventType::kComplaint: {
        if (gone) break;
        std::uint64_t target = account ? account : AccountOfPending(u.user, message);
        if (target) ApplyMark(run->FollowFor(u, target), e.type == EventType::kComplaint, e.ts, run->cfg);
        break;
      }
      default:
        break;
    }
  }
}

std::vector<ReplayTotals> Replay::Finish() {
  std::vector<ReplayTotals> out;
  for (auto& run : runs_) {
    while (!run->deferred.empty()) {
      Run::Deferred d = run->deferred.top();
      run->deferred.pop();
      auto dz = zones_.find(d.event.user_id);
      const AccountType dt = TypeOf(d.event);
      run->Decide(run->users[d.event.user_id], d.event, d.until,
                  dz != zones_.end() ? *dz->second : stream::UtcTimeZone(), dt, true);
    }
    ReplayTotals t = run->totals;
    std::vector<std::uint32_t> counts;
    counts.reserve(run->per_user_day.size());
    std::uint64_t sum = 0;
    for (const auto& [k, n] : run->per_user_day) {
      counts.push_back(n);
      sum += n;
    }
    std::sort(counts.begin(), counts.end());
    t.user_days = counts.size();
    t.users = run->users.size();
    if (!counts.empty()) {
      t.pushes_per_user_day = static_cast<double>(sum) / static_cast<double>(counts.size());
      t.p50_per_user_day = counts[counts.size() / 2];
      t.p99_per_user_day = counts[std::min(counts.size() - 1, counts.size() * 99 / 100)];
      t.max_per_user_day = counts.back();
    }
    out.push_back(t);
  }
  return out;
}

Status ReplayFrom(const std::string& path, Replay& replay) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    fs::path dir = fs::is_directory(fs::path(path) / "log") ? fs::path(path) / "log" : fs::path(path);
    std::uint32_t partitions = 0;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_directory() && name.size() > 1 && name[0] == 'p' &&
          name.find_first_not_of("0123456789", 1) == std::string::npos) {
        ++partitions;
      }
    }
    if (partitions == 0) return Status::InvalidArgument(path + ": no event log partitions (p000, ...) in it");
    eventlog::LogOptions lo;
    lo.dir = dir.string();
    lo.partitions = partitions;
    auto log = eventlog::EventLog::Open(lo);
    if (!log.ok()) return log.status();
    stream::Event e;
    for (PartitionId p = 0; p < partitions; ++p) {
      std::uint64_t from = 0;
      const std::uint64_t end = (*log)->EndOffset(p);
      while (from < end) {
        auto next = (*log)->Read(p, from, 65536, [&](std::uint64_t, Micros, std::string_view payload) {
          if (stream::IsIngestMark(payload)) return true;
          if (stream::IsUserUpdate(payload)) {
            stream::UserUpdate u;
            if (stream::DecodeUserUpdate(payload, &u).ok() && u.tz && u.tenant == replay.tenant()) replay.SetZone(u.user_id, *u.tz);
            return true;
          }
          if (!stream::DecodeEvent(payload, &e).ok()) {
            replay.CountRejected(1);
            return true;
          }
          if (e.tenant == replay.tenant()) replay.Add(e);
          return true;
        });
        if (!next.ok()) return next.status();
        if (*next == from) break;
        from = *next;
      }
    }
    return Status::Ok();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument(path + ": cannot open");
  std::string buf, carry;
  buf.resize(16 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::string chunk = carry;
    chunk.append(buf.data(), static_cast<size_t>(in.gcount()));
    size_t cut = in ? chunk.rfind('\n') : chunk.size();
    if (cut == std::string::npos) {
      carry = std::move(chunk);
      continue;
    }
    carry = chunk.substr(std::min(cut + 1, chunk.size()));
    chunk.resize(cut);
    if (chunk.empty()) continue;
    stream::ParsedBatch batch = stream::ParseEvents(chunk, stream::BatchFormat::kNdjson, replay.tenant(), 100'000'000);
    if (batch.fatal) return Status::InvalidArgument(path + ": " + *batch.fatal);
    replay.CountRejected(batch.rejected.size());
    for (const auto& ev : batch.events) replay.Add(ev);
  }
  return Status::Ok();
}

std::string FormatReplay(const std::vector<std::string>& names, const std::vector<ReplayTotals>& totals,
                         const Replay& replay, double seconds) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "events: %llu replayed, %llu rejected, in %.1f s (%.0f events/s)\n",
                static_cast<unsigned long long>(replay.events()), static_cast<unsigned long long>(replay.rejected()),
                seconds, seconds > 0 ? static_cast<double>(replay.events()) / seconds : 0.0);
  out += line;
  auto row = [&](const char* label, auto value) {
    std::snprintf(line, sizeof line, "  %-40s", label);
    out += line;
    for (size_t i = 0; i < totals.size(); ++i) {
      std::snprintf(line, sizeof line, " %14s", value(totals[i]).c_str());
      out += line;
    }
    out += "\n";
  };
  std::snprintf(line, sizeof line, "  %-40s", "");
  out += line;
  for (const auto& n : names) {
    std::snprintf(line, sizeof line, " %14s", n.c_str());
    out += line;
  }
  out += "\n";
  auto num = [](std::uint64_t v) { return std::to_string(v); };
  row("candidate pushes (sent events)", [&](const ReplayTotals& t) { return num(t.candidates); });
  row("allowed", [&](const ReplayTotals& t) { return num(t.allowed); });
  row("deferred", [&](const ReplayTotals& t) { return num(t.deferred); });
  row("  then allowed", [&](const ReplayTotals& t) { return num(t.deferred_then_allowed); });
  for (size_t r = 1; r < kRuleCount; ++r) {
    bool any = false;
    for (const auto& t : totals) any = any || t.suppressed[r];
    if (!any) continue;
    std::string label = "suppressed: " + std::string(RuleName(static_cast<Rule>(r)));
    row(label.c_str(), [&](const ReplayTotals& t) { return num(t.suppressed[r]); });
  }
  row("users", [&](const ReplayTotals& t) { return num(t.users); });
  row("user-days with a push", [&](const ReplayTotals& t) { return num(t.user_days); });
  row("pushes per user per day: mean", [&](const ReplayTotals& t) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", t.pushes_per_user_day);
    return std::string(b);
  });
  row("pushes per user per day: p50/p99/max", [&](const ReplayTotals& t) {
    return std::to_string(t.p50_per_user_day) + "/" + std::to_string(t.p99_per_user_day) + "/" +
           std::to_string(t.max_per_user_day);
  });
  return out;
}

}  // namespace herald::policy
