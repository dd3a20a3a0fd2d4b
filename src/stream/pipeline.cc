#include "stream/pipeline.h"

#include <cctz/time_zone.h>

#include <condition_variable>
#include <map>
#include <tuple>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/log.h"
#include "stream/event_codec.h"
#include "stream/features.h"
#include "stream/timezones.h"

namespace herald::stream {

struct Pipeline::UserEntry {
  UserFeatures features;
  const cctz::time_zone* tz = nullptr;
  bool exists = false;  // has features (applied or loaded)
  bool dirty = false;   // changed since the last checkpoint
};

namespace {
// Finds users by a string_view of their key, without building a std::string.
struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
}  // namespace

// Everything a shard owns. Touched only on that shard's thread.
struct Pipeline::ShardState {
  struct Cursor {
    std::uint64_t next = 0;  // next log offset to apply
    Micros watermark = 0;    // latest event time applied
  };
  std::unordered_map<PartitionId, Cursor> cursors;
  std::unordered_map<std::string, UserEntry, KeyHash, std::equal_to<>> users;  // TenantKey
  // Keys of users with dirty == true, by partition: a partition is checkpointed on
  // its own (its users' features with its offset), so checkpoints are small and
  // spread over the interval instead of stalling the shard.
  std::unordered_map<PartitionId, std::vector<std::string>> dirty;
  std::vector<PartitionId> owned;  // this shard's partitions, in rotation order
  size_t rotation = 0;
  std::unordered_map<PartitionId, std::uint64_t> checkpointed;  // offset last written
  std::string key_buf;             // reused to build lookup keys
  WindowCounts windows;
  std::uint64_t applied = 0;    // events applied, not yet added to the metric
  std::int64_t hot_added = 0;   // users loaded, not yet added to the gauge
};

std::vector<std::string> PipelineColumnFamilies() {
  return {kFeaturesFamily, kUsersFamily, kStreamMetaFamily};
}

Pipeline::Pipeline(const PipelineOptions& o) : opt_(o), partitioner_(o.log->partitions()) {
  MetricsRegistry& m = *opt_.metrics;
  m_ingested_ = &m.GetCounter("herald_stream_events_ingested_total", "Events appended to the log.");
  m_applied_ = &m.GetCounter("herald_stream_events_applied_total", "Events applied to features.");
  m_late_ = &m.GetCounter("herald_stream_late_events_total",
                          "Events older than the watermark minus the allowed lateness; not applied.");
  m_checkpoints_ = &m.GetCounter("herald_stream_checkpoints_total", "Feature checkpoints written.");
  m_latency_ = &m.GetHistogram("herald_stream_event_to_feature_seconds",
                               "From ingest to the event's effect being visible in features.",
                               LatencyBuckets());
  m_hot_users_ = &m.GetGauge("herald_stream_hot_users", "Users whose features are in memory.");
  features_cf_ = opt_.db->Family(kFeaturesFamily).value();
  users_cf_ = opt_.db->Family(kUsersFamily).value();
  meta_cf_ = opt_.db->Family(kStreamMetaFamily).value();
  for (unsigned i = 0; i < opt_.shards->size(); ++i) {
    shard_states_.push_back(std::make_unique<ShardState>());
  }
}

Result<std::unique_ptr<Pipeline>> Pipeline::Open(const PipelineOptions& o) {
  if (!o.log || !o.db || !o.shards || !o.clock || !o.metrics) {
    return Status::InvalidArgument("pipeline needs a log, a store, shards, a clock and metrics");
  }
  std::unique_ptr<Pipeline> p(new Pipeline(o));
  HERALD_RETURN_IF_ERROR(p->Recover());
  p->timer_ = std::thread([raw = p.get()] {
    std::unique_lock<std::mutex> lock(raw->timer_mu_);
    for (;;) {
      raw->timer_cv_.wait_for(lock, raw->TickInterval(), [raw] { return raw->stopping_; });
      if (raw->stopping_) break;
      for (unsigned s = 0; s < raw->opt_.shards->size(); ++s) {
        raw->opt_.shards->Post(s, [raw, s] { (void)raw->CheckpointNext(s); });
      }
    }
  });
  return p;
}

Pipeline::~Pipeline() { Stop(); }

void Pipeline::Stop() {
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  Status s = Checkpoint();
  if (!s.ok()) log::Error("final feature checkpoint failed", {{"error", s}});
}

Status Pipeline::Recover() {
  // Checkpoints first, then every shard replays its partitions up to the log's end.
  for (PartitionId p = 0; p < partitioner_.partitions(); ++p) {
    auto v = opt_.db->Get(meta_cf_, "ckpt/" + std::to_string(p));
    HERALD_RETURN_IF_ERROR(v.status());
    ShardState::Cursor c;
    if (v->has_value()) {
      unsigned long long next = 0;
      long long wm = 0;
      if (std::sscanf((*v)->c_str(), "%llu %lld", &next, &wm) != 2) {
        return Status::Corruption("bad stream checkpoint for partition " + std::to_string(p));
      }
      c = {next, wm};
    }
    c.next = std::max<std::uint64_t>(c.next, opt_.log->StartOffset(p));
    shard_states_[opt_.shards->ShardOf(p)]->cursors[p] = c;
    shard_states_[opt_.shards->ShardOf(p)]->owned.push_back(p);
  }
  std::uint64_t replayed = 0;
  std::mutex mu;
  opt_.shards->RunOnAll([&](unsigned s) {
    ShardState& st = *shard_states_[s];
    for (auto& [p, cursor] : st.cursors) {
      std::uint64_t before = cursor.next;
      CatchUp(st, p, opt_.log->EndOffset(p));
      std::lock_guard<std::mutex> l(mu);
      replayed += cursor.next - before;
    }
  });
  log::Info("event pipeline recovered", {{"replayed_events", replayed}});
  return Status::Ok();
}

void Pipeline::Ingest(std::vector<Event> events, std::function<void(Status)> done) {
  if (events.empty()) {
    done(Status::Ok());
    return;
  }
  // Group by partition, keeping each user's events in arrival order. Once every
  // partition's append is durable, each shard gets one task for all of its
  // partitions in the batch: one wake-up per shard, not one per partition.
  struct Pending {
    std::vector<std::vector<Event>> by_partition;
    std::vector<std::uint64_t> first;  // first offset, by partition
    std::atomic<int> left{0};
    Status first_error;
    std::mutex mu;
    std::function<void(Status)> done;
    std::chrono::steady_clock::time_point received;
  };
  auto pending = std::make_shared<Pending>();
  pending->received = std::chrono::steady_clock::now();
  pending->by_partition.resize(partitioner_.partitions());
  pending->first.resize(partitioner_.partitions());
  pending->done = std::move(done);
  for (Event& e : events) {
    pending->by_partition[partitioner_.PartitionOf(e.user_id)].push_back(std::move(e));
  }
  m_ingested_->Inc(events.size());
  int groups = 0;
  for (const auto& evs : pending->by_partition) groups += evs.empty() ? 0 : 1;
  pending->left = groups;
  Micros now = opt_.clock->Now();
  std::string encoded;  // one buffer per partition holds its records; the log copies them
  std::vector<size_t> ends;
  std::vector<std::string_view> views;
  for (PartitionId p = 0; p < pending->by_partition.size(); ++p) {
    const auto& evs = pending->by_partition[p];
    if (evs.empty()) continue;
    encoded.clear();
    ends.clear();
    views.clear();
    for (const Event& e : evs) {
      EncodeEvent(e, &encoded);
      ends.push_back(encoded.size());
    }
    for (size_t i = 0, begin = 0; i < ends.size(); begin = ends[i++]) {
      views.emplace_back(encoded.data() + begin, ends[i] - begin);
    }
    opt_.log->Append(p, views, now, [this, p, pending](Status s, std::uint64_t first) {
      if (s.ok()) {
        pending->first[p] = first;
      } else {
        std::lock_guard<std::mutex> l(pending->mu);
        if (pending->first_error.ok()) pending->first_error = s;
        pending->by_partition[p].clear();  // not in the log: never applied
      }
      if (pending->left.fetch_sub(1) != 1) return;
      // Post the applies before acknowledging: work a caller posts after the
      // acknowledgement (a features read) then queues behind them.
      for (unsigned shard = 0; shard < opt_.shards->size(); ++shard) {
        opt_.shards->Post(shard, [this, shard, pending] {
          for (PartitionId q = 0; q < pending->by_partition.size(); ++q) {
            auto& batch = pending->by_partition[q];
            if (batch.empty() || opt_.shards->ShardOf(q) != shard) continue;
            ApplyBatch(q, pending->first[q], batch, pending->received);
          }
        });
      }
      pending->done(pending->first_error);
    });
  }
}

void Pipeline::ApplyBatch(PartitionId p, std::uint64_t first, std::vector<Event>& events,
                          std::chrono::steady_clock::time_point received) {
  ShardState& st = *shard_states_[opt_.shards->ShardOf(p)];
  auto& cursor = st.cursors[p];
  // Batches may arrive out of offset order; anything missing is read from the log.
  if (first > cursor.next) CatchUp(st, p, first);
  for (size_t i = 0; i < events.size(); ++i) {
    if (first + i < cursor.next) continue;  // already applied (replay or catch-up)
    ApplyOne(st, p, events[i]);
    cursor.next = first + i + 1;
  }
  PublishCounts(st);
  m_latency_->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - received).count());
}

void Pipeline::CatchUp(ShardState& st, PartitionId p, std::uint64_t until) {
  auto& cursor = st.cursors[p];
  while (cursor.next < until) {
    std::uint64_t before = cursor.next;
    auto next = opt_.log->Read(p, cursor.next, std::min<std::uint64_t>(until - cursor.next, 4096),
                               [&](std::uint64_t off, Micros, std::string_view payload) {
                                 if (off >= until) return false;
                                 auto e = DecodeEvent(payload);
                                 if (e.ok()) {
                                   ApplyOne(st, p, *e);
                                 } else {
                                   log::Error("undecodable event in the log",
                                              {{"partition", p}, {"offset", off}});
                                 }
                                 cursor.next = off + 1;
                                 return true;
                               });
    if (!next.ok()) {
      log::Error("event log read failed", {{"partition", p}, {"error", next.status()}});
      return;
    }
    PublishCounts(st);
    if (cursor.next == before) return;  // nothing more is readable yet
  }
}

void Pipeline::PublishCounts(ShardState& st) {
  if (st.applied) m_applied_->Inc(st.applied);
  if (st.hot_added) m_hot_users_->Add(st.hot_added);
  st.applied = 0;
  st.hot_added = 0;
}

void Pipeline::ApplyOne(ShardState& st, PartitionId p, const Event& e) {
  auto& cursor = st.cursors[p];
  if (cursor.watermark && e.ts < cursor.watermark - opt_.allowed_lateness) {
    m_late_->Inc();
    return;
  }
  cursor.watermark = std::max(cursor.watermark, e.ts);
  st.key_buf.assign(e.tenant).push_back('\0');
  st.key_buf.append(e.user_id);
  UserEntry& u = Touch(st, st.key_buf);
  Apply(u.features, e, *u.tz);
  u.exists = true;
  // Until user classes exist (the profile module), every user is in class "all".
  auto local = cctz::convert(std::chrono::system_clock::time_point(std::chrono::microseconds(e.ts)), *u.tz);
  st.windows.Add(e, "all", local.hour(), cursor.watermark);
  if (!u.dirty) {
    u.dirty = true;
    st.dirty[p].push_back(st.key_buf);
  }
  ++st.applied;  // published once per batch: a shared atomic per event would bounce
}

Pipeline::UserEntry& Pipeline::Touch(ShardState& st, const std::string& key) {
  if (auto it = st.users.find(std::string_view(key)); it != st.users.end()) return it->second;
  UserEntry& u = st.users.try_emplace(key).first->second;
  ++st.hot_added;
  u.tz = &TimeZoneOrUtc("");
  // Cold path: features and time zone from the store.
  auto f = opt_.db->Get(features_cf_, key);
  if (f.ok() && f->has_value()) {
    auto parsed = Deserialize(**f);
    if (parsed.ok()) {
      u.features = std::move(*parsed);
      u.exists = true;
    }
  }
  auto profile = opt_.db->Get(users_cf_, key);
  if (profile.ok() && profile->has_value()) {
    auto j = nlohmann::json::parse(**profile, nullptr, false);
    if (j.is_object() && j.contains("tz") && j["tz"].is_string()) {
      u.tz = &TimeZoneOrUtc(j["tz"].get<std::string>());
    }
  }
  return u;
}

void Pipeline::GetFeatures(const std::string& tenant, const std::string& user_id,
                           std::function<void(Result<std::string>)> done) {
  PartitionId p = partitioner_.PartitionOf(user_id);
  bool posted = opt_.shards->PostToPartition(p, [this, p, tenant, user_id, done] {
    ShardState& st = *shard_states_[opt_.shards->ShardOf(p)];
    UserEntry& u = Touch(st, store::TenantKey(tenant, user_id));
    PublishCounts(st);
    if (!u.exists) return done(Status::NotFound("no features for user " + user_id));
    std::string out;
    ToJson(u.features, user_id, *u.tz, opt_.clock->Now(), &out);
    done(std::move(out));
  });
  if (!posted) done(Status::Unavailable("shutting down"));
}

namespace {

// Collects one result per shard and calls `done` with all of them on the last shard.
template <typename T>
struct Gather {
  std::mutex mu;
  std::vector<T> parts;
  size_t left;
};

}  // namespace

void Pipeline::GetWindows(const std::string& tenant, Micros size, Micros since,
                          std::function<void(std::vector<WindowRow>)> done) {
  auto g = std::make_shared<Gather<std::vector<WindowRow>>>();
  g->left = opt_.shards->size();
  for (unsigned s = 0; s < opt_.shards->size(); ++s) {
    opt_.shards->Post(s, [this, s, g, tenant, size, since, done] {
      auto rows = shard_states_[s]->windows.Windows(size, tenant, since);
      std::lock_guard<std::mutex> l(g->mu);
      g->parts.push_back(std::move(rows));
      if (--g->left > 0) return;
      std::map<std::tuple<std::string, std::string, Micros>, WindowRow> merged;
      for (auto& part : g->parts) {
        for (auto& r : part) {
          auto [it, fresh] = merged.try_emplace({r.tenant, r.user_class, r.start}, r);
          if (!fresh) it->second.counts += r.counts;
        }
      }
      std::vector<WindowRow> out;
      for (auto& [k, r] : merged) out.push_back(std::move(r));
      done(std::move(out));
    });
  }
}

void Pipeline::GetByLocalHour(const std::string& tenant,
                              std::function<void(std::array<OutcomeCounts, 24>)> done) {
  auto g = std::make_shared<Gather<std::array<OutcomeCounts, 24>>>();
  g->left = opt_.shards->size();
  for (unsigned s = 0; s < opt_.shards->size(); ++s) {
    opt_.shards->Post(s, [this, s, g, tenant, done] {
      auto hours = shard_states_[s]->windows.ByLocalHour(tenant, "all");
      std::lock_guard<std::mutex> l(g->mu);
      g->parts.push_back(hours);
      if (--g->left > 0) return;
      std::array<OutcomeCounts, 24> sum{};
      for (const auto& part : g->parts) {
        for (size_t h = 0; h < 24; ++h) sum[h] += part[h];
      }
      done(sum);
    });
  }
}

Status Pipeline::SetTimeZone(const std::string& tenant, const std::string& user_id,
                             const std::string& tz_name) {
  if (!ValidTimeZone(tz_name)) return Status::InvalidArgument("tz: unknown time zone " + tz_name);
  std::string key = store::TenantKey(tenant, user_id);
  store::WriteBatch b;
  b.Put(users_cf_, key, nlohmann::json({{"tz", tz_name}}).dump());
  HERALD_RETURN_IF_ERROR(opt_.db->Write(std::move(b)));
  const cctz::time_zone* tz = &TimeZoneOrUtc(tz_name);
  PartitionId p = partitioner_.PartitionOf(user_id);
  opt_.shards->PostToPartition(p, [this, p, key, tz] {
    auto& users = shard_states_[opt_.shards->ShardOf(p)]->users;
    if (auto it = users.find(key); it != users.end()) it->second.tz = tz;
  });
  return Status::Ok();
}

std::chrono::milliseconds Pipeline::TickInterval() const {
  // Every partition is checkpointed once per checkpoint_interval, one partition per
  // shard per tick.
  size_t per_shard = (partitioner_.partitions() + opt_.shards->size() - 1) / opt_.shards->size();
  auto tick = opt_.checkpoint_interval / static_cast<int>(std::max<size_t>(per_shard, 1));
  return std::max(tick, std::chrono::milliseconds(1));
}

void Pipeline::CheckpointPartition(ShardState& st, PartitionId p, store::WriteBatch* b) {
  if (auto d = st.dirty.find(p); d != st.dirty.end()) {
    for (const std::string& key : d->second) {
      auto it = st.users.find(key);
      if (it == st.users.end()) continue;
      b->Put(features_cf_, key, Serialize(it->second.features));
      it->second.dirty = false;
    }
    st.dirty.erase(d);
  }
  const auto& c = st.cursors[p];
  b->Put(meta_cf_, "ckpt/" + std::to_string(p),
         std::to_string(c.next) + " " + std::to_string(c.watermark));
}

Status Pipeline::CheckpointNext(unsigned shard) {
  ShardState& st = *shard_states_[shard];
  if (st.users.size() > opt_.max_hot_users_per_shard) return CheckpointShard(shard);
  if (st.owned.empty()) return Status::Ok();
  PartitionId p = st.owned[st.rotation++ % st.owned.size()];
  // Nothing applied since this partition's last checkpoint: nothing to write.
  const auto& cursor = st.cursors[p];
  auto last = st.checkpointed.find(p);
  if (last != st.checkpointed.end() && last->second == cursor.next && !st.dirty.count(p)) {
    return Status::Ok();
  }
  st.checkpointed[p] = cursor.next;
  store::WriteBatch b;
  CheckpointPartition(st, p, &b);
  m_checkpoints_->Inc();
  opt_.db->WriteAsync(std::move(b), [](Status s) {
    if (!s.ok()) log::Error("feature checkpoint failed", {{"error", s}});
  });
  return Status::Ok();
}

Status Pipeline::CheckpointShard(unsigned shard) {
  ShardState& st = *shard_states_[shard];
  store::WriteBatch b;
  for (PartitionId p : st.owned) CheckpointPartition(st, p, &b);
  m_checkpoints_->Inc();
  HERALD_RETURN_IF_ERROR(opt_.db->Write(std::move(b)));
  // Every user is now in the store, so evicted ones come back through the cold path.
  for (auto it = st.users.begin(); it != st.users.end() && st.users.size() > opt_.max_hot_users_per_shard;) {
    it = st.users.erase(it);
    m_hot_users_->Add(-1);
  }
  return Status::Ok();
}

Status Pipeline::Checkpoint() {
  std::mutex mu;
  Status first;
  opt_.shards->RunOnAll([&](unsigned s) {
    Status st = CheckpointShard(s);
    std::lock_guard<std::mutex> l(mu);
    if (first.ok()) first = st;
  });
  return first;
}

}  // namespace herald::stream
