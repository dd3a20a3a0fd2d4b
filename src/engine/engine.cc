#include "engine/engine.h"

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/log.h"
#include "store/keys.h"

#include "stream/feature_store.h"

namespace herald::engine {

namespace {

// What the shard decided, and for an allowed push what to send.
struct Decided {
  policy::Decision decision;
  std::string explanation;
  std::string payload;
  Micros expires_at = 0;
};

// The decision for one push on the user's shard; for an allowed push, its
// reservation is made and its payload rendered.
Result<Decided> DecideOnShard(const EngineOptions& o, stream::Partition& p, const PushRequest& r,
                              const policy::AccountView& view, const std::string& message_id, Micros now) {
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
  c.expires_at = now + static_cast<Micros>(m.ttl_s) * kMicrosPerSecond;
  c.collapse_key = m.collapse_key.empty() ? 0 : policy::SmallKey(m.collapse_key);
  c.idempotency_key = m.idempotency_key.empty() ? 0 : policy::SmallKey(m.idempotency_key);
  Decided d;
  d.decision = policy::Decide(state, stored_follow ? &follow : nullptr, c, now, tz, *o.policy_config);
  d.explanation = policy::Explain(d.decision, r.account_id, tz, *o.policy_config);
  if (d.decision.verdict != policy::Verdict::kAllow) {
    // Not sent, so not in the log: the decision is recorded here for the user's
    // decisions list.
    if (ps.RecordUnsent(r.tenant, r.user_id, message_id, r.account_id, now, d.decision).ok()) p.MarkChanged();
    return d;
  }
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
  d.payload = Payload(m, Render(m.title, m, lookup), Render(m.body, m, lookup), ids);
  d.expires_at = c.expires_at;
  return d;
}

}  // namespace

Engine::Engine(const EngineOptions& o) : o_(o) {
  std::random_device rd;
  seed_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  auto& m = *o_.metrics;
  const char* help = "Pushes decided by POST /v1/push, by verdict.";
  m_allowed_ = &m.GetCounter("herald_engine_pushes_total", help, {{"decision", "allow"}});
  m_deferred_ = &m.GetCounter("herald_engine_pushes_total", help, {{"decision", "defer"}});
  m_suppressed_ = &m.GetCounter("herald_engine_pushes_total", help, {{"decision", "suppress"}});
  m_dispatched_ = &m.GetCounter("herald_engine_dispatched_total", "Pushes handed to the gateway.");
  m_dispatch_latency_ = &m.GetHistogram("herald_engine_dispatch_seconds",
                                        "From the push request to the gateway's hands (after the sent event is durable).",
                                        {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
}

void Engine::SetDeliver(Deliver deliver) {
  std::lock_guard<std::mutex> l(deliver_mu_);
  deliver_ = std::make_shared<Deliver>(std::move(deliver));
}

std::string Engine::NewMessageId() {
  // Unique across restarts: a random 64-bit start, then a sequence.
  static const char* kHex = "0123456789abcdef";
  std::uint64_t v = seed_ + sequence_.fetch_add(1) * 0x9e3779b97f4a7c15ULL;
  std::string id("m-");
  for (int i = 15; i >= 0; --i) id.push_back(kHex[(v >> (i * 4)) & 15]);
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
        return DecideOnShard(o, p, *shared, view, message_id, now);
      },
      std::function<void(Result<Decided>)>([this, shared, message_id, now, started, done](Result<Decided> d) {
        if (!d.ok()) return done(d.status());
        PushResult out;
        out.message_id = message_id;
        out.decision = d->decision;
        out.explanation = d->explanation;
        if (d->decision.verdict == policy::Verdict::kDefer) m_deferred_->Inc();
        if (d->decision.verdict == policy::Verdict::kSuppress) m_suppressed_->Inc();
        if (d->decision.verdict != policy::Verdict::kAllow) return done(out);
        m_allowed_->Inc();
        stream::Event sent;
        sent.tenant = shared->tenant;
        sent.user_id = shared->user_id;
        sent.type = stream::EventType::kSent;
        sent.ts = now;
        sent.account_id = shared->account_id;
        sent.message_id = message_id;
        sent.campaign_id = shared->campaign_id;
        sent.attrs = SentAttrs(shared->message, d->expires_at);
        mqtt::PushMessage msg;
        msg.tenant = shared->tenant;
        msg.user_id = shared->user_id;
        msg.message_id = message_id;
        msg.payload = std::move(d->payload);
        msg.expires_at = d->expires_at;
        msg.account_id = shared->account_id;
        msg.campaign_id = shared->campaign_id;
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

// One partition's share of a campaign: what was decided, and the pushes to send.
struct Engine::Planned {
  std::uint64_t targeted = 0;
  std::map<std::string, std::uint64_t> suppressed;
  std::vector<stream::Event> sents;
  std::vector<mqtt::PushMessage> pushes;
};

void Engine::CreateCampaign(const std::string& tenant, Campaign c, const std::string& idempotency_key,
                            std::function<void(Result<Campaign>, bool, size_t)> done) {
  if (!o_.accounts->Find(tenant, c.account_id)) {
    return done(Status::NotFound("account_id: no account " + c.account_id), false, 0);
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
  const EngineOptions o = o_;
  const std::string id = c.id;
  o_.pipeline->RunOnEveryPartition(
      [this, o, request, view, target, segment, now](stream::Partition& p) -> std::shared_ptr<Planned> {
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
        for (const std::string& u : users) {
          ++out->targeted;
          r.user_id = u;
          const std::string mid = NewMessageId();
          auto d = DecideOnShard(o, p, r, view, mid, now);
          if (!d.ok()) {
            ++out->suppressed[d.status().code() == Code::kNotFound ? "unknown_user" : "unavailable"];
            continue;
          }
          if (d->decision.verdict != policy::Verdict::kAllow) {
            ++out->suppressed[std::string(policy::RuleName(d->decision.rule))];
            continue;
          }
          stream::Event sent;
          sent.tenant = r.tenant;
          sent.user_id = u;
          sent.type = stream::EventType::kSent;
          sent.ts = now;
          sent.account_id = r.account_id;
          sent.message_id = mid;
          sent.campaign_id = r.campaign_id;
          sent.attrs = SentAttrs(r.message, d->expires_at);
          out->sents.push_back(std::move(sent));
          mqtt::PushMessage m;
          m.tenant = r.tenant;
          m.user_id = u;
          m.message_id = mid;
          m.payload = std::move(d->payload);
          m.expires_at = d->expires_at;
          m.account_id = r.account_id;
          m.campaign_id = r.campaign_id;
          out->pushes.push_back(std::move(m));
        }
        return out;
      },
      std::function<void(Result<std::vector<std::shared_ptr<Planned>>>)>(
          [this, tenant, id](Result<std::vector<std::shared_ptr<Planned>>> parts) {
            auto all = std::make_shared<Planned>();
            if (parts.ok()) {
              for (auto& p : *parts) {
                if (!p) continue;
                all->targeted += p->targeted;
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
    std::shared_ptr<Deliver> deliver;
    {
      std::lock_guard<std::mutex> l(deliver_mu_);
      deliver = deliver_;
    }
    for (auto& m : planned->pushes) {
      if (!deliver || !*deliver) break;
      const auto started = std::chrono::steady_clock::now();
      for (int attempt = 0; attempt < 10000; ++attempt) {
        Status s = (*deliver)(m, [](mqtt::DeliveryOutcome) {});
        if (s.code() != Code::kResourceExhausted) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the gateway's queue is full
      }
      m_dispatched_->Inc();
      m_dispatch_latency_->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
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

void Engine::CampaignStatus(const std::string& tenant, const std::string& id,
                            std::function<void(Result<std::string>)> done) {
  auto c = o_.campaigns->Find(tenant, id);
  if (!c) return done(Status::NotFound("no campaign " + id));
  auto store = o_.store;
  o_.pipeline->RunOnEveryPartition(
      [store, tenant, id](stream::Partition& p) -> Funnel { return p.Get(store).FunnelOf(tenant, id); },
      std::function<void(Result<std::vector<Funnel>>)>([c = *c, done](Result<std::vector<Funnel>> parts) {
        if (!parts.ok()) return done(parts.status());
        Funnel all;
        for (const auto& f : *parts) all += f;
        done(CampaignJson(c, all));
      }));
}

Status Engine::Cancel(const std::string& tenant, const std::string& id) {
  auto c = o_.campaigns->Find(tenant, id);
  if (!c) return Status::NotFound("no campaign " + id);
  if (c->status != "planning") {
    return Status::FailedPrecondition("the campaign is " + c->status + ": only a campaign still planning can be cancelled");
  }
  std::lock_guard<std::mutex> l(cancel_mu_);
  cancelled_.insert(store::TenantKey(tenant, id));
  return Status::Ok();
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
