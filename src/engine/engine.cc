#include "engine/engine.h"

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <thread>

#include "core/bytes.h"
#include "core/log.h"
#include "engine/digest.h"
#include "store/keys.h"

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include "stream/feature_store.h"
#include "stream/features.h"

namespace herald::engine {

namespace {

// What the shard decided, and for an allowed push what to send.
struct Decided {
  policy::Decision decision;
  std::string explanation;
  std::string payload;
  Micros expires_at = 0;
  model::PushScore score;
  bool scored = false;
};

// The candidate as the CTR model sees it, at `now` in the user's zone.
model::PushContext ContextOf(stream::Partition& p, profile::ProfileStore& profiles, const PushRequest& r,
                             std::string_view title, const cctz::time_zone& tz, Micros now) {
  model::PushContext c;
  c.user_class = std::string(profile::ClassName(profiles.ClassOf(r.tenant, r.user_id, now)));
  c.account_id = r.account_id;
  c.form = FormName(r.message.form);
  const auto local = cctz::convert(std::chrono::system_clock::time_point(std::chrono::microseconds(now)), tz);
  c.local_hour = local.hour();
  c.weekday = static_cast<int>(cctz::get_weekday(cctz::civil_day(local)));  // Monday = 0
  c.title.assign(title);
  profiles.TextField(r.tenant, r.user_id, "os", &c.device);
  if (const stream::UserFeatures* f = p.features().Find(r.tenant, r.user_id)) {
    for (size_t i = 0; i < stream::kTopInterests && c.tag_keys.size() < 3; ++i) {
      if (f->tag_key[i] && f->tag_weight[i] > 0) c.tag_keys.push_back(f->tag_key[i]);
    }
    c.activity_at_hour = stream::ActivityAt(*f, static_cast<size_t>(c.weekday * 24 + c.local_hour), now);
  }
  return c;
}

// The decision for one push on the user's shard; for an allowed push, its
// reservation is made and its payload rendered.
Result<Decided> DecideOnShard(const EngineOptions& o, stream::Partition& p, const PushRequest& r,
                              const policy::AccountView& view, const std::string& message_id, Micros now,
                              bool reserve = true, bool explain = false, const model::PushScore* score = nullptr) {
  policy::PolicyStore& ps = p.Get(o.policy);
  profile::ProfileStore& profiles = p.Get(o.profiles);
  EngineStore& es = p.Get(o.store);
  Status failure;
  // Valid until the store changes: RecordUnsent below comes after its last use.
  const policy::PolicyStore::User* u = ps.Find(r.tenant, r.user_id, &failure);
  if (!failure.ok()) return Status::Unavailable("the user's policy state cannot be read: " + failure.message());
  if (!u && !p.features().Known(r.tenant, r.user_id) && !profiles.Has(r.tenant, r.user_id)) {
    return Status::NotFound("user_id: no user " + r.user_id);
  }
  const cctz::time_zone& tz = p.features().ZoneOf(r.tenant, r.user_id);
  policy::UserPolicy state = u ? u->user : policy::UserPolicy{};
  const policy::FollowPolicy* stored_follow = u ? policy::PolicyStore::FollowOf(*u, view.key) : nullptr;
  policy::FollowPolicy follow = stored_follow ? *stored_follow : policy::FollowPolicy{};
  follow.account = view.key;
  es.ApplyReservations(r.tenant, r.user_id, state, stored_follow ? &follow : nullptr, view.key, tz,
                       *o.policy_config);
  const Message& m = r.message;
  policy::Candidate c;
  c.account = view;
  c.user_hash = policy::SmallKey(r.user_id);
  c.lane = m.transactional() ? policy::Lane::kTransactional : policy::Lane::kMarketing;
  c.urgent = m.urgent;
  c.expires_at = r.expires_at ? r.expires_at : now + static_cast<Micros>(m.ttl_s) * kMicrosPerSecond;
  c.collapse_key = m.collapse_key.empty() ? 0 : policy::SmallKey(m.collapse_key);
  c.idempotency_key = m.idempotency_key.empty() ? 0 : policy::SmallKey(m.idempotency_key);
  Decided d;
  d.expires_at = c.expires_at;
  d.decision = policy::Decide(state, stored_follow ? &follow : nullptr, c, now, tz, *o.policy_config);
  // The sentence is for the single push's answer; campaigns count by rule.
  if (explain) d.explanation = policy::Explain(d.decision, r.account_id, tz, *o.policy_config);
  if (d.decision.verdict != policy::Verdict::kAllow) {
    // Not sent, so not in the log: the decision is recorded here for the user's
    // decisions list.
    if (ps.RecordUnsent(r.tenant, r.user_id, message_id, r.account_id, now, d.decision).ok()) p.MarkChanged();
    return d;
  }
  if (!reserve) return d;
  Reservation res;
  res.message_id = message_id;
  res.account = view.key;
  res.type = view.type;
  res.lane = c.lane;
  res.collapse_key = c.collapse_key;
  res.idempotency_key = c.idempotency_key;
  res.at = now;
  es.Reserve(r.tenant, r.user_id, res);
  auto lookup = [&](std::string_view name, std::string* out) {
    if (name == "user.id") {
      *out = r.user_id;
      return true;
    }
    if (name == "user.name") return profiles.TextField(r.tenant, r.user_id, "name", out);
    if (name.starts_with("user.profile.")) return profiles.TextField(r.tenant, r.user_id, name.substr(13), out);
    return false;
  };
  PayloadIds ids{message_id, r.campaign_id, r.account_id, view.type == policy::AccountType::kService,
                 c.expires_at};
  const std::string title = Render(m.title, m, lookup);
  d.payload = Payload(m, title, Render(m.body, m, lookup), ids);
  d.expires_at = c.expires_at;
  // Scored once, as sent (or as ranked in contention): the vector goes with the
  // push into the log.
  d.score = score ? *score : model::ScorePush(o.ctr, ContextOf(p, profiles, r, title, tz, now), o.feature_bits);
  d.scored = true;
  return d;
}

// The `sent` event and the gateway's message of an allowed push.
void MakeSend(const PushRequest& r, const std::string& message_id, Micros now, Decided& d, stream::Event* sent,
              mqtt::PushMessage* m) {
  sent->tenant = r.tenant;
  sent->user_id = r.user_id;
  sent->type = stream::EventType::kSent;
  sent->ts = now;
  sent->account_id = r.account_id;
  sent->message_id = message_id;
  sent->campaign_id = r.campaign_id;
  sent->attrs = SentAttrs(r.message, d.expires_at);
  if (d.scored) {
    std::vector<std::uint32_t> x;
    x.reserve(d.score.features.size());
    for (const auto& f : d.score.features) x.push_back(f.index);
    AppendScoreAttrs(d.score.pctr, d.score.version, x, &sent->attrs);
  }
  // The payload goes into the log with the push, so that a push whose delivery a
  // crash interrupted can be handed to the gateway again (EngineStore::InDoubt).
  AppendPayloadAttr(d.payload, &sent->attrs);
  m->tenant = r.tenant;
  m->user_id = r.user_id;
  m->message_id = message_id;
  m->payload = std::move(d.payload);
  m->expires_at = d.expires_at;
  m->account_id = r.account_id;
  m->campaign_id = r.campaign_id;
}

}  // namespace

Engine::Engine(const EngineOptions& o) : o_(o) {
  if (o_.engine_config) engine_cfg_ = *o_.engine_config;
  if (o_.ads_config) ads_cfg_ = *o_.ads_config;
  auction_cfg_ = ads_cfg_.Auction();
  auto from = policy::ParseClockTime(engine_cfg_.digest_from), to = policy::ParseClockTime(engine_cfg_.digest_to);
  digest_from_min_ = from.ok() ? *from : 7 * 60 + 30;
  digest_to_min_ = to.ok() && *to > digest_from_min_ ? *to : 22 * 60;
  if (!cctz::load_time_zone(ads_cfg_.budget_tz, &budget_tz_)) budget_tz_ = cctz::utc_time_zone();
  seeded_.assign(o_.pipeline ? o_.pipeline->partitioner().partitions() : 0, 0);
  std::random_device rd;
  seed_ = o_.seed ? o_.seed : (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  auto& m = *o_.metrics;
  const char* help = "Pushes decided by POST /v1/push, by verdict.";
  m_allowed_ = &m.GetCounter("herald_engine_pushes_total", help, {{"decision", "allow"}});
  m_deferred_ = &m.GetCounter("herald_engine_pushes_total", help, {{"decision", "defer"}});
  m_suppressed_ = &m.GetCounter("herald_engine_pushes_total", help, {{"decision", "suppress"}});
  m_dispatched_ = &m.GetCounter("herald_engine_dispatched_total", "Pushes handed to the gateway.");
  m_planned_ = &m.GetCounter("herald_engine_planned_total", "Campaign audience members decided by the planner.");
  m_fired_ = &m.GetCounter("herald_engine_fired_total", "Schedule entries fired when due.");
  m_samples_ = &m.GetCounter("herald_engine_samples_total", "Scored pushes written as CTR samples once their window closed.");
  const char* contention = "Candidates for a user's slot when several were due at once: won, deferred to the next slot, or dropped (their TTL ran out first).";
  m_contention_won_ = &m.GetCounter("herald_engine_contention_total", contention, {{"outcome", "won"}});
  m_contention_deferred_ = &m.GetCounter("herald_engine_contention_total", contention, {{"outcome", "deferred"}});
  m_contention_dropped_ = &m.GetCounter("herald_engine_contention_total", contention, {{"outcome", "dropped"}});
  m_digests_ = &m.GetCounter("herald_engine_digests_total", "Daily digests of subscription accounts sent.");
  m_dispatch_latency_ = &m.GetHistogram("herald_engine_dispatch_seconds",
                                        "From the push request to the gateway's hands (after the sent event is durable).",
                                        {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
}

void Engine::SetDeliver(Deliver deliver, DeliverBatch batch) {
  auto waiting = std::make_shared<std::vector<mqtt::PushMessage>>();
  {
    std::lock_guard<std::mutex> l(deliver_mu_);
    deliver_ = std::make_shared<Deliver>(std::move(deliver));
    deliver_batch_ = batch ? std::make_shared<DeliverBatch>(std::move(batch)) : nullptr;
    waiting->swap(redeliver_);
  }
  // Those recovered before the gateway was there.
  if (!waiting->empty()) (void)o_.background->Post([this, waiting] { DeliverAll(*waiting, 10000, false); });
}

std::string Engine::NewMessageId() {
  // Unique across restarts: a random 64-bit start, then a sequence.
  static const char* kHex = "0123456789abcdef";
  std::uint64_t v = seed_ + sequence_.fetch_add(1) * 0x9e3779b97f4a7c15ULL;
  std::string id("m-");
  for (int i = 15; i >= 0; --i) id.push_back(kHex[(v >> (i * 4)) & 15]);
  return id;
}

std::string Engine::CampaignMessageId(std::string_view campaign_id, std::string_view user_id) const {
  // One push per user and campaign: its id is theirs (the same whichever shard or
  // order planned it), mixed with the engine's seed.
  std::uint64_t h = seed_ ^ 14695981039346656037ull;
  for (std::string_view part : {campaign_id, std::string_view("\0", 1), user_id}) {
    for (unsigned char c : part) {
      h ^= c;
      h *= 1099511628211ull;
    }
  }
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 32;
  static const char* kHex = "0123456789abcdef";
  std::string id("m-");
  for (int i = 15; i >= 0; --i) id.push_back(kHex[(h >> (i * 4)) & 15]);
  return id;
}

void Engine::Push(PushRequest req, std::function<void(Result<PushResult>)> done) {
  auto account = o_.accounts->Find(req.tenant, req.account_id);
  if (!account) return done(Status::NotFound("account_id: no account " + req.account_id));
  const policy::AccountView view = o_.accounts->View(req.tenant, *account);
  const std::string message_id = NewMessageId();
  const Micros now = o_.clock->Now();
  const auto started = std::chrono::steady_clock::now();
  auto shared = std::make_shared<PushRequest>(std::move(req));
  const EngineOptions o = o_;
  o_.pipeline->RunOnUser(
      shared->user_id,
      [o, shared, view, message_id, now](stream::Partition& p) -> Result<Decided> {
        return DecideOnShard(o, p, *shared, view, message_id, now, /*reserve=*/true, /*explain=*/true);
      },
      std::function<void(Result<Decided>)>([this, shared, message_id, now, started, done](Result<Decided> d) {
        if (!d.ok()) return done(d.status());
        PushResult out;
        out.message_id = message_id;
        out.decision = d->decision;
        out.explanation = d->explanation;
        if (d->decision.verdict == policy::Verdict::kDefer) m_deferred_->Inc();
        if (d->decision.verdict == policy::Verdict::kSuppress) {
          m_suppressed_->Inc();
          CountSuppressed(policy::RuleName(d->decision.rule), 1);
        }
        if (d->decision.verdict != policy::Verdict::kAllow) return done(out);
        m_allowed_->Inc();
        stream::Event sent;
        mqtt::PushMessage msg;
        MakeSend(*shared, message_id, now, *d, &sent, &msg);
        std::shared_ptr<Deliver> deliver;
        {
          std::lock_guard<std::mutex> l(deliver_mu_);
          deliver = deliver_;
        }
        auto pending = std::make_shared<mqtt::PushMessage>(std::move(msg));
        o_.pipeline->Ingest({std::move(sent)}, [this, shared, pending, deliver, out, started, done](Status s) {
          if (!s.ok()) {
            // Not in the log: the reservation goes, and nothing is sent.
            auto store = o_.store;
            auto tenant = shared->tenant, user = shared->user_id, id = out.message_id;
            o_.pipeline->RunOnUser(
                user,
                [store, tenant, user, id](stream::Partition& p) -> Status {
                  p.Get(store).Release(tenant, user, id);
                  return Status::Ok();
                },
                std::function<void(Status)>([](Status) {}));
            return done(Status::Unavailable("the push was not stored: " + s.message()));
          }
          if (deliver && *deliver) {
            // The gateway reports the outcome as an event (delivered, queued, ...).
            Status d = (*deliver)(std::move(*pending), [](mqtt::DeliveryOutcome) {});
            if (d.ok()) {
              m_dispatched_->Inc();
              m_dispatch_latency_->Observe(
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
            }
          }
          done(out);
        });
      }));
}

// When an "at" campaign's push to a user is due: the next local HH:MM from `now`.
// ("window" campaigns are timed by the send-time model, in Plan.)
Micros NextLocalMinute(int local_minute, const cctz::time_zone& tz, Micros now) {
  using std::chrono::microseconds;
  using std::chrono::system_clock;
  const auto local = cctz::convert(system_clock::time_point(microseconds(now)), tz);
  for (int day = 0; day < 3; ++day) {
    const cctz::civil_second at(local.year(), local.month(), local.day() + day, local_minute / 60, local_minute % 60,
                                0);
    const Micros t = std::chrono::duration_cast<microseconds>(cctz::convert(at, tz).time_since_epoch()).count();
    if (t >= now) return t;
  }
  return now;
}

// The next local midnight after `now`.
Micros NextLocalMidnight(Micros now, const cctz::time_zone& tz) {
  const auto local = cctz::convert(std::chrono::system_clock::time_point(std::chrono::microseconds(now)), tz);
  const cctz::civil_day tomorrow = cctz::civil_day(local) + 1;
  return std::chrono::duration_cast<std::chrono::microseconds>(
             cctz::convert(cctz::civil_second(tomorrow), tz).time_since_epoch())
      .count();
}

// One partition's share of a campaign: what was decided, and the pushes to send.
struct Engine::Planned {
  std::vector<std::pair<std::string, std::string>> entries;  // schedule and article keys (full) and values
  std::uint64_t targeted = 0, scheduled = 0;
  std::map<std::string, std::uint64_t> suppressed;
  std::vector<stream::Event> sents;
  std::vector<mqtt::PushMessage> pushes;
};

void Engine::CreateCampaign(const std::string& tenant, Campaign c, const std::string& idempotency_key,
                            std::function<void(Result<Campaign>, bool, size_t)> done) {
  auto account = o_.accounts->Find(tenant, c.account_id);
  if (!account) return done(Status::NotFound("account_id: no account " + c.account_id), false, 0);
  const std::string type(policy::AccountTypeName(account->type));
  if (c.schedule == "digest" && account->type != policy::AccountType::kSubscription) {
    return done(Status::InvalidArgument("schedule.type: a digest is for a subscription account's articles; " +
                                        c.account_id + " is a " + type + " account"),
                false, 0);
  }
  if (c.bid > 0 && account->type != policy::AccountType::kAd) {
    return done(Status::InvalidArgument("bid: only an ad account's campaign has a bid and a budget; " + c.account_id +
                                        " is a " + type + " account"),
                false, 0);
  }
  if (account->type == policy::AccountType::kAd && c.bid <= 0) {
    return done(Status::InvalidArgument("bid: an ad account's campaign needs a bid (per click) and a budget (per day)"),
                false, 0);
  }
  if (c.schedule != "digest" && account->type == policy::AccountType::kSubscription) {
    return done(Status::InvalidArgument("schedule.type: " + c.account_id +
                                        " is a subscription account: its messages go into the daily digest "
                                        "(schedule {\"type\":\"digest\"})"),
                false, 0);
  }
  std::shared_ptr<const profile::Segment> segment;
  if (c.target.kind == Target::kSegment) {
    if (auto saved = o_.segments ? o_.segments->Find(tenant, c.target.segment) : std::nullopt) {
      segment = std::make_shared<const profile::Segment>(std::move(saved->compiled));
    } else {
      size_t pos = 0;
      auto compiled = profile::Segment::Compile(c.target.segment, &pos);
      if (!compiled.ok()) {
        return done(Status::InvalidArgument("target.segment: " + compiled.status().message()), false, pos);
      }
      segment = std::make_shared<const profile::Segment>(std::move(*compiled));
    }
  }
  c.created_at = o_.clock->Now();
  c.status = "planning";
  bool created = false;
  auto stored = o_.campaigns->Create(tenant, std::move(c), idempotency_key, &created);
  if (!stored.ok()) return done(stored.status(), false, 0);
  if (created) Plan(tenant, *stored, segment);
  done(std::move(stored), created, 0);
}

void Engine::Plan(const std::string& tenant, const Campaign& c, std::shared_ptr<const profile::Segment> segment) {
  auto message = ParseMessage(nlohmann::json::parse(c.message_json));
  auto account = o_.accounts->Find(tenant, c.account_id);
  if (!message.ok() || !account) return;  // checked when created
  const policy::AccountView view = o_.accounts->View(tenant, *account);
  auto request = std::make_shared<PushRequest>();
  request->tenant = tenant;
  request->account_id = c.account_id;
  request->campaign_id = c.id;
  request->message = std::move(*message);
  const Target target = c.target;
  const Micros now = o_.clock->Now();
  const Campaign timing = c;
  const EngineOptions o = o_;
  const std::string id = c.id;
  auto progress = ProgressOf(tenant, id, /*create=*/true);
  progress->partitions = o_.pipeline->partitioner().partitions();
  o_.pipeline->RunOnEveryPartition(
      [this, o, request, view, target, segment, now, timing, progress](stream::Partition& p) -> std::shared_ptr<Planned> {
        auto out = std::make_shared<Planned>();
        profile::ProfileStore& profiles = p.Get(o.profiles);
        std::vector<std::string> users;
        auto add = [&](std::string_view u) {
          users.emplace_back(u);
          return true;
        };
        switch (target.kind) {
          case Target::kFollowersOf: profiles.ForEachFollower(request->tenant, target.account_id, add); break;
          case Target::kSegment: profiles.Match(*segment, request->tenant, now, add); break;
          case Target::kUsers:
            for (const auto& u : target.users) {
              if (o.pipeline->partitioner().PartitionOf(u) == p.id()) users.push_back(u);
            }
            break;
        }
        PushRequest r = *request;
        // Ads go through the schedule even when sent now: they are auctioned and
        // paced when they fire. A digest campaign leaves articles.
        const bool digest = timing.schedule == "digest";
        const bool later = timing.schedule != "now" || view.type == policy::AccountType::kAd || digest;
        StoredArticle article;
        article.article = {request->campaign_id, request->account_id, request->message.title,
                           request->message.deep_link};
        article.form = FormName(request->message.form);
        article.created_at = now;
        article.expires_at = now + static_cast<Micros>(request->message.ttl_s) * kMicrosPerSecond;
        const std::string article_prefix = store::PartitionTagPrefix(p.id(), store::StateTag::kEngineArticle);
        std::mt19937_64 rng(seed_ ^ (static_cast<std::uint64_t>(p.id()) << 32) ^ static_cast<std::uint64_t>(now));
        const std::string prefix = store::PartitionTagPrefix(p.id(), store::StateTag::kEngineSchedule);
        for (const std::string& u : users) {
          if ((++out->targeted & 1023) == 0) progress->decided += 1024;  // progress, every 1024 users
          r.user_id = u;
          if (digest) {
            // The article waits for the user's next digest, whose entry (one a day)
            // is written with it.
            if (!p.features().Known(r.tenant, u) && !profiles.Has(r.tenant, u)) {
              ++out->suppressed["unknown_user"];
              continue;
            }
            std::int64_t day = 0;
            const cctz::time_zone& tz = p.features().ZoneOf(r.tenant, u);
            Micros due = DigestDue(p, r.tenant, u, now, tz, &day);
            std::string mid = DigestMessageId(r.tenant, u, day);
            if (p.Get(o.store).Find(r.tenant, mid).ok()) {
              // Today's digest went already: the article waits for tomorrow's.
              due = DigestDue(p, r.tenant, u, NextLocalMidnight(now, tz), tz, &day);
              mid = DigestMessageId(r.tenant, u, day);
            }
            out->entries.emplace_back(article_prefix + ArticleKey(r.tenant, u, r.campaign_id), EncodeArticle(article));
            ScheduleEntry e{due, mid, r.tenant, u, kDigestAccount, ""};
            out->entries.emplace_back(prefix + ScheduleKey(due, mid), EncodeScheduleEntry(e));
            ++out->scheduled;
            continue;
          }
          const std::string mid = CampaignMessageId(r.campaign_id, u);
          auto d = DecideOnShard(o, p, r, view, mid, now, /*reserve=*/!later);
          if (later && d.ok() && d->decision.verdict != policy::Verdict::kSuppress) {
            // Timing: the user's local time, or the best hour of the window; the
            // policy is checked again when the entry fires.
            const cctz::time_zone& tz = p.features().ZoneOf(r.tenant, u);
            Micros due = now;
            if (timing.schedule == "at") {
              due = NextLocalMinute(timing.local_minute, tz, now);
            } else if (timing.schedule == "window") {
              // The golden window: Thompson sampling over the window's hours, on the
              // user's evidence over that of the tenant's users of the user's class
              // (the window's start without a send-time model).
              due = std::max(timing.window_from, now);
              if (o.send_time) {
                model::SendTimeStore& st = p.Get(*o.send_time);
                model::SendTimeUser evidence = st.Find(r.tenant, u).value_or(model::SendTimeUser{});
                evidence.group = st.Group(r.tenant, profile::ClassName(profiles.ClassOf(r.tenant, u, now)));
                due = model::BestTimeInWindow(st.model(), evidence, due, timing.window_to, tz, rng);
              }
            }
            if (d->decision.verdict == policy::Verdict::kDefer) due = std::max(due, d->decision.until);
            ScheduleEntry e{due, mid, r.tenant, u, r.account_id, r.campaign_id};
            out->entries.emplace_back(prefix + ScheduleKey(due, mid), EncodeScheduleEntry(e));
            ++out->scheduled;
            continue;
          }
          if (!d.ok()) {
            ++out->suppressed[d.status().code() == Code::kNotFound ? "unknown_user" : "unavailable"];
            continue;
          }
          if (d->decision.verdict != policy::Verdict::kAllow) {
            ++out->suppressed[std::string(policy::RuleName(d->decision.rule))];
            continue;
          }
          MakeSend(r, mid, now, *d, &out->sents.emplace_back(), &out->pushes.emplace_back());
        }
        progress->decided += out->targeted & 1023;
        ++progress->partitions_done;
        return out;
      },
      std::function<void(Result<std::vector<std::shared_ptr<Planned>>>)>(
          [this, tenant, id](Result<std::vector<std::shared_ptr<Planned>>> parts) {
            auto all = std::make_shared<Planned>();
            if (parts.ok()) {
              for (auto& p : *parts) {
                if (!p) continue;
                m_planned_->Inc(p->targeted);
                for (const auto& [rule, n] : p->suppressed) CountSuppressed(rule, n);
              }
              for (auto& p : *parts) {
                if (!p) continue;
                all->targeted += p->targeted;
                all->scheduled += p->scheduled;
                std::move(p->entries.begin(), p->entries.end(), std::back_inserter(all->entries));
                for (const auto& [rule, n] : p->suppressed) all->suppressed[rule] += n;
                std::move(p->sents.begin(), p->sents.end(), std::back_inserter(all->sents));
                std::move(p->pushes.begin(), p->pushes.end(), std::back_inserter(all->pushes));
              }
            }
            // Off the shard: the log append, the deliveries and the record's write.
            if (!o_.background->Post([this, tenant, id, all] { Send(tenant, id, all); })) return;
          }));
}

void Engine::Send(const std::string& tenant, const std::string& id, std::shared_ptr<Planned> planned) {
  bool cancelled;
  {
    std::lock_guard<std::mutex> l(cancel_mu_);
    cancelled = cancelled_.erase(store::TenantKey(tenant, id)) > 0;
  }
  if (!cancelled && !planned->entries.empty()) {
    // A campaign for later: its entries are written durably, then every partition
    // arms its timer.
    Status written = Status::Ok();
    for (size_t i = 0; i < planned->entries.size() && written.ok(); i += 5000) {
      store::WriteBatch b;
      for (size_t k = i; k < std::min(planned->entries.size(), i + 5000); ++k) {
        b.Put(o_.state_cf, planned->entries[k].first, planned->entries[k].second);
      }
      written = o_.db->Write(std::move(b));
    }
    o_.pipeline->RunOnEveryPartition([this](stream::Partition& p) -> Status {
      // The new entries may be due before where the scans start (planning took
      // a while): the next scan starts from the beginning.
      p.Get(o_.schedule).scan_from = 0;
      Arm(p);
      return Status::Ok();
    }, std::function<void(Result<std::vector<Status>>)>([](Result<std::vector<Status>>) {}));
    const Micros at = o_.clock->Now();
    (void)o_.campaigns->Update(tenant, id, [&](Campaign& c) {
      c.targeted = planned->targeted;
      c.suppressed = planned->suppressed;
      c.scheduled = written.ok() ? planned->scheduled : 0;
      c.finished_at = at;
      c.status = written.ok() ? "scheduled" : "failed";
      if (!written.ok()) c.error = "the schedule was not stored: " + written.message();
    });
    return;
  }
  const size_t n = planned->sents.size();
  Status appended = Status::Ok();
  if (!cancelled && n) {
    std::promise<Status> durable;
    o_.pipeline->Ingest(std::move(planned->sents), [&](Status s) { durable.set_value(s); });
    appended = durable.get_future().get();
  }
  if (cancelled || !appended.ok()) {
    // Nothing of it is in the log: the reservations go.
    auto store = o_.store;
    for (const auto& m : planned->pushes) {
      o_.pipeline->RunOnUser(
          m.user_id,
          [store, m](stream::Partition& p) -> Status {
            p.Get(store).Release(m.tenant, m.user_id, m.message_id);
            return Status::Ok();
          },
          std::function<void(Status)>([](Status) {}));
    }
  } else {
    auto progress = ProgressOf(tenant, id, /*create=*/false);
    DeliverAll(planned->pushes, 10000, /*observe=*/true, progress ? &progress->dispatched : nullptr);
  }
  const Micros now = o_.clock->Now();
  Status s = o_.campaigns->Update(tenant, id, [&](Campaign& c) {
    c.targeted = planned->targeted;
    c.suppressed = planned->suppressed;
    c.finished_at = now;
    if (cancelled) {
      c.status = "cancelled";
    } else if (!appended.ok()) {
      c.status = "failed";
      c.error = "the pushes were not stored: " + appended.message();
    } else if (planned->targeted == 0) {
      c.status = "failed";
      c.error = "target: the audience is empty";
    } else {
      c.status = "sent";
      c.sent = n;
    }
  });
  if (!s.ok()) log::Error("campaign record not written", {{"campaign", id}, {"error", s.message()}});
}

std::shared_ptr<Engine::Progress> Engine::ProgressOf(const std::string& tenant, const std::string& id, bool create) {
  std::lock_guard<std::mutex> l(progress_mu_);
  const std::string key = store::TenantKey(tenant, id);
  auto it = progress_.find(key);
  if (it != progress_.end()) return it->second;
  if (!create) return nullptr;
  if (progress_.size() >= 10000) {
    // Bounded: a campaign whose planning finished goes (running ones stay).
    for (auto i = progress_.begin(); i != progress_.end(); ++i) {
      if (i->second->partitions_done >= i->second->partitions) {
        progress_.erase(i);
        break;
      }
    }
  }
  return progress_[key] = std::make_shared<Progress>();
}

void Engine::DeliverAll(std::vector<mqtt::PushMessage>& pushes, int attempts, bool observe,
                        std::atomic<std::uint64_t>* dispatched) {
  std::shared_ptr<Deliver> deliver;
  std::shared_ptr<DeliverBatch> batch;
  {
    std::lock_guard<std::mutex> l(deliver_mu_);
    deliver = deliver_;
    batch = deliver_batch_;
  }
  if (batch && *batch) {
    // In batches of 512, one hand-over to the gateway's loop each.
    for (size_t i = 0; i < pushes.size(); i += 512) {
      const auto started = std::chrono::steady_clock::now();
      std::vector<mqtt::PushMessage> chunk(std::make_move_iterator(pushes.begin() + static_cast<long>(i)),
                                           std::make_move_iterator(pushes.begin() + static_cast<long>(std::min(pushes.size(), i + 512))));
      const size_t n = chunk.size();
      for (int attempt = 0; attempt < attempts; ++attempt) {
        if ((*batch)(chunk).code() != Code::kResourceExhausted) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the gateway's queue is full
      }
      m_dispatched_->Inc(n);
      if (dispatched) *dispatched += n;
      if (observe) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        for (size_t k = 0; k < n; ++k) m_dispatch_latency_->Observe(s);
      }
    }
    return;
  }
  for (auto& m : pushes) {
    if (!deliver || !*deliver) break;
    const auto started = std::chrono::steady_clock::now();
    for (int attempt = 0; attempt < attempts; ++attempt) {
      if ((*deliver)(m, [](mqtt::DeliveryOutcome) {}).code() != Code::kResourceExhausted) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the gateway's queue is full
    }
    m_dispatched_->Inc();
    if (dispatched) ++*dispatched;
    if (observe) {
      m_dispatch_latency_->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
  }
}

void Engine::CampaignStatus(const std::string& tenant, const std::string& id,
                            std::function<void(Result<std::string>)> done) {
  auto c = o_.campaigns->Find(tenant, id);
  if (!c) return done(Status::NotFound("no campaign " + id));
  auto store = o_.store;
  PlanProgress progress;
  if (auto live = ProgressOf(tenant, id, /*create=*/false)) {
    progress = {live->partitions.load(), live->partitions_done.load(), live->decided.load(), live->dispatched.load()};
  }
  if (c->status != "planning") {
    // Done (or planned before a restart): the whole audience was decided.
    progress.partitions = progress.partitions_done = o_.pipeline->partitioner().partitions();
    progress.decided = c->targeted;
    if (c->status == "sent") progress.dispatched = std::max(progress.dispatched, c->sent);
  }
  o_.pipeline->RunOnEveryPartition(
      [store, tenant, id](stream::Partition& p) -> Funnel { return p.Get(store).FunnelOf(tenant, id); },
      std::function<void(Result<std::vector<Funnel>>)>([c = *c, done, progress](Result<std::vector<Funnel>> parts) {
        if (!parts.ok()) return done(parts.status());
        Funnel all;
        for (const auto& f : *parts) all += f;
        done(CampaignJson(c, all, progress));
      }));
}

Status Engine::Cancel(const std::string& tenant, const std::string& id) {
  auto c = o_.campaigns->Find(tenant, id);
  if (!c) return Status::NotFound("no campaign " + id);
  if (c->status == "scheduled") {
    // Its entries are removed, unsent, when they come due (Fire checks the status).
    return o_.campaigns->Update(tenant, id, [](Campaign& x) { x.status = "cancelled"; });
  }
  if (c->status != "planning") {
    return Status::FailedPrecondition("the campaign is " + c->status +
                                      ": only a campaign planning or scheduled can be cancelled");
  }
  std::lock_guard<std::mutex> l(cancel_mu_);
  cancelled_.insert(store::TenantKey(tenant, id));
  return Status::Ok();
}

std::string ScheduleKey(Micros due, std::string_view message_id) {
  std::string k;
  ByteWriter w(&k);
  w.FixedBE<std::uint64_t>(static_cast<std::uint64_t>(due));
  k.append(message_id);
  return k;
}

std::string EncodeScheduleEntry(const ScheduleEntry& e) {
  std::string v;
  ByteWriter w(&v);
  const bool held = e.expires_at || e.holds;
  w.Byte(held ? 2 : 1);
  w.String(e.tenant);
  w.String(e.user_id);
  w.String(e.account_id);
  w.String(e.campaign_id);
  if (held) {
    w.Zigzag(e.expires_at);
    w.Varint(e.holds);
  }
  return v;
}

bool DecodeScheduleEntry(std::string_view suffix, std::string_view value, ScheduleEntry* e) {
  if (suffix.size() < 9) return false;
  ByteReader k(suffix.substr(0, 8));
  std::uint64_t due = 0;
  if (!k.FixedBE(&due)) return false;
  e->due = static_cast<Micros>(due);
  e->message_id.assign(suffix.substr(8));
  ByteReader r(value);
  std::uint8_t v = 0;
  if (!(r.Byte(&v) && (v == 1 || v == 2) && r.String(&e->tenant) && r.String(&e->user_id) &&
        r.String(&e->account_id) && r.String(&e->campaign_id))) {
    return false;
  }
  std::uint64_t holds = 0;
  if (v == 2 && !(r.Zigzag(&e->expires_at) && r.Varint(&holds))) return false;
  e->holds = static_cast<std::uint32_t>(holds);
  return r.done();
}

std::shared_ptr<const Message> Engine::MessageOf(const std::string& tenant, const std::string& campaign_id) {
  const std::string key = store::TenantKey(tenant, campaign_id);
  {
    std::lock_guard<std::mutex> l(messages_mu_);
    auto it = messages_.find(key);
    if (it != messages_.end()) return it->second;
  }
  auto c = o_.campaigns->Find(tenant, campaign_id);
  if (!c) return nullptr;
  auto m = ParseMessage(nlohmann::json::parse(c->message_json));
  if (!m.ok()) return nullptr;
  auto shared = std::make_shared<const Message>(std::move(*m));
  std::lock_guard<std::mutex> l(messages_mu_);
  messages_[key] = shared;
  return shared;
}

void Engine::Arm(stream::Partition& p) {
  ScheduleState& s = p.Get(o_.schedule);
  if (s.firing) return;  // Fire arms again when it is done
  Micros next = 0;
  const std::string prefix = store::PartitionTagPrefix(p.id(), store::StateTag::kEngineSchedule);
  (void)o_.db->ScanFrom(o_.state_cf, prefix, prefix + ScheduleKey(s.scan_from, ""), [&](std::string_view key, std::string_view value) {
    ScheduleEntry e;
    if (!DecodeScheduleEntry(key.substr(prefix.size()), value, &e)) return true;
    if (s.in_flight.count(e.message_id)) return true;
    next = e.due;
    return false;
  });
  if (!next || (s.armed && s.armed <= next)) return;
  if (s.timer) p.Cancel(s.timer);
  s.armed = next;
  s.timer = p.PostAt(next, [this](stream::Partition& part) {
    ScheduleState& st = part.Get(o_.schedule);
    st.timer = 0;
    st.armed = 0;
    Fire(part);
  });
}

// What one firing of a partition's schedule does, gathered for after the sends
// are durable: the entries' deletions and re-additions, the sent events and
// pushes, the suppressions by campaign and rule, and the ads' charges
// committed (refunded when the sends are not stored).
struct Engine::FireBatch {
  std::shared_ptr<store::WriteBatch> batch = std::make_shared<store::WriteBatch>();
  std::shared_ptr<std::vector<stream::Event>> sents = std::make_shared<std::vector<stream::Event>>();
  std::shared_ptr<std::vector<mqtt::PushMessage>> pushes = std::make_shared<std::vector<mqtt::PushMessage>>();
  std::map<std::string, std::uint64_t> suppressed;  // tenant \0 campaign \0 rule
  struct Charge {
    std::string key;  // tenant \0 campaign
    std::int64_t day = 0;
    double charge = 0;
  };
  std::vector<Charge> charges;
  std::string prefix;  // the schedule's
  std::mt19937_64 rng;
  void Suppress(const ScheduleEntry& e, std::string_view rule) {
    if (e.campaign_id.empty()) return;
    std::string k = store::TenantKey(e.tenant, e.campaign_id);
    k.push_back('\0');
    k += rule;
    ++suppressed[k];
  }
};

// One candidate for a user's slot.
struct Engine::Contender {
  ScheduleEntry* e = nullptr;
  PushRequest r;
  policy::AccountView view;
  double quality = 1, pack = 1;
  double bid = 0, budget = 0;  // an ad's
  bool ad = false, digest = false;
  Decided d;  // the policy's (nothing reserved yet)
  model::PushScore score;
  bool scored = false;
  Candidate candidate;
  // A digest's articles, best first, with their scores, and their records.
  std::vector<Article> articles;
  std::vector<MessageRecord::Article> article_scores;
  std::vector<std::string> article_keys;
  bool more_articles = false;  // some were not listed: they wait for the next digest
};

void Engine::Fire(stream::Partition& p) {
  ScheduleState& s = p.Get(o_.schedule);
  const Micros now = p.clock().Now();
  const std::string prefix = store::PartitionTagPrefix(p.id(), store::StateTag::kEngineSchedule);
  std::vector<ScheduleEntry> due;
  (void)o_.db->ScanFrom(o_.state_cf, prefix, prefix + ScheduleKey(s.scan_from, ""), [&](std::string_view key, std::string_view value) {
    ScheduleEntry e;
    if (!DecodeScheduleEntry(key.substr(prefix.size()), value, &e)) return true;
    if (e.due > now || due.size() >= 2000) return false;
    if (!s.in_flight.count(e.message_id)) due.push_back(std::move(e));
    return true;
  });
  if (due.empty()) return Arm(p);
  // Entries before the first due one were fired and deleted: later scans skip them.
  s.scan_from = std::max(s.scan_from, due.front().due);
  FireBatch out;
  out.prefix = prefix;
  out.rng.seed(seed_ ^ static_cast<std::uint64_t>(now) ^ (static_cast<std::uint64_t>(p.id()) << 40));
  auto fired = std::make_shared<std::vector<std::string>>();
  // The user's entries due together contend for the user's slot.
  std::vector<std::vector<ScheduleEntry*>> users;
  std::unordered_map<std::string, size_t> user_index;
  for (ScheduleEntry& e : due) {
    s.in_flight.insert(e.message_id);
    fired->push_back(e.message_id);
    out.batch->Delete(o_.state_cf, prefix + ScheduleKey(e.due, e.message_id));
    auto [it, fresh] = user_index.try_emplace(store::TenantKey(e.tenant, e.user_id), users.size());
    if (fresh) users.emplace_back();
    users[it->second].push_back(&e);
  }
  for (auto& entries : users) Contend(p, entries, now, out);
  m_fired_->Inc(due.size());
  for (const auto& [k, n] : out.suppressed) {
    const size_t a = k.find('\0'), b = k.find('\0', a + 1);
    CountSuppressed(std::string_view(k).substr(b + 1), n);
    (void)o_.campaigns->Update(k.substr(0, a), k.substr(a + 1, b - a - 1),
                               [&](Campaign& c) { c.suppressed[k.substr(b + 1)] += n; });
  }
  s.firing = true;
  const PartitionId part = p.id();
  auto batch = out.batch;
  auto pushes = out.pushes;
  auto charges = std::make_shared<std::vector<FireBatch::Charge>>(std::move(out.charges));
  auto finish = [this, part, batch, pushes, fired, charges](Status appended) mutable {
    // The sends are durable (or were not stored): the fired entries go, then the
    // partition arms its next timer.
    if (!appended.ok()) {
      log::Error("scheduled pushes not stored; they fire again", {{"partition", part}, {"error", appended.message()}});
      batch = std::make_shared<store::WriteBatch>();
      for (const auto& c : *charges) CommitAd(c.key, c.day, part, -c.charge);
    } else {
      DeliverAll(*pushes, 1000, /*observe=*/false);
    }
    const bool again = !appended.ok();
    o_.db->WriteAsync(std::move(*batch), [this, part, fired, again](Status written) {
      auto h = o_.schedule;
      o_.pipeline->RunOnPartition(
          part,
          [this, h, fired, again, failed = !written.ok()](stream::Partition& p) -> Status {
            ScheduleState& st = p.Get(h);
            for (const auto& id : *fired) st.in_flight.erase(id);
            if (again || failed) st.scan_from = 0;  // they fire again: scan from the start
            st.firing = false;
            Arm(p);
            return Status::Ok();
          },
          std::function<void(Status)>([](Status) {}));
    });
  };
  if (out.sents->empty()) return finish(Status::Ok());
  o_.pipeline->Ingest(std::move(*out.sents), [finish](Status st) mutable { finish(st); });
}

void Engine::Contend(stream::Partition& p, std::vector<ScheduleEntry*>& entries, Micros now, FireBatch& out) {
  ScheduleState& s = p.Get(o_.schedule);
  EngineStore& es = p.Get(o_.store);
  auto again = [&](const ScheduleEntry& e, Micros at) {
    out.batch->Put(o_.state_cf, out.prefix + ScheduleKey(at, e.message_id), EncodeScheduleEntry(e));
  };
  // A candidate held back after the policy allowed it (it lost the slot, or an ad
  // was paced): tried again at `at` while its message lives (its life counted from
  // the first firing), else dropped. The decision is recorded for the user's
  // decisions list, a paced ad's only the first time.
  auto hold = [&](Contender& c, policy::Rule rule, Micros at, double value, double winner, std::uint32_t n) {
    policy::Decision d;
    d.rule = rule;
    d.count = n;
    d.weight = value;
    d.rate = winner;
    const Micros expires = c.d.expires_at;
    d.since = expires;
    ScheduleEntry e = *c.e;
    e.expires_at = expires;
    ++e.holds;
    if (!expires || at < expires) {
      d.verdict = policy::Verdict::kDefer;
      d.until = at;
      e.due = at;
      again(e, at);
    } else {
      d.verdict = policy::Verdict::kSuppress;
      out.Suppress(e, policy::RuleName(rule));
      if (c.digest) DigestTomorrow(p, e, now, out);
    }
    const bool record = rule == policy::Rule::kContention || e.holds == 1 || d.verdict == policy::Verdict::kSuppress;
    if (record &&
        p.Get(o_.policy).RecordUnsent(c.r.tenant, c.r.user_id, c.e->message_id, c.r.account_id, now, d).ok()) {
      p.MarkChanged();
    }
    return d.verdict == policy::Verdict::kDefer;
  };

  std::vector<Contender> cs;
  cs.reserve(entries.size());
  for (ScheduleEntry* e : entries) {
    Contender c;
    c.e = e;
    if (e->campaign_id.empty() && e->account_id == kDigestAccount) {
      if (!PrepareDigest(p, *e, now, &c, out)) continue;
    } else {
      auto campaign = o_.campaigns->Find(e->tenant, e->campaign_id);
      auto message = MessageOf(e->tenant, e->campaign_id);
      auto account = o_.accounts->Find(e->tenant, e->account_id);
      if (!campaign || campaign->status == "cancelled" || !message || !account) continue;  // removed, never sent
      if (e->due <= s.recovered_at && es.Find(e->tenant, e->message_id).ok()) continue;  // sent before a crash
      c.r.tenant = e->tenant;
      c.r.user_id = e->user_id;
      c.r.account_id = e->account_id;
      c.r.campaign_id = e->campaign_id;
      c.r.message = *message;
      c.view = o_.accounts->View(e->tenant, *account);
      c.quality = account->quality;
      c.pack = account->PackFactor(now);
      c.ad = account->type == policy::AccountType::kAd;
      c.bid = campaign->bid;
      c.budget = campaign->budget;
    }
    c.r.expires_at = e->expires_at;  // held before: its first firing's expiry
    auto d = DecideOnShard(o_, p, c.r, c.view, e->message_id, now, /*reserve=*/false);
    if (!d.ok()) continue;
    if (d->decision.verdict == policy::Verdict::kDefer && d->decision.until > now) {
      // Deferred at fire time: it goes back into the schedule at the rule's end.
      ScheduleEntry later = *e;
      later.due = d->decision.until;
      again(later, later.due);
      continue;
    }
    if (d->decision.verdict != policy::Verdict::kAllow) {
      out.Suppress(*e, policy::RuleName(d->decision.rule));
      if (c.digest) DigestTomorrow(p, *e, now, out);  // its articles wait for the next day's
      continue;
    }
    c.d = std::move(*d);
    cs.push_back(std::move(c));
  }
  if (cs.empty()) return;
  // Alone and organic: no auction.
  const bool auction = cs.size() > 1 || cs[0].ad;
  std::vector<Candidate> candidates;
  std::vector<size_t> index;  // candidates[i] is cs[index[i]]
  std::vector<std::pair<size_t, double>> reserved;  // ads admitted: their largest charge, set aside
  double fraction = 0;
  const std::int64_t budget_day = BudgetDay(now, &fraction);
  profile::ProfileStore& profiles = p.Get(o_.profiles);
  for (size_t i = 0; i < cs.size(); ++i) {
    Contender& c = cs[i];
    if (!auction) {
      index.push_back(i);
      candidates.emplace_back();
      break;
    }
    if (!c.scored) {
      const cctz::time_zone& tz = p.features().ZoneOf(c.r.tenant, c.r.user_id);
      auto lookup = [&](std::string_view name, std::string* v) {
        if (name == "user.id") {
          *v = c.r.user_id;
          return true;
        }
        if (name == "user.name") return profiles.TextField(c.r.tenant, c.r.user_id, "name", v);
        if (name.starts_with("user.profile.")) return profiles.TextField(c.r.tenant, c.r.user_id, name.substr(13), v);
        return false;
      };
      const std::string title = Render(c.r.message.title, c.r.message, lookup);
      c.score = model::ScorePush(o_.ctr, ContextOf(p, profiles, c.r, title, tz, now), o_.feature_bits);
      c.scored = true;
    }
    Candidate& k = c.candidate;
    k.pctr = std::clamp(c.score.pctr, 0.0, 1.0);
    k.pack = c.pack;
    if (c.ad) {
      k.ad = true;
      k.bid = c.bid;
      k.quality = c.quality;
      k.complaint_rate = c.view.complaint_rate;
      Status failure;
      if (const auto* u = p.Get(o_.policy).Find(c.r.tenant, c.r.user_id, &failure)) {
        if (const auto* f = policy::PolicyStore::FollowOf(*u, c.view.key)) k.own_complaints = f->complaints;
      }
      // Paced: the ad enters the auction only when its budget and pacing let it,
      // its largest charge set aside until the auction prices it.
      const std::string key = store::TenantKey(c.r.tenant, c.r.campaign_id);
      const double draw = std::uniform_real_distribution<double>(0, 1)(out.rng);
      const double most = c.bid * k.pctr;
      const policy::Rule held = AdmitAd(key, c.budget, now, budget_day, fraction, most, draw, p.id());
      if (held != policy::Rule::kNone) {
        const Micros gap = static_cast<Micros>(engine_cfg_.slot_gap_s) * kMicrosPerSecond;
        Micros at = now + std::uniform_int_distribution<Micros>(kMicrosPerMinute, std::max(gap, kMicrosPerMinute))(out.rng);
        if (held == policy::Rule::kAdBudget) {
          at = now + static_cast<Micros>((1 - fraction) * kMicrosPerDay) + kMicrosPerMinute;  // the next budget day
        }
        hold(c, held, at, 0, 0, static_cast<std::uint32_t>(cs.size()));
        continue;
      }
      reserved.emplace_back(i, most);
    } else {
      k.weight = c.d.decision.weight;
    }
    index.push_back(i);
    candidates.push_back(k);
  }
  if (candidates.empty()) return;
  AuctionResult result;
  result.winner = 0;
  if (auction) result = RunAuction(candidates, auction_cfg_);
  Contender* w = result.winner >= 0 ? &cs[index[static_cast<size_t>(result.winner)]] : nullptr;
  // The ads' set-aside charges: the winner's becomes its price's, the others' go back.
  for (const auto& [i, most] : reserved) {
    const Contender& c = cs[i];
    const double charge = &c == w ? result.charge : 0;
    CommitAd(store::TenantKey(c.r.tenant, c.r.campaign_id), budget_day, p.id(), charge - most);
  }
  std::optional<Result<Decided>> d;
  if (w) {
    // The winner takes the slot: reserved, rendered and sent.
    d = DecideOnShard(o_, p, w->r, w->view, w->e->message_id, now, /*reserve=*/true, false,
                      w->scored ? &w->score : nullptr);
  }
  if (!w || !d->ok() || (*d)->decision.verdict != policy::Verdict::kAllow) {
    // Decided alike a moment ago, so this is a store failure: every candidate is
    // tried again a minute later, nothing charged.
    if (w && w->ad) CommitAd(store::TenantKey(w->r.tenant, w->r.campaign_id), budget_day, p.id(), -result.charge);
    for (const Contender& c : cs) {
      ScheduleEntry e = *c.e;
      e.due = now + kMicrosPerMinute;
      again(e, e.due);
    }
    return;
  }
  Decided& won = **d;
  if (w->digest) {
    std::vector<RankedArticle> ranked;
    for (const Article& a : w->articles) ranked.push_back({&a, 0});
    won.payload = DigestPayload(w->e->message_id, kDigestAccount, w->r.message.title, ranked, won.expires_at);
  }
  stream::Event& sent = out.sents->emplace_back();
  MakeSend(w->r, w->e->message_id, now, won, &sent, &out.pushes->emplace_back());
  if (w->digest) {
    AppendArticleAttrs(w->article_scores, &sent.attrs);
    for (const auto& k : w->article_keys) out.batch->Delete(o_.state_cf, k);
    if (w->more_articles) DigestTomorrow(p, *w->e, now, out);  // those not listed wait for the next
    m_digests_->Inc();
  }
  if (w->ad) {
    AppendAdAttrs(result.price, result.charge, budget_day, &sent.attrs);
    out.charges.push_back({store::TenantKey(w->r.tenant, w->r.campaign_id), budget_day, result.charge});
  }
  if (candidates.size() < 2) return;
  m_contention_won_->Inc();
  // The others lost the slot: the next one is a slot gap away.
  const Micros next = now + static_cast<Micros>(engine_cfg_.slot_gap_s) * kMicrosPerSecond;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (static_cast<int>(i) == result.winner) continue;
    Contender& c = cs[index[i]];
    const bool deferred = hold(c, policy::Rule::kContention, next, Rank(candidates[i], auction_cfg_), result.rank,
                               static_cast<std::uint32_t>(candidates.size()));
    (deferred ? m_contention_deferred_ : m_contention_dropped_)->Inc();
  }
}

bool Engine::PrepareDigest(stream::Partition& p, const ScheduleEntry& e, Micros now, Contender* c, FireBatch& out) {
  EngineStore& es = p.Get(o_.store);
  const std::string prefix = store::PartitionTagPrefix(p.id(), store::StateTag::kEngineArticle) +
                             ArticleUserPrefix(e.tenant, e.user_id);
  if (auto sent = es.Find(e.tenant, e.message_id); sent.ok()) {
    // The day's digest went already (this is a second entry of the day, or one
    // found again after a crash): the articles it listed go, the rest wait.
    for (const auto& a : sent->articles) out.batch->Delete(o_.state_cf, prefix + a.id);
    DigestTomorrow(p, e, now, out);
    return false;
  }
  if (const auto* reserved = es.Reserved(e.tenant, e.user_id)) {
    for (const Reservation& r : *reserved) {
      if (r.message_id == e.message_id) return false;  // being sent right now
    }
  }
  profile::ProfileStore& profiles = p.Get(o_.profiles);
  const cctz::time_zone& tz = p.features().ZoneOf(e.tenant, e.user_id);
  struct Found {
    StoredArticle a;
    std::string key;
  };
  std::vector<Found> found;
  (void)o_.db->Scan(o_.state_cf, prefix, [&](std::string_view key, std::string_view value) {
    Found f;
    if (!DecodeArticle(value, &f.a)) return true;
    f.key.assign(key);
    auto campaign = o_.campaigns->Find(e.tenant, f.a.article.article_id);
    if ((f.a.expires_at && f.a.expires_at <= now) || !campaign || campaign->status == "cancelled") {
      out.batch->Delete(o_.state_cf, f.key);  // expired unsent, or its campaign was cancelled
      return true;
    }
    if (found.size() < 1000) found.push_back(std::move(f));
    return true;
  });
  if (found.empty()) return false;  // no articles: no digest
  // Each article scored for the user as the CTR model sees it (the user's part
  // hashed once), then ranked.
  PushRequest r;
  r.tenant = e.tenant;
  r.user_id = e.user_id;
  std::vector<model::MessageTraits> traits;
  std::vector<Article> articles;
  articles.reserve(found.size());
  for (const Found& f : found) {
    traits.push_back({f.a.article.account_id, f.a.form, f.a.article.title});
    articles.push_back(f.a.article);
  }
  std::vector<model::PushScore> scores;
  model::ScoreMessages(o_.ctr, ContextOf(p, profiles, r, "", tz, now), traits, o_.feature_bits, &scores);
  std::vector<RankedArticle> ranked;
  for (size_t i = 0; i < articles.size(); ++i) ranked.push_back({&articles[i], scores[i].pctr});
  RankArticles(ranked, engine_cfg_.digest_max_articles);
  for (const RankedArticle& ra : ranked) {
    const size_t i = static_cast<size_t>(ra.article - articles.data());
    c->articles.push_back(*ra.article);
    MessageRecord::Article scored{ra.article->article_id, {}};
    for (const auto& f : scores[i].features) scored.features.push_back(f.index);
    c->article_scores.push_back(std::move(scored));
    c->article_keys.push_back(found[i].key);
  }
  const size_t best = static_cast<size_t>(ranked.front().article - articles.data());
  c->digest = true;
  c->more_articles = found.size() > ranked.size();
  c->score = std::move(scores[best]);
  c->scored = true;
  c->r = r;
  c->r.account_id = kDigestAccount;
  c->r.message.title = engine_cfg_.digest_title;
  c->r.message.ttl_s = engine_cfg_.digest_ttl_s;
  c->view.key = policy::AccountKey(kDigestAccount);
  c->view.type = policy::AccountType::kBusiness;
  return true;
}

void Engine::DigestTomorrow(stream::Partition& p, const ScheduleEntry& e, Micros now, FireBatch& out) {
  const cctz::time_zone& tz = p.features().ZoneOf(e.tenant, e.user_id);
  std::int64_t day = 0;
  const Micros at = DigestDue(p, e.tenant, e.user_id, NextLocalMidnight(now, tz), tz, &day);
  ScheduleEntry next{at, DigestMessageId(e.tenant, e.user_id, day), e.tenant, e.user_id, kDigestAccount, ""};
  out.batch->Put(o_.state_cf, out.prefix + ScheduleKey(at, next.message_id), EncodeScheduleEntry(next));
}

Micros Engine::DigestDue(stream::Partition& p, const std::string& tenant, const std::string& user, Micros now,
                         const cctz::time_zone& tz, std::int64_t* day) {
  using std::chrono::microseconds;
  const auto local = cctz::convert(std::chrono::system_clock::time_point(microseconds(now)), tz);
  cctz::civil_day d(local);
  auto at = [&](cctz::civil_day dd, int minute) {
    return std::chrono::duration_cast<microseconds>(
               cctz::convert(cctz::civil_second(dd) + minute * 60, tz).time_since_epoch())
        .count();
  };
  if (now >= at(d, digest_to_min_)) d += 1;  // today's window is over: tomorrow's
  const Micros from = std::max(now, at(d, digest_from_min_)), to = at(d, digest_to_min_);
  *day = d - cctz::civil_day(1970, 1, 1);
  if (!o_.send_time) return from;
  // The golden hour, the same whenever the day's digest is planned on the same evidence.
  model::SendTimeStore& st = p.Get(*o_.send_time);
  model::SendTimeUser evidence = st.Find(tenant, user).value_or(model::SendTimeUser{});
  evidence.group = st.Group(tenant, profile::ClassName(p.Get(o_.profiles).ClassOf(tenant, user, now)));
  std::mt19937_64 rng(std::hash<std::string>()(DigestMessageId(tenant, user, *day)));
  return model::BestTimeInWindow(st.model(), evidence, from, to, tz, rng);
}

std::int64_t Engine::BudgetDay(Micros now, double* fraction) const {
  using std::chrono::microseconds;
  const auto local = cctz::convert(std::chrono::system_clock::time_point(microseconds(now)), budget_tz_);
  const cctz::civil_day d(local);
  *fraction = static_cast<double>(local - cctz::civil_second(d)) / 86400.0;
  return d - cctz::civil_day(1970, 1, 1);
}

policy::Rule Engine::AdmitAd(const std::string& key, double budget, Micros now, std::int64_t day, double fraction,
                             double max_charge, double draw, PartitionId p) {
  std::lock_guard<std::mutex> l(budgets_mu_);
  // After a start, the day's commitments are known once every partition counted
  // its own (or, should one never recover, a minute after the start).
  if (seeded_count_ < seeded_.size()) {
    if (std::chrono::steady_clock::now() - started_ < std::chrono::minutes(1)) return policy::Rule::kAdPaced;
    if (!seeding_late_) {
      seeding_late_ = true;
      log::Warn("ad budgets paced without the commitments of partitions not recovered",
                {{"recovered", seeded_count_}, {"partitions", seeded_.size()}});
    }
  }
  AdBudget& b = budgets_[key];
  if (b.day != day) {
    b.day = day;
    b.committed.assign(seeded_.size(), 0);
    b.pacer = Pacer{};
  }
  b.pacer.budget = budget;
  double spent = 0;
  for (double c : b.committed) spent += c;
  b.pacer.spent = spent;
  if (now - b.pacer.updated >= kMicrosPerMinute) b.pacer.Update(now, fraction);
  if (spent + max_charge > budget) return policy::Rule::kAdBudget;
  // Never ahead of the day by more than an hour's share, and in the throttle's proportion.
  if (spent + max_charge > budget * std::min(1.0, fraction + 1.0 / 24)) return policy::Rule::kAdPaced;
  if (draw > b.pacer.throttle) return policy::Rule::kAdPaced;
  if (p < b.committed.size()) b.committed[p] += max_charge;  // set aside until priced
  return policy::Rule::kNone;
}

void Engine::CommitAd(const std::string& key, std::int64_t day, PartitionId p, double delta) {
  std::lock_guard<std::mutex> l(budgets_mu_);
  auto it = budgets_.find(key);
  if (it == budgets_.end() || it->second.day != day || p >= it->second.committed.size()) return;
  it->second.committed[p] = std::max(0.0, it->second.committed[p] + delta);
}

void Engine::Recovered(stream::Partition& p) {
  // What this partition's pushes committed of each ad budget today (its funnels
  // were replayed from the log).
  double fraction = 0;
  const std::int64_t day = BudgetDay(p.clock().Now(), &fraction);
  const auto funnels = p.Get(o_.store).AdFunnels();
  {
    std::lock_guard<std::mutex> l(budgets_mu_);
    for (const auto& [key, f] : funnels) {
      if (static_cast<std::int64_t>(f.budget_day) != day) continue;
      AdBudget& b = budgets_[key];
      if (b.day != day) {
        b.day = day;
        b.committed.assign(seeded_.size(), 0);
      }
      if (p.id() < b.committed.size()) b.committed[p.id()] = static_cast<double>(f.day_committed_micros) / 1e6;
    }
    if (p.id() < seeded_.size() && !seeded_[p.id()]) {
      seeded_[p.id()] = 1;
      ++seeded_count_;
    }
  }
  // Pushes in the log whose delivery a crash may have cut short: handed to the
  // gateway again once it is there (a device may see one twice, never none).
  std::vector<mqtt::PushMessage> again;
  for (InDoubtPush& d : p.Get(o_.store).InDoubt(p.clock().Now())) {
    mqtt::PushMessage m;
    m.tenant = std::move(d.tenant);
    m.user_id = std::move(d.user_id);
    m.message_id = std::move(d.message_id);
    m.account_id = std::move(d.account_id);
    m.campaign_id = std::move(d.campaign_id);
    m.payload = std::move(d.payload);
    m.expires_at = d.expires_at;
    again.push_back(std::move(m));
  }
  if (!again.empty()) {
    log::Info("pushes sent before a crash handed to the gateway again", {{"partition", p.id()}, {"pushes", again.size()}});
    o_.metrics->GetCounter("herald_engine_redelivered_total",
                           "Pushes in the log whose delivery a restart cut short, handed to the gateway again.")
        .Inc(again.size());
    bool now = false;
    {
      std::lock_guard<std::mutex> l(deliver_mu_);
      now = deliver_batch_ || deliver_;
      if (!now) std::move(again.begin(), again.end(), std::back_inserter(redeliver_));
    }
    if (now) {
      auto shared = std::make_shared<std::vector<mqtt::PushMessage>>(std::move(again));
      (void)o_.background->Post([this, shared] { DeliverAll(*shared, 10000, /*observe=*/false); });
    }
  }
  Arm(p);
}

void Engine::CountSuppressed(std::string_view rule, std::uint64_t n) {
  o_.metrics->GetCounter("herald_engine_suppressed_total", "Pushes suppressed, by the rule that suppressed them.",
                         {{"rule", std::string(rule)}})
      .Inc(n);
}

namespace {

// "YYYYMMDD" of `t` in UTC.
std::string DayName(Micros t) {
  const cctz::civil_day d(cctz::convert(
      std::chrono::time_point<std::chrono::system_clock, cctz::seconds>(cctz::seconds(t / kMicrosPerSecond)),
      cctz::utc_time_zone()));
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d", static_cast<int>(d.year()), d.month(), d.day());
  return buf;
}

// Appends `lines` to `path` durably.
Status AppendDurably(const std::string& path, const std::string& lines) {
  std::FILE* f = std::fopen(path.c_str(), "ab");
  if (!f) return Status::IoError("cannot open " + path);
  const bool ok = std::fwrite(lines.data(), 1, lines.size(), f) == lines.size() && std::fflush(f) == 0 &&
                  ::fdatasync(fileno(f)) == 0;
  std::fclose(f);
  return ok ? Status::Ok() : Status::IoError("cannot write " + path);
}

}  // namespace

void Engine::Harvest(stream::Partition& p) {
  if (o_.samples_dir.empty()) return;
  const Micros now = p.clock().Now();
  const PartitionId part = p.id();
  const std::string prefix = store::PartitionTagPrefix(part, store::StateTag::kEngineSample);
  EngineStore& es = p.Get(o_.store);
  ScheduleState& st = p.Get(o_.schedule);
  auto keys = std::make_shared<std::vector<std::string>>();  // stored entries, deleted once written
  auto lines = std::make_shared<std::string>();
  bool more = false;
  auto sample = [&](std::string_view suffix) {
    Micros close = 0;
    std::string tenant, id;
    if (!DecodeSampleKey(suffix, &close, &tenant, &id)) return;
    auto m = es.Find(tenant, id);
    if (!m.ok()) return;  // gone past its days
    auto line = [&](bool label, const std::vector<std::uint32_t>& features) {
      if (features.empty()) return;  // never scored
      lines->push_back(label ? '1' : '0');
      char buf[16];
      for (std::uint32_t f : features) {
        auto r = std::to_chars(buf, buf + sizeof buf, f);
        lines->push_back(' ');
        lines->append(buf, r.ptr);
        lines->append(":1");
      }
      lines->push_back('\n');
    };
    if (m->articles.empty()) return line(m->Engaged(close), m->features);
    // A digest: one sample per article listed, labelled by the receipts naming it.
    for (const auto& a : m->articles) line(m->ArticleEngaged(a.id, close), a.features);
  };
  // Entries of the latest pushes, not checkpointed yet, then those in the store,
  // from where the last harvest stopped (from the start once an hour, for an
  // entry checkpointed after later ones were written).
  auto taken = std::make_shared<std::vector<std::string>>(es.TakeDueSamples(now));  // not in the store
  // Written in the order of their keys (close time, then message), wherever they
  // were: the day's file is the same whenever the checkpoints ran.
  std::vector<std::string> order(taken->begin(), taken->end());
  const Micros stored = es.stored_sample_close();
  if (stored <= now) {  // 0: unknown, after a start
    std::string from = prefix;
    if (st.harvests++ % 60 != 0) {
      ByteWriter w(&from);
      w.FixedBE<std::uint64_t>(static_cast<std::uint64_t>(st.harvest_from));
    }
    Micros last_close = st.harvest_from, next_close = kNever;
    (void)o_.db->ScanFrom(o_.state_cf, prefix, from, [&](std::string_view key, std::string_view) {
      Micros close = 0;
      std::string tenant, id;
      if (DecodeSampleKey(key.substr(prefix.size()), &close, &tenant, &id)) {
        if (close > now) {
          next_close = close;
          return false;
        }
        last_close = std::max(last_close, close);
      }
      if (keys->size() >= 5000) {
        more = true;
        return false;
      }
      keys->emplace_back(key);
      order.emplace_back(key.substr(prefix.size()));
      return true;
    });
    st.harvest_from = last_close;
    // Until a checkpoint stores an earlier one, nothing in the store closes before it.
    es.set_stored_sample_close(more ? 0 : next_close);
  }
  std::sort(order.begin(), order.end());
  for (const std::string& k : order) sample(k);
  const std::string today = DayName(now);
  const bool new_day = today != st.harvest_day;
  st.harvest_day = today;
  if (lines->empty() && keys->empty() && !new_day) return ArmHarvest(p, more);
  st.harvest_busy = true;
  auto again = [this, part, more] {
    o_.pipeline->RunOnPartition(
        part,
        [this, more](stream::Partition& q) -> Status {
          q.Get(o_.schedule).harvest_busy = false;
          ArmHarvest(q, more);
          return Status::Ok();
        },
        std::function<void(Status)>([](Status) {}));
  };
  const std::string dir = o_.samples_dir;
  const bool posted = o_.background->Post([this, dir, today, part, keys, lines, taken, again] {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path open = fs::path(dir) / "open";
    fs::create_directories(open, ec);
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "-p%03u.hsv", static_cast<unsigned>(part));
    // Earlier days' files of this partition are complete: they go to the trainer.
    for (const auto& e : fs::directory_iterator(open, ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() == 8 + std::strlen(suffix) && name.ends_with(suffix) && name.substr(0, 8) < today) {
        fs::rename(e.path(), fs::path(dir) / name, ec);
      }
    }
    Status s = Status::Ok();
    if (!lines->empty()) s = AppendDurably((open / (today + suffix)).string(), *lines);
    if (s.ok() && !keys->empty()) {
      store::WriteBatch b;
      for (const auto& k : *keys) b.Delete(o_.state_cf, k);
      s = o_.db->Write(std::move(b));
    }
    if (s.ok()) m_samples_->Inc(static_cast<std::uint64_t>(std::count(lines->begin(), lines->end(), '\n')));
    if (!s.ok()) {
      log::Error("push samples not written; they are written again", {{"error", s.message()}});
      if (!lines->empty() && !taken->empty()) {
        // Those only in memory go back, to be taken again by the next harvest.
        o_.pipeline->RunOnPartition(
            part,
            [this, taken](stream::Partition& q) -> Status {
              q.Get(o_.store).ReturnSamples(std::move(*taken));
              return Status::Ok();
            },
            std::function<void(Status)>([](Status) {}));
      }
    }
    again();
  });
  if (!posted) return;
}

void Engine::ArmHarvest(stream::Partition& p, bool more) {
  ScheduleState& st = p.Get(o_.schedule);
  if (st.harvest_busy) return;
  if (st.harvest_timer) p.Cancel(st.harvest_timer);
  // At the earliest close (at least a minute on), at once when one is due, and
  // just after midnight UTC, when the day's files are handed over.
  const Micros now = p.clock().Now(), due = p.Get(o_.store).next_sample_close();
  const Micros midnight = (now / kMicrosPerDay + 1) * kMicrosPerDay + kMicrosPerSecond;
  const Micros next = more || due <= now ? now : std::min(std::max(due, now + kMicrosPerMinute), midnight);
  st.harvest_at = next;
  st.harvest_timer = p.PostAt(next, [this](stream::Partition& q) {
    q.Get(o_.schedule).harvest_timer = 0;
    Harvest(q);
  });
}

void Engine::OnSamplesStored(PartitionId partition, Micros close) {
  o_.pipeline->RunOnPartition(
      partition,
      [this, close](stream::Partition& p) -> Status {
        ScheduleState& st = p.Get(o_.schedule);
        st.harvest_from = std::min(st.harvest_from, close);  // the scans must reach them
        // Sooner than the harvest armed: armed again for them.
        if (close < st.harvest_at) ArmHarvest(p);
        return Status::Ok();
      },
      std::function<void(Status)>([](Status) {}));
}

bool Engine::Settled(Micros now) {
  auto h = o_.schedule;
  std::promise<bool> settled;
  o_.pipeline->RunOnEveryPartition(
      [h, now](stream::Partition& p) -> bool {
        const ScheduleState& s = p.Get(h);
        return !s.firing && !(s.armed && s.armed <= now) && !s.harvest_busy &&
               !(s.harvest_timer && s.harvest_at <= now);
      },
      std::function<void(Result<std::vector<bool>>)>([&settled](Result<std::vector<bool>> all) {
        bool ok = all.ok();
        if (ok) {
          for (bool b : *all) ok = ok && b;
        }
        settled.set_value(ok);
      }));
  return settled.get_future().get();
}

void Engine::FindMessage(const std::string& tenant, const std::string& message_id,
                         std::function<void(Result<MessageRecord>)> done) {
  auto store = o_.store;
  o_.pipeline->RunOnEveryPartition(
      [store, tenant, message_id](stream::Partition& p) -> std::optional<MessageRecord> {
        auto r = p.Get(store).Find(tenant, message_id);
        if (r.ok()) return std::move(*r);
        return std::nullopt;
      },
      std::function<void(Result<std::vector<std::optional<MessageRecord>>>)>(
          [message_id, done](Result<std::vector<std::optional<MessageRecord>>> parts) {
            if (!parts.ok()) return done(parts.status());
            for (auto& p : *parts) {
              if (p) return done(std::move(*p));
            }
            done(Status::NotFound("no message " + message_id));
          }));
}

}  // namespace herald::engine
