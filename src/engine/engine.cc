#include "engine/engine.h"

#include <chrono>
#include <random>

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
        const PushRequest& r = *shared;
        policy::PolicyStore& ps = p.Get(o.policy);
        profile::ProfileStore& profiles = p.Get(o.profiles);
        EngineStore& es = p.Get(o.store);
        Status failure;
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
        if (d.decision.verdict != policy::Verdict::kAllow) return d;
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
