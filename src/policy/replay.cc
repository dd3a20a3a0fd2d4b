#include "policy/replay.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <queue>
#include <thread>

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include "log/event_log.h"
#include "policy/policy_store.h"
#include "stream/event_codec.h"
#include "stream/parse.h"
#include "stream/timezones.h"

namespace herald::policy {
namespace {


int LocalDay(Micros t, const cctz::time_zone& tz) {
  using Seconds = std::chrono::time_point<std::chrono::system_clock, cctz::seconds>;
  const cctz::civil_day d(cctz::convert(Seconds(cctz::seconds(t / kMicrosPerSecond)), tz));
  return static_cast<int>(d - cctz::civil_day(2000, 1, 1));
}

}  // namespace

void* HugeAlloc(size_t bytes) {
  constexpr size_t kHuge = 2 << 20;
  bytes = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, bytes);
  if (!p) throw std::bad_alloc();
  ::madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

// Bump allocation on huge pages for the replay's many small vectors; nothing is
// returned before the replay ends (a vector that grows leaves its old storage).
class Arena {
 public:
  ~Arena() {
    for (void* c : chunks_) std::free(c);
  }
  void* Allocate(size_t bytes) {
    bytes = (bytes + 15) & ~size_t{15};
    if (bytes > kChunk) throw std::bad_alloc();
    if (used_ + bytes > kChunk || chunks_.empty()) {
      chunks_.push_back(HugeAlloc(kChunk));
      used_ = 0;
    }
    void* p = static_cast<char*>(chunks_.back()) + used_;
    used_ += bytes;
    return p;
  }

 private:
  static constexpr size_t kChunk = 64 << 20;
  std::vector<void*> chunks_;
  size_t used_ = 0;
};

template <typename T>
struct ArenaAllocator {
  using value_type = T;
  Arena* arena;
  explicit ArenaAllocator(Arena* a) : arena(a) {}
  template <typename U>
  ArenaAllocator(const ArenaAllocator<U>& o) : arena(o.arena) {}
  T* allocate(size_t n) { return static_cast<T*>(arena->Allocate(n * sizeof(T))); }
  void deallocate(T*, size_t) {}
  bool operator==(const ArenaAllocator& o) const { return arena == o.arena; }
};

// A message of the user that never reached them (suppressed) or has not yet
// (deferred): its later events are ignored.
struct ReplayGone {
  std::uint32_t message;
  bool waiting;
};
struct ReplayUser {
  explicit ReplayUser(Arena* a) : follows(ArenaAllocator<FollowPolicy>(a)) {}
  UserPolicy user;
  std::vector<FollowPolicy, ArenaAllocator<FollowPolicy>> follows;  // by account key
  ReplayGone gone[16] = {};           // the latest 16, a ring (message 0: free)
  std::uint8_t gone_next = 0;
  std::uint16_t day = 0;              // local day of the latest allowed push
  std::uint32_t day_pushes = 0;       // allowed pushes on it
};

// Users of a replay, by key, each with one state per run side by side. An open-
// addressing table of keys into blocks of users; both on transparent huge pages
// where the kernel allows, since a replay touches a few random users per event
// across gigabytes and would otherwise pay a page walk for most of them.
class ReplayUsers {
 public:
  explicit ReplayUsers(size_t runs) : runs_(runs), block_users_(runs * (1 << 15)) { Rehash(1 << 20); }
  ~ReplayUsers() {
    for (size_t i = 0; i < n_ * runs_; ++i) At(i)->~ReplayUser();
    for (void* b : blocks_) std::free(b);
    std::free(keys_);
    std::free(index_);
  }
  ReplayUsers(const ReplayUsers&) = delete;
  ReplayUsers& operator=(const ReplayUsers&) = delete;

  // The runs' states of `key` (created on first use).
  ReplayUser* Get(std::uint64_t key) {
    key = key ? key : 1;
    size_t i = Slot(key);
    if (keys_[i] == key) return At(static_cast<size_t>(index_[i]) * runs_);
    if ((n_ + 1) * 2 > cap_) {
      Rehash(cap_ * 2);
      i = Slot(key);
    }
    keys_[i] = key;
    index_[i] = static_cast<std::uint32_t>(n_);
    const size_t first = n_ * runs_;
    if (first + runs_ > blocks_.size() * block_users_) blocks_.push_back(Huge(block_users_ * sizeof(ReplayUser)));
    for (size_t r = 0; r < runs_; ++r) new (At(first + r)) ReplayUser(&arena_);
    ++n_;
    return At(first);
  }
  size_t size() const { return n_; }
  // fn(states of one user) for every user.
  template <typename Fn>
  void Each(Fn fn) {
    for (size_t u = 0; u < n_; ++u) fn(At(u * runs_));
  }

 private:
  static void* Huge(size_t bytes) { return HugeAlloc(bytes); }
  // States per block: a multiple of the run count, so that a user's states
  // never straddle two blocks.
  ReplayUser* At(size_t i) { return static_cast<ReplayUser*>(blocks_[i / block_users_]) + i % block_users_; }
  size_t Slot(std::uint64_t key) const {
    size_t i = static_cast<size_t>(key * 0x9e3779b97f4a7c15ull) & (cap_ - 1);
    while (keys_[i] != 0 && keys_[i] != key) i = (i + 1) & (cap_ - 1);
    return i;
  }
  void Rehash(size_t cap) {
    auto* keys = static_cast<std::uint64_t*>(Huge(cap * sizeof(std::uint64_t)));
    auto* index = static_cast<std::uint32_t*>(Huge(cap * sizeof(std::uint32_t)));
    std::memset(keys, 0, cap * sizeof(std::uint64_t));
    std::swap(keys, keys_);
    std::swap(index, index_);
    const size_t old = cap_;
    cap_ = cap;
    for (size_t i = 0; i < old; ++i) {
      if (!keys[i]) continue;
      const size_t j = Slot(keys[i]);
      keys_[j] = keys[i];
      index_[j] = index[i];
    }
    std::free(keys);
    std::free(index);
  }

  size_t runs_;
  size_t block_users_;
  Arena arena_;  // the users' follows; freed after ~ReplayUsers destroyed the users
  size_t n_ = 0;
  size_t cap_ = 0;
  std::uint64_t* keys_ = nullptr;
  std::uint32_t* index_ = nullptr;
  std::vector<void*> blocks_;
};

struct Replay::Run {
  using Gone = ReplayGone;
  using User = ReplayUser;
  struct Deferred {
    Micros until;
    std::uint64_t seq;
    std::uint64_t user;
    stream::Event event;
    bool operator>(const Deferred& o) const { return until != o.until ? until > o.until : seq > o.seq; }
  };

  PolicyConfig cfg;
  Micros lateness = 0;
  std::priority_queue<Deferred, std::vector<Deferred>, std::greater<>> deferred;
  std::vector<std::uint64_t> per_day_histogram = std::vector<std::uint64_t>(257);  // user-days by pushes
  std::uint64_t seq = 0;
  ReplayTotals totals;

  static FollowPolicy& FollowFor(User& u, std::uint64_t account) { return FollowIn(u.follows, account); }
  static Gone* FindGone(User& u, std::uint32_t message) {
    if (!message) return nullptr;
    for (auto& g : u.gone) {
      if (g.message == message) return &g;
    }
    return nullptr;
  }
  static void SetGone(User& u, std::uint32_t message, bool waiting) {
    if (!message) return;
    if (Gone* g = FindGone(u, message)) {
      g->waiting = waiting;
      return;
    }
    u.gone[u.gone_next] = {message, waiting};
    u.gone_next = static_cast<std::uint8_t>((u.gone_next + 1) % 16);
  }
  void CloseDay(User& u) {
    if (u.day_pushes) ++per_day_histogram[std::min<std::uint32_t>(u.day_pushes, 256)];
    u.day_pushes = 0;
  }

  // Decides a candidate at `now`; `again` when it was deferred before.
  void Decide(std::uint64_t key, User& u, const stream::Event& e, Micros now, const cctz::time_zone& tz,
              AccountType type, bool again) {
    const std::uint64_t account = e.account_id.empty() ? 0 : AccountKey(e.account_id);
    const std::uint32_t message = e.message_id.empty() ? 0 : SmallKey(e.message_id);
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
      SetGone(u, message, true);
      deferred.push({d.until, seq++, key, e});
      return;
    }
    if (d.verdict != Verdict::kAllow) {
      ++totals.suppressed[static_cast<size_t>(d.rule)];
      SetGone(u, message, false);
      return;
    }
    if (Gone* g = FindGone(u, message)) g->waiting = false, g->message = 0;  // delivered after all
    if (again) {
      ++totals.deferred_then_allowed;
    } else {
      ++totals.allowed;
    }
    ApplySend(u.user, f, type, c.lane, message, c.collapse_key, c.idempotency_key, now, tz, cfg);
    const auto day = static_cast<std::uint16_t>(LocalDay(now, tz));
    if (day != u.day) {
      CloseDay(u);
      u.day = day;
    }
    ++u.day_pushes;
  }
};

namespace {
std::uint64_t UserKey(std::string_view user_id) { return AccountKey(user_id); }
}  // namespace

Replay::Replay(std::vector<PolicyConfig> configs, std::string tenant,
               std::unordered_map<std::string, AccountType> accounts, Micros lateness)
    : tenant_(std::move(tenant)), accounts_(std::move(accounts)) {
  for (auto& c : configs) {
    runs_.push_back(std::make_unique<Run>());
    runs_.back()->cfg = std::move(c);
    runs_.back()->lateness = lateness;
  }
  users_ = std::make_unique<ReplayUsers>(runs_.size());
}

Replay::~Replay() = default;

ReplayUser& Replay::UserOf(std::uint64_t key, size_t run) { return users_->Get(key)[run]; }

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

const cctz::time_zone& Replay::ZoneOf(const std::string& user_id) const {
  if (zones_.empty()) return stream::UtcTimeZone();
  auto it = zones_.find(user_id);
  return it != zones_.end() ? *it->second : stream::UtcTimeZone();
}

void Replay::Add(const stream::Event& e) {
  using stream::EventType;
  ++events_;
  for (size_t r = 0; r < runs_.size(); ++r) {
    Run* run = runs_[r].get();
    // Deferred pushes due by now are decided first, in time order.
    while (!run->deferred.empty() && run->deferred.top().until <= e.ts) {
      Run::Deferred d = run->deferred.top();
      run->deferred.pop();
      run->Decide(d.user, UserOf(d.user, r), d.event, d.until, ZoneOf(d.event.user_id), TypeOf(d.event), true);
    }
  }
  switch (e.type) {
    case EventType::kFollow: case EventType::kUnfollow: case EventType::kSent: case EventType::kDelivered:
    case EventType::kOpened: case EventType::kClicked: case EventType::kNotInterested:
    case EventType::kComplaint:
      break;
    default:
      return;
  }
  const cctz::time_zone& tz = ZoneOf(e.user_id);
  const std::uint64_t key = UserKey(e.user_id);
  const std::uint64_t account = e.account_id.empty() ? 0 : AccountKey(e.account_id);
  const std::uint32_t message = e.message_id.empty() ? 0 : SmallKey(e.message_id);
  const AccountType type = TypeOf(e);
  ReplayUser* all = &UserOf(key, 0);  // every run's state of the user, side by side
  for (size_t r = 0; r < runs_.size(); ++r) {
    Run* run = runs_[r].get();
    ReplayUser& u = all[r];
    const bool gone = Run::FindGone(u, message) != nullptr;
    switch (e.type) {
      case EventType::kFollow:
        if (account) ApplyFollow(run->FollowFor(u, account), std::min(e.ts, AttrTime(e.attrs, "followed_at", e.ts)));
        break;
      case EventType::kUnfollow:
        if (account) ApplyUnfollow(run->FollowFor(u, account));
        break;
      case EventType::kSent: case EventType::kDelivered: {
        if (gone) break;
        if (IsRecentPush(u.user, message)) {
          if (e.type == EventType::kDelivered) {
            Fold(u.user, e.ts - run->lateness, run->cfg);
            ApplyDelivered(u.user, message, e.ts, run->cfg);
          }
          break;
        }
        if (e.type == EventType::kDelivered && !message) break;
        ++run->totals.candidates;
        run->Decide(key, u, e, e.ts, tz, type, false);
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
  for (size_t r = 0; r < runs_.size(); ++r) {
    Run* run = runs_[r].get();
    while (!run->deferred.empty()) {
      Run::Deferred d = run->deferred.top();
      run->deferred.pop();
      run->Decide(d.user, UserOf(d.user, r), d.event, d.until, ZoneOf(d.event.user_id), TypeOf(d.event), true);
    }
    users_->Each([&](ReplayUser* u) { run->CloseDay(u[r]); });
    ReplayTotals t = run->totals;
    const auto& h = run->per_day_histogram;
    std::uint64_t days = 0, pushes = 0;
    for (size_t n = 1; n < h.size(); ++n) {
      days += h[n];
      pushes += h[n] * n;
    }
    t.user_days = days;
    t.users = users_->size();
    if (days) {
      t.pushes_per_user_day = static_cast<double>(pushes) / static_cast<double>(days);
      std::uint64_t seen = 0;
      for (size_t n = 1; n < h.size(); ++n) {
        if (!h[n]) continue;
        if (seen < days / 2 + 1 && seen + h[n] >= days / 2 + 1) t.p50_per_user_day = static_cast<std::uint32_t>(n);
        const std::uint64_t p99 = days - days / 100;
        if (seen < p99 && seen + h[n] >= p99) t.p99_per_user_day = static_cast<std::uint32_t>(n);
        seen += h[n];
        t.max_per_user_day = static_cast<std::uint32_t>(n);
      }
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
  // Reading and parsing run on a thread of their own, a chunk ahead of the
  // replay, which is the slower half.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<stream::ParsedBatch> ready;
  bool done = false;
  Status failure;
  std::thread reader([&] {
    std::string buf, carry;
    buf.resize(8 << 20);
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
      stream::ParsedBatch batch =
          stream::ParseEvents(chunk, stream::BatchFormat::kNdjson, replay.tenant(), 100'000'000);
      std::unique_lock<std::mutex> l(mu);
      if (batch.fatal) {
        failure = Status::InvalidArgument(path + ": " + *batch.fatal);
        break;
      }
      cv.wait(l, [&] { return ready.size() < 2; });
      ready.push_back(std::move(batch));
      cv.notify_all();
    }
    std::lock_guard<std::mutex> l(mu);
    done = true;
    cv.notify_all();
  });
  while (true) {
    stream::ParsedBatch batch;
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return !ready.empty() || done; });
      if (ready.empty()) break;
      batch = std::move(ready.front());
      ready.pop_front();
      cv.notify_all();
    }
    replay.CountRejected(batch.rejected.size());
    for (const auto& ev : batch.events) replay.Add(ev);
  }
  reader.join();
  return failure;
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
