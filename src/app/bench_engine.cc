#include "app/bench_engine.h"

#include <unistd.h>

#include <chrono>
#include <random>
#include <span>
#include <cstdio>
#include <filesystem>
#include <future>
#include <thread>

#include "core/metrics.h"
#include "engine/auction.h"
#include "engine/campaigns.h"
#include "engine/digest.h"
#include "engine/engine.h"
#include "store/db.h"
#include "model/push_features.h"
#include "model/registry.h"
#include "node/node.h"
#include "policy/accounts.h"
#include "stream/pipeline.h"

namespace herald::app {

int BenchEngine(const std::vector<std::string>& args) {
  size_t users = 200'000, rounds = 2;
  std::string dir;
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&]() -> std::string { return i + 1 < args.size() ? args[++i] : std::string(); };
    if (args[i] == "--users") users = std::stoul(val());
    else if (args[i] == "--rounds") rounds = std::stoul(val());
    else if (args[i] == "--dir") dir = val();
    else {
      std::fprintf(stderr, "usage: herald bench engine [--users N] [--rounds N] [--dir D]\n");
      return 2;
    }
  }
  const bool own = dir.empty();
  if (own) dir = (std::filesystem::temp_directory_path() / ("herald-bench-engine-" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  node::Config c = node::Config::Defaults();
  c.server.data_dir = dir;
  c.server.log_level = "warn";
  c.policy.daily_cap = 255;
  c.stream.max_hot_users = users * 2;  // partitions are uneven: keep every user hot
  c.server.virtual_clock = true;       // the schedule round moves time
  c.policy.quiet_start = c.policy.quiet_end = "00:00";  // no quiet hours: every push may go now
  auto started = node::Node::Start(c, {.http = false, .mqtt = false});
  if (!started.ok()) {
    std::fprintf(stderr, "bench engine: %s\n", started.status().ToString().c_str());
    return 1;
  }
  auto n = std::move(*started);
  const Micros now = n->clock().Now();
  (void)n->accounts().Upsert("default", policy::Account{"acct", policy::AccountType::kBusiness, "acct", 1, 0});
  // The followers, through the log like POST /v1/follows (followed a year ago).
  for (size_t b = 0; b < users; b += 10'000) {
    std::vector<stream::Event> evs;
    for (size_t i = b; i < std::min(users, b + 10'000); ++i) {
      stream::Event e;
      e.tenant = "default";
      e.user_id = "u" + std::to_string(i);
      e.type = stream::EventType::kFollow;
      e.ts = now;
      e.account_id = "acct";
      e.attrs = "{\"followed_at\":" + std::to_string(now / kMicrosPerSecond - 365 * 86400) + "}";
      evs.push_back(std::move(e));
    }
    std::promise<Status> done;
    n->pipeline().Ingest(std::move(evs), [&](Status s) { done.set_value(s); });
    if (Status s = done.get_future().get(); !s.ok()) return 1;
  }
  auto& applied = n->metrics().GetCounter("herald_stream_events_applied_total", "");
  while (applied.Value() < users) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (size_t r = 0; r < rounds; ++r) {
    auto parsed = engine::ParseCampaign(
        "{\"account_id\":\"acct\",\"target\":{\"followers_of\":\"acct\"},\"message\":{\"title\":\"Hello "
        "{{user.name}}\",\"body\":\"Round " +
        std::to_string(r) + "\"}}");
    if (!parsed.ok()) return 1;
    const auto t0 = std::chrono::steady_clock::now();
    std::promise<std::string> created;
    n->engine().CreateCampaign("default", std::move(*parsed), "",
                               [&](Result<engine::Campaign> c, bool, size_t) { created.set_value(c.ok() ? c->id : ""); });
    const std::string id = created.get_future().get();
    if (id.empty()) return 1;
    std::optional<engine::Campaign> c;
    while ((c = n->campaigns().Find("default", id)) && c->status == "planning") {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::uint64_t suppressed = 0;
    std::string rules;
    for (const auto& [rule, k] : c->suppressed) {
      suppressed += k;
      rules += ' ';
      rules += rule;
    }
    std::printf("campaign %zu to %llu followers: %s in %.2f s: %.0f decisions/s (%llu sent, %llu suppressed; "
                "sent events durable in the log)%s\n",
                r + 1, static_cast<unsigned long long>(c->targeted), c->status.c_str(), s,
                static_cast<double>(c->targeted) / s, static_cast<unsigned long long>(c->sent),
                static_cast<unsigned long long>(suppressed), rules.c_str());
  }
  // The schedule: one entry per follower at 08:00 local (UTC), written to disk,
  // then fired when the virtual clock gets there.
  {
    auto dir_bytes = [&] {
      std::uintmax_t b = 0;
      for (const auto& f : std::filesystem::recursive_directory_iterator(dir + "/store")) {
        if (f.is_regular_file()) b += f.file_size();
      }
      return b;
    };
    auto parsed = engine::ParseCampaign(
        "{\"account_id\":\"acct\",\"target\":{\"followers_of\":\"acct\"},\"schedule\":{\"type\":\"at\","
        "\"local_time\":\"08:00\"},\"message\":{\"title\":\"Morning {{user.name}}\",\"priority\":\"transactional\"}}");
    if (!parsed.ok()) return 1;
    (void)n->pipeline().Checkpoint();
    (void)n->db().Flush();
    const std::uintmax_t before = dir_bytes();
    const auto t0 = std::chrono::steady_clock::now();
    std::promise<std::string> created;
    n->engine().CreateCampaign("default", std::move(*parsed), "",
                               [&](Result<engine::Campaign> c, bool, size_t) { created.set_value(c.ok() ? c->id : ""); });
    const std::string id = created.get_future().get();
    std::optional<engine::Campaign> c;
    while ((c = n->campaigns().Find("default", id)) && c->status == "planning") {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    (void)n->db().Flush();
    const std::uintmax_t after = dir_bytes();
    auto& sent = n->metrics().GetCounter("herald_engine_dispatched_total", "");
    const std::uint64_t sent0 = sent.Value();
    const auto t1 = std::chrono::steady_clock::now();
    n->virtual_clock()->Advance(2 * kMicrosPerDay);  // past the next 08:00 everywhere
    auto& applied_sent = n->metrics().GetCounter("herald_stream_events_applied_total", "");
    std::uint64_t last = 0;
    int still = 0;
    while (still < 40) {  // until nothing more is applied for 200 ms
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const std::uint64_t v = applied_sent.Value();
      still = v == last ? still + 1 : 0;
      last = v;
    }
    const double fire_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() - 0.2;
    std::uint64_t fired_sent = 0;
    auto parts = n->pipeline().CallOnPartition(0, [&](stream::Partition&) -> Result<int> { return 0; });
    (void)parts;
    std::promise<std::string> status;
    n->engine().CampaignStatus("default", id, [&](Result<std::string> r) { status.set_value(r.ok() ? *r : ""); });
    const std::string js = status.get_future().get();
    const size_t at = js.find("\"sent\":");
    if (at != std::string::npos) fired_sent = std::stoull(js.substr(at + 7));
    (void)sent0;
    std::printf("schedule: %llu entries written in %.2f s (%.0f/s), %.1f MB of store (%.0f B an entry before "
                "compaction); fired on the virtual clock in %.2f s (%.0f/s), %llu sent\n",
                static_cast<unsigned long long>(c->scheduled), write_s, static_cast<double>(c->scheduled) / write_s,
                static_cast<double>(after - before) / 1e6,
                c->scheduled ? static_cast<double>(after - before) / static_cast<double>(c->scheduled) : 0.0,
                fire_s, static_cast<double>(fired_sent) / fire_s, static_cast<unsigned long long>(fired_sent));
  }
  (void)n->Stop();
  n.reset();
  if (own) std::filesystem::remove_all(dir);
  return 0;
}

int BenchAuction(const std::vector<std::string>& args) {
  size_t candidates = 5;
  double seconds = 2;
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&]() -> std::string { return i + 1 < args.size() ? args[++i] : ""; };
    if (args[i] == "--candidates") {
      candidates = std::stoul(val());
    } else if (args[i] == "--seconds") {
      seconds = std::stod(val());
    } else {
      std::fprintf(stderr, "usage: herald bench auction [--candidates N] [--seconds S]\n");
      return 2;
    }
  }
  if (candidates == 0 || candidates > 64 || seconds <= 0) {
    std::fprintf(stderr, "bench auction: --candidates must be 1..64 and --seconds positive\n");
    return 2;
  }
  // 65,536 contentions of random candidates, ads and organic pushes mixed, some
  // with complaints and packs; ranked round-robin until the time is up.
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  constexpr size_t kSets = 65536;
  std::vector<engine::Candidate> all(kSets * candidates);
  for (auto& c : all) {
    c.ad = u(rng) < 0.5;
    c.pctr = 0.005 + 0.1 * u(rng);
    c.bid = c.ad ? 0.05 + 3 * u(rng) : 0;
    c.quality = 0.5 + 0.5 * u(rng);
    c.own_complaints = u(rng) < 0.05 ? 1 : 0;
    c.complaint_rate = 0.01 * u(rng);
    c.weight = 0.25 + 0.75 * u(rng);
    c.pack = u(rng) < 0.1 ? 3 + 2 * u(rng) : 1;
  }
  const engine::AuctionConfig cfg;
  std::uint64_t done = 0;
  double checksum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    for (size_t k = 0; k < kSets; ++k) {
      const auto r = engine::RunAuction(std::span<const engine::Candidate>(&all[k * candidates], candidates), cfg);
      checksum += r.charge + r.winner;
    }
    done += kSets;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::printf("auction: %.0f contentions/s ranked and priced on one core (%zu candidates each, %llu in %.2f s; "
              "checksum %.3f)\n",
              static_cast<double>(done) / elapsed, candidates, static_cast<unsigned long long>(done), elapsed, checksum);
  return 0;
}

int BenchDigest(const std::vector<std::string>& args) {
  size_t users = 1'000'000, follows = 20, accounts = 1000, keep = 10;
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&]() -> std::string { return i + 1 < args.size() ? args[++i] : ""; };
    if (args[i] == "--users") {
      users = std::stoul(val());
    } else if (args[i] == "--follows") {
      follows = std::stoul(val());
    } else {
      std::fprintf(stderr, "usage: herald bench digest [--users N] [--follows N]\n");
      return 2;
    }
  }
  if (users == 0 || follows == 0 || follows > accounts) {
    std::fprintf(stderr, "bench digest: --users must be positive and --follows 1..%zu\n", accounts);
    return 2;
  }
  // A CTR model with non-zero weights: an LR trained on random pushes.
  model::LearnerConfig lc;
  auto learner = model::MakeLearner(lc);
  if (!learner.ok()) return 1;
  std::mt19937_64 rng(7);
  const char* classes[] = {"student", "white_collar", "night_owl", "high_frequency", "dormant", "new_user"};
  const char* devices[] = {"ios", "android", "harmony"};
  // One article a day per subscription account, stored as the engine stores it
  // for each follower.
  std::vector<std::string> stored(accounts);
  for (size_t a = 0; a < accounts; ++a) {
    engine::StoredArticle art;
    art.article = {"art-" + std::to_string(a), "sub-" + std::to_string(a), "Story " + std::to_string(a) + " of the day",
                   "app://article/" + std::to_string(a)};
    art.form = "image_text";
    stored[a] = engine::EncodeArticle(art);
  }
  for (int i = 0; i < 200'000; ++i) {
    model::PushContext c;
    c.user_class = classes[rng() % 6];
    c.local_hour = static_cast<int>(rng() % 24);
    c.weekday = static_cast<int>(rng() % 7);
    c.account_id = "sub-" + std::to_string(rng() % accounts);
    c.form = "image_text";
    c.title = "x";
    (*learner)->Update(model::PushFeatures(c, lc.bits), static_cast<int>(rng() % 10 == 0));
  }
  // The CTR model in service, as the engine reads it.
  const std::string dir = (std::filesystem::temp_directory_path() / ("herald-bench-digest-" + std::to_string(::getpid()))).string();
  SystemClock clock;
  auto registry = model::ModelRegistry::Open(dir, "ctr", &clock);
  if (!registry.ok()) return 1;
  if (!(*registry)->Publish(**learner, 200'000, 0, 0.5, /*promote=*/true).ok()) return 1;
  // Each user follows `follows` accounts at random.
  std::vector<std::uint32_t> followed(users * follows);
  for (auto& f : followed) f = static_cast<std::uint32_t>(rng() % accounts);
  // Per user, what Engine::PrepareDigest does once the articles are read: decode
  // them, score them for the user (model::ScoreMessages), rank them and write the
  // payload.
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<engine::StoredArticle> articles(follows);
  std::vector<engine::RankedArticle> ranked;
  std::vector<model::MessageTraits> traits;
  std::vector<model::PushScore> scores;
  size_t bytes = 0;
  for (size_t u = 0; u < users; ++u) {
    model::PushContext c;
    c.user_class = classes[u % 6];
    c.local_hour = static_cast<int>(8 + u % 14);
    c.weekday = static_cast<int>(u % 7);
    c.device = devices[u % 3];
    c.activity_at_hour = static_cast<double>(u % 5);
    traits.clear();
    for (size_t k = 0; k < follows; ++k) {
      if (!engine::DecodeArticle(stored[followed[u * follows + k]], &articles[k])) return 1;
      traits.push_back({articles[k].article.account_id, articles[k].form, articles[k].article.title});
    }
    model::ScoreMessages(registry->get(), c, traits, lc.bits, &scores);
    ranked.clear();
    for (size_t k = 0; k < follows; ++k) ranked.push_back({&articles[k].article, scores[k].pctr});
    engine::RankArticles(ranked, keep);
    bytes += engine::DigestPayload("m-d000000000000000", "digest", "Your daily picks", ranked, 0).size();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("digest: %zu users x %zu followed accounts assembled in %.2f s on one core (%.0f users/s; %.0f "
              "articles scored/s; the top %zu in each payload, %.0f B on average)\n",
              users, follows, s, static_cast<double>(users) / s, static_cast<double>(users * follows) / s, keep,
              static_cast<double>(bytes) / static_cast<double>(users));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}

}  // namespace herald::app
