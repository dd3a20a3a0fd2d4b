#include "stream/pipeline.h"

#include <algorithm>
#include <future>
#include <map>
#include <thread>
#include <tuple>

#include "core/log.h"
#include "store/keys.h"
#include "stream/event_codec.h"
#include "stream/feature_store.h"
#include "stream/ingest_keys.h"
#include "stream/layout.h"
#include "stream/outcome_windows.h"
#include "stream/timezones.h"

namespace herald::stream {
// Everything the pipeline keeps for one partition. Touched only on its shard.
struct Pipeline::Slot {
  Partition part;
  std::uint64_t next = 0;          // next log offset to apply
  Micros watermark = 0;            // latest event time applied
  std::uint64_t checkpointed = 0;  // `next` of the latest durable checkpoint
  bool has_checkpoint = false;
  bool dirty = false;    // events applied since the latest checkpoint was built
  bool writing = false;  // a checkpoint batch is in flight
  bool stopped = false;  // a load or log error stopped the partition
  Micros last_tick = 0;  // clock time of its latest checkpoint turn
};

void CheckpointWriter::Put(std::string_view suffix, std::string_view value) {
  batch_->Put(cf_, Key(suffix), value);
}
void CheckpointWriter::Delete(std::string_view suffix) { batch_->Delete(cf_, Key(suffix)); }
std::string CheckpointWriter::Key(std::string_view suffix) {
  std::string k = prefix_;
  k.append(suffix);
  return k;
}

Result<std::optional<std::string>> StateReader::Get(std::string_view suffix) {
  std::string k = prefix_;
  k.append(suffix);
  return db_->Get(cf_, k);
}

Status StateReader::Scan(std::string_view prefix,
                         const std::function<bool(std::string_view, std::string_view)>& fn) {
  std::string k = prefix_;
  k.append(prefix);
  size_t strip = prefix_.size();
  return db_->Scan(cf_, k, [&](std::string_view key, std::string_view value) {
    return fn(key.substr(strip), value);
  });
}

FeatureStore& Partition::features() { return static_cast<FeatureStore&>(*states_[0]); }

ShardExecutor::TimerId Partition::PostAt(Micros due, std::function<void(Partition&)> fn) {
  ShardExecutor::TimerId id = pipeline_->PostTimer(id_, generation_, due, std::move(fn));
  if (id) timers_.insert(id);
  return id;
}

bool Partition::Cancel(ShardExecutor::TimerId id) {
  if (!timers_.erase(id)) return false;
  return pipeline_->opt_.shards->Cancel(pipeline_->opt_.shards->ShardOf(id_), id);
}

std::vector<std::string> PipelineColumnFamilies() { return {store::kStateFamily}; }

Pipeline::Pipeline(const PipelineOptions& o)
    : opt_(o),
      partitioner_(o.log->partitions()),
      alive_(std::make_shared<std::atomic<bool>>(true)) {
  MetricsRegistry& m = *opt_.metrics;
  m_ingested_ = &m.GetCounter("herald_stream_events_ingested_total", "Events appended to the log.");
  m_applied_ = &m.GetCounter("herald_stream_events_applied_total",
                             "Events applied to the partition states.");
  m_late_ = &m.GetCounter("herald_stream_late_events_total",
                          "Events older than the watermark minus the allowed lateness; not applied.");
  m_checkpoints_ = &m.GetCounter("herald_stream_checkpoints_total",
                                 "Partition checkpoints written (states and log offset).");
  m_checkpoint_failures_ = &m.GetCounter("herald_stream_checkpoint_failures_total",
                                         "Partition checkpoints whose write failed.");
  m_rebuilds_ = &m.GetCounter("herald_stream_partition_rebuilds_total",
                              "Partitions reloaded from their checkpoint and replayed.");
  m_latency_ = &m.GetHistogram("herald_stream_event_to_feature_seconds",
                               "From ingest to the event's effect being visible in features.",
                               LatencyBuckets());
  m_hot_users_ = &m.GetGauge("herald_stream_hot_users", "Users whose features are in memory.");
  m_stopped_ = &m.GetGauge("herald_stream_partitions_stopped",
                           "Partitions stopped by a log record or checkpoint they cannot read.");
  state_cf_ = opt_.db->Family(store::kStateFamily).value();
  shard_states_.resize(opt_.shards->size());
  retain_from_ = std::make_unique<std::atomic<std::uint64_t>[]>(partitioner_.partitions());
  for (PartitionId p = 0; p < partitioner_.partitions(); ++p) {
    auto slot = std::make_unique<Slot>();
    slot->part.id_ = p;
    slot->part.clock_ = opt_.clock;
    slot->part.pipeline_ = this;
    slots_.push_back(std::move(slot));
    shard_states_[opt_.shards->ShardOf(p)].owned.push_back(p);
  }
}

Result<std::unique_ptr<Pipeline>> Pipeline::Create(const PipelineOptions& o) {
  if (!o.log || !o.db || !o.shards || !o.clock || !o.metrics) {
    return Status::InvalidArgument("pipeline needs a log, a store, shards, a clock and metrics");
  }
  if (!o.db->Family(store::kStateFamily).ok()) {
    return Status::InvalidArgument("pipeline needs the store's \"state\" column family");
  }
  std::unique_ptr<Pipeline> p(new Pipeline(o));
  size_t per_partition = std::max<size_t>(1, o.max_hot_users / p->partitioner_.partitions());
  store::Db* db = o.db;
  store::ColumnFamily cf = p->state_cf_;
  Gauge* hot = p->m_hot_users_;
  p->Register<FeatureStore>("features", store::StateTag::kFeatures, [=](Partition& part) {
    return std::make_unique<FeatureStore>(db, cf, part.id(), per_partition, hot);
  });
  p->Register<OutcomeWindows>("outcome_windows", store::StateTag::kWindows,
                              [](Partition&) { return std::make_unique<OutcomeWindows>(); });
  Micros ttl = o.idempotency_ttl;
  p->Register<IngestKeys>("ingest_keys", store::StateTag::kIngestKeys, [ttl](Partition& part) {
    return std::make_unique<IngestKeys>(part.clock(), ttl);
  });
  return p;
}

Pipeline::~Pipeline() { Stop(); }

void Pipeline::AddState(std::string name, store::StateTag tag,
                        std::function<std::unique_ptr<PartitionState>(Partition&)> make) {
  if (started_) {
    log::Error("a partition state was registered after start", {{"state", name}});
    std::abort();  // a programming error: it would miss the checkpoint and replay
  }
  for (const auto& s : specs_) {
    if (s.tag == tag) {
      log::Error("two partition states share a tag", {{"state", name}, {"other", s.name}});
      std::abort();  // a programming error: their records would mix
    }
  }
  specs_.push_back({std::move(name), tag, std::move(make)});
}

Status Pipeline::LoadPartition(Slot& slot) {
  PartitionId p = slot.part.id();
  slot.part.states_.clear();
  for (const auto& spec : specs_) {
    slot.part.states_.push_back(spec.make(slot.part));
    StateReader reader(opt_.db, state_cf_, p, spec.tag);
    Status s = slot.part.states_.back()->Load(reader);
    if (!s.ok()) {
      return Status(s.code(), "partition " + std::to_string(p) + ", state " + spec.name + ": " +
                                  s.message());
    }
  }
  auto v = opt_.db->Get(state_cf_, store::PartitionKey(p, store::StateTag::kCheckpoint, ""));
  HERALD_RETURN_IF_ERROR(v.status());
  slot.next = 0;
  slot.watermark = 0;
  slot.has_checkpoint = v->has_value();
  if (slot.has_checkpoint &&
      !DecodeCheckpointRecord(**v, &slot.next, &slot.watermark)) {
    return Status::Corruption("bad stream checkpoint for partition " + std::to_string(p));
  }
  slot.checkpointed = slot.next;
  retain_from_[p].store(slot.checkpointed, std::memory_order_release);
  if (std::uint64_t start = opt_.log->StartOffset(p); slot.next < start) {
    log::Warn("the log no longer holds events after the partition's checkpoint; they are skipped",
              {{"partition", p}, {"checkpoint", slot.next}, {"log_start", start}});
    slot.next = start;
  }
  slot.dirty = false;
  slot.part.changed_ = false;
  CatchUp(slot, opt_.log->EndOffset(p));
  for (auto& state : slot.part.states_) state->OnRecovered(slot.part);
  return Status::Ok();
}

Status Pipeline::Start() {
  if (started_.exchange(true)) return Status::FailedPrecondition("pipeline already started");
  std::mutex mu;
  Status first;
  std::uint64_t replayed = 0;
  opt_.shards->RunOnAll([&](unsigned shard) {
    for (PartitionId p : shard_states_[shard].owned) {
      Slot& slot = *slots_[p];
      Status s = LoadPartition(slot);
      if (!s.ok()) StopPartition(slot, s);
      std::lock_guard<std::mutex> l(mu);
      replayed += slot.next - slot.checkpointed;
      if (!s.ok() && first.ok()) first = s;
    }
    PublishCounts(shard);
  });
  if (!first.ok()) {
    start_failed_ = true;
    return first;
  }
  log::Info("event pipeline recovered", {{"replayed_events", replayed}, {"states", specs_.size()}});
  for (unsigned s = 0; s < opt_.shards->size(); ++s) ArmTick(s);
  return Status::Ok();
}

void Pipeline::Rebuild(Slot& slot) {
  m_rebuilds_->Inc();
  ++slot.part.generation_;  // timers of the old states no longer run, and go now
  for (ShardExecutor::TimerId id : slot.part.timers_) {
    opt_.shards->Cancel(opt_.shards->ShardOf(slot.part.id()), id);
  }
  slot.part.timers_.clear();
  Status s = LoadPartition(slot);
  if (!s.ok()) StopPartition(slot, s);
}

void Pipeline::StopPartition(Slot& slot, const Status& why) {
  if (slot.stopped) return;
  slot.stopped = true;
  m_stopped_->Add(1);
  log::Error("partition stopped: its events are kept in the log but no longer applied",
             {{"partition", slot.part.id()}, {"at_offset", slot.next}, {"error", why}});
}

bool Pipeline::Post(PartitionId p, std::function<void(Partition*)> fn) {
  if (p >= slots_.size() || stopping_) return false;
  return opt_.shards->PostBounded(opt_.shards->ShardOf(p), [this, p, fn = std::move(fn)] {
    Slot& slot = *slots_[p];
    fn(slot.stopped ? nullptr : &slot.part);
  });
}

void Pipeline::EachPartition(std::function<void(Partition&)> fn, std::function<void(Status)> done) {
  struct Gather {
    std::atomic<unsigned> left;
    std::atomic<bool> failed{false};
  };
  auto g = std::make_shared<Gather>();
  unsigned shards = opt_.shards->size();
  g->left = shards;
  if (stopping_) return done(Status::Unavailable("shutting down"));
  auto finish = [g, done] {
    if (g->left.fetch_sub(1) != 1) return;
    done(g->failed ? Status::Unavailable("shutting down") : Status::Ok());
  };
  for (unsigned s = 0; s < shards; ++s) {
    bool posted = opt_.shards->Post(s, [this, s, fn, finish] {
      for (PartitionId p : shard_states_[s].owned) {
        if (!slots_[p]->stopped) fn(slots_[p]->part);
      }
      finish();
    });
    if (!posted) {
      g->failed = true;
      finish();
    }
  }
}

ShardExecutor::TimerId Pipeline::PostTimer(PartitionId p, std::uint64_t generation, Micros due,
                                           std::function<void(Partition&)> fn) {
  auto id = std::make_shared<ShardExecutor::TimerId>(0);
  *id = opt_.shards->PostAt(opt_.shards->ShardOf(p), due,
                            [this, alive = alive_, p, generation, id, fn = std::move(fn)] {
                              if (!*alive) return;
                              Slot& slot = *slots_[p];
                              if (slot.part.generation_ != generation || slot.stopped) return;
                              slot.part.timers_.erase(*id);
                              fn(slot.part);
                            });
  return *id;
}

void Pipeline::Ingest(std::vector<Event> events, std::function<void(Status)> done,
                      const IngestMark* mark) {
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
    std::optional<IngestMark> mark;
    Micros appended_at = 0;
  };
  auto pending = std::make_shared<Pending>();
  if (mark) pending->mark = *mark;
  pending->received = std::chrono::steady_clock::now();
  pending->by_partition.resize(partitioner_.partitions());
  pending->first.resize(partitioner_.partitions());
  pending->done = std::move(done);
  for (Event& e : events) {
    if (opt_.transform) opt_.transform->Apply(e);
    pending->by_partition[partitioner_.PartitionOf(e.user_id)].push_back(std::move(e));
  }
  m_ingested_->Inc(events.size());
  int groups = 0;
  for (const auto& evs : pending->by_partition) groups += evs.empty() ? 0 : 1;
  pending->left = groups;
  Micros now = opt_.clock->Now();
  pending->appended_at = now;
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
    if (mark) {  // last, so that it is durable only with every event before it
      EncodeIngestMark(*mark, &encoded);
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
        opt_.shards->PostBounded(shard, [this, shard, pending] {
          for (PartitionId q : shard_states_[shard].owned) {
            auto& batch = pending->by_partition[q];
            if (!batch.empty()) {
              ApplyBatch(q, pending->first[q], batch,
                         pending->mark ? &*pending->mark : nullptr, pending->appended_at);
            }
          }
          PublishCounts(shard);
          m_latency_->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                            pending->received)
                                  .count());
        });
      }
      pending->done(pending->first_error);
    });
  }
}

void Pipeline::IngestOnce(std::string tenant, std::string key, std::string digest,
                          std::vector<Event> events,
                          std::function<void(Result<IngestOutcome>)> done) {
  if (events.empty()) return done(IngestOutcome{});
  struct Check {
    std::vector<Event> events;
    std::vector<PartitionId> parts;  // touched, ascending
    std::vector<char> present;       // by index in parts
    std::atomic<int> left{0};
    std::atomic<bool> conflict{false}, failed{false};
    IngestMark mark;
    std::function<void(Result<IngestOutcome>)> done;
  };
  auto c = std::make_shared<Check>();
  c->events = std::move(events);
  c->mark = {std::move(tenant), std::move(key), std::move(digest)};
  c->done = std::move(done);
  std::vector<char> touched(partitioner_.partitions(), 0);
  for (const Event& e : c->events) touched[partitioner_.PartitionOf(e.user_id)] = 1;
  for (PartitionId p = 0; p < touched.size(); ++p) {
    if (touched[p]) c->parts.push_back(p);
  }
  c->present.assign(c->parts.size(), 0);
  c->left = static_cast<int>(c->parts.size());
  // Once every touched partition has answered: append what is not there yet.
  auto finish = [this, c] {
    if (c->failed) return c->done(Status::Unavailable("shutting down"));
    if (c->conflict) {
      return c->done(Status::FailedPrecondition(
          "the Idempotency-Key was used before for a different request body"));
    }
    std::vector<Event> rest;
    for (Event& e : c->events) {
      PartitionId p = partitioner_.PartitionOf(e.user_id);
      size_t i = static_cast<size_t>(std::lower_bound(c->parts.begin(), c->parts.end(), p) -
                                     c->parts.begin());
      if (!c->present[i]) rest.push_back(std::move(e));
    }
    if (rest.empty()) return c->done(IngestOutcome{0, true});
    size_t n = rest.size();
    Ingest(
        std::move(rest),
        [c, n](Status s) {
          if (!s.ok()) return c->done(s);
          c->done(IngestOutcome{n, false});
        },
        &c->mark);
  };
  auto keys = ingest_keys();
  for (size_t i = 0; i < c->parts.size(); ++i) {
    bool posted = Post(c->parts[i], [this, c, i, keys, finish](Partition* part) {
      const IngestKeys::Entry* e = part ? part->Get(keys).Find(c->mark.tenant, c->mark.key) : nullptr;
      if (!part) c->failed = true;  // a stopped partition cannot take the append
      if (e) {
        c->present[i] = 1;
        if (e->digest != c->mark.digest) c->conflict = true;
      }
      if (c->left.fetch_sub(1) != 1) return;
      // The append may wait for the log: off the shard when there is somewhere to go.
      if (!opt_.background || !opt_.background->Post(finish)) finish();
    });
    if (!posted) {
      c->failed = true;
      if (c->left.fetch_sub(1) == 1) finish();
    }
  }
}

void Pipeline::ApplyBatch(PartitionId p, std::uint64_t first, std::vector<Event>& events,
                          const IngestMark* mark, Micros appended_at) {
  Slot& slot = *slots_[p];
  if (slot.stopped) return;
  // Batches may arrive out of offset order; anything missing is read from the log.
  if (first > slot.next) CatchUp(slot, first);
  for (size_t i = 0; i < events.size(); ++i) {
    std::uint64_t offset = first + i;
    if (offset < slot.next) continue;  // already applied (replay or catch-up)
    if (offset > slot.next) return;    // the catch-up stopped at a gap
    if (!ApplyOne(slot, offset, events[i])) return;
    slot.next = offset + 1;
  }
  if (mark && first + events.size() == slot.next) {
    ApplyMark(slot, *mark, appended_at);
    slot.next = first + events.size() + 1;
  }
}

void Pipeline::ApplyMark(Slot& slot, const IngestMark& mark, Micros appended_at) {
  static_cast<IngestKeys&>(*slot.part.states_[2]).OnMark(mark, appended_at);
  slot.dirty = true;
}

void Pipeline::CatchUp(Slot& slot, std::uint64_t until) {
  PartitionId p = slot.part.id();
  Event e;
  IngestMark mark;
  UserUpdate update;
  Status bad;
  while (slot.next < until && !slot.stopped) {
    std::uint64_t before = slot.next;
    auto next = opt_.log->Read(p, slot.next, std::min<std::uint64_t>(until - slot.next, 4096),
                               [&](std::uint64_t off, Micros ts, std::string_view payload) {
                                 if (off >= until) return false;
                                 const bool is_mark = IsIngestMark(payload);
                                 const bool is_user = IsUserUpdate(payload);
                                 Status d = is_mark   ? DecodeIngestMark(payload, &mark)
                                            : is_user ? DecodeUserUpdate(payload, &update)
                                                      : DecodeEvent(payload, &e);
                                 if (!d.ok()) {
                                   bad = Status(d.code(), "offset " + std::to_string(off) + ": " +
                                                              d.message());
                                   return false;
                                 }
                                 if (is_mark) {
                                   ApplyMark(slot, mark, ts);
                                 } else if (is_user) {
                                   ApplyUserUpdate(slot, update, off);
                                 } else if (!ApplyOne(slot, off, e)) {
                                   return false;  // stopped
                                 }
                                 slot.next = off + 1;
                                 return true;
                               });
    if (slot.stopped) return;
    if (bad.ok() && !next.ok()) bad = next.status();
    if (!bad.ok()) {
      // Never past a record that cannot be applied: the partition stops where it is,
      // its later events stay in the log, and operators see it in the metrics.
      StopPartition(slot, bad);
      return;
    }
    if (slot.next == before) return;  // nothing more is readable yet
  }
}

bool Pipeline::ApplyOne(Slot& slot, std::uint64_t offset, const Event& e) {
  if (slot.watermark && e.ts < slot.watermark - opt_.allowed_lateness) {
    m_late_->Inc();
    return true;
  }
  Micros watermark = std::max(slot.watermark, e.ts);
  AppliedEvent applied{e, slot.part.id(), offset, watermark, {}, {}};
  applied.classifier = &classifier_;
  applied.part = &slot.part;
  const bool classify = classifier_ && IsWindowOutcome(e.type);
  for (size_t i = 0; i < slot.part.states_.size(); ++i) {
    slot.part.states_[i]->OnEvent(applied);
    if (!applied.failure.ok()) {
      StopPartition(slot, applied.failure);
      return false;
    }
    if (i == 0 && classify) applied.user.user_class = classifier_(slot.part, applied);
  }
  slot.watermark = watermark;
  slot.dirty = true;
  // Published once per batch: a shared atomic per event would bounce between cores.
  ++shard_states_[opt_.shards->ShardOf(slot.part.id())].applied;
  return true;
}

void Pipeline::PublishCounts(unsigned shard) {
  ShardState& st = shard_states_[shard];
  if (st.applied) m_applied_->Inc(st.applied);
  st.applied = 0;
}

store::WriteBatch Pipeline::BuildCheckpoint(Slot& slot) {
  store::WriteBatch b;
  PartitionId p = slot.part.id();
  for (size_t i = 0; i < specs_.size(); ++i) {
    CheckpointWriter w(&b, state_cf_, p, specs_[i].tag);
    slot.part.states_[i]->Checkpoint(w);
  }
  b.Put(state_cf_, store::PartitionKey(p, store::StateTag::kCheckpoint, ""),
        EncodeCheckpointRecord(slot.next, slot.watermark));
  slot.dirty = false;
  slot.part.changed_ = false;
  return b;
}

void Pipeline::CheckpointAsync(Slot& slot) {
  if (slot.writing || slot.stopped) return;
  if (slot.part.states_.size() != specs_.size()) return;  // never fully loaded
  bool over = slot.part.features().hot_users() * partitioner_.partitions() > opt_.max_hot_users;
  if (!slot.dirty && !slot.part.changed_ && !over && slot.has_checkpoint &&
      slot.checkpointed == slot.next) {
    return;  // nothing new since the latest checkpoint
  }
  store::WriteBatch b = BuildCheckpoint(slot);
  slot.writing = true;
  std::uint64_t next = slot.next;
  PartitionId p = slot.part.id();
  writes_in_flight_.fetch_add(1);
  opt_.db->WriteAsyncAlways(std::move(b), [this, p, next](Status s) {
    // A failed checkpoint is undone on the shard before the partition moves on.
    bool posted = opt_.shards->PostToPartition(p, [this, p, next, s] {
      OnCheckpointWritten(*slots_[p], next, s);
    });
    if (!posted) log::Warn("checkpoint result not applied: shards stopped", {{"partition", p}});
    writes_in_flight_.fetch_sub(1);
  });
}

void Pipeline::OnCheckpointWritten(Slot& slot, std::uint64_t next, Status s) {
  slot.writing = false;
  if (!s.ok()) {
    // The states forgot what they wrote: rebuild them from the last durable
    // checkpoint and the log, so nothing applied since is lost.
    m_checkpoint_failures_->Inc();
    log::Error("partition checkpoint failed; reloading the partition",
               {{"partition", slot.part.id()}, {"error", s}});
    Rebuild(slot);
    return;
  }
  m_checkpoints_->Inc();
  slot.checkpointed = next;
  retain_from_[slot.part.id()].store(next, std::memory_order_release);
  slot.has_checkpoint = true;
  for (auto& state : slot.part.states_) state->OnCheckpointed();
}

std::vector<std::uint64_t> Pipeline::RetainFrom() const {
  std::vector<std::uint64_t> out(partitioner_.partitions());
  for (PartitionId p = 0; p < out.size(); ++p) out[p] = retain_from_[p].load(std::memory_order_acquire);
  return out;
}

Micros Pipeline::TickInterval() const {
  // Every partition is checkpointed once per checkpoint_interval, one partition
  // per shard per tick.
  size_t per_shard = (partitioner_.partitions() + opt_.shards->size() - 1) / opt_.shards->size();
  Micros tick = opt_.checkpoint_interval / static_cast<Micros>(std::max<size_t>(per_shard, 1));
  return std::max<Micros>(tick, 1000);
}

void Pipeline::ArmTick(unsigned shard) {
  ticks_.push_back(opt_.shards->PostEvery(shard, TickInterval(), [this, alive = alive_, shard] {
    if (!*alive || stopping_) return;
    CheckpointTick(shard);
  }));
}

void Pipeline::CheckpointTick(unsigned shard) {
  ShardState& st = shard_states_[shard];
  if (st.owned.empty()) return;
  Micros now = opt_.clock->Now();
  Slot& turn = *slots_[st.owned[st.rotation++ % st.owned.size()]];
  if (!turn.stopped) {
    turn.last_tick = now;
    CheckpointAsync(turn);
  }
  // Partitions whose turn the clock jumped over (a virtual clock moved by hours),
  // and those over their share of hot users (so that clean users can be evicted),
  // are checkpointed now too.
  for (PartitionId p : st.owned) {
    Slot& slot = *slots_[p];
    if (slot.stopped) continue;
    bool overdue = now - slot.last_tick >= 2 * opt_.checkpoint_interval;
    bool over = slot.part.features().hot_users() * partitioner_.partitions() > opt_.max_hot_users;
    if (overdue || over) {
      if (overdue) slot.last_tick = now;
      CheckpointAsync(slot);
    }
  }
}

Status Pipeline::Checkpoint() {
  std::mutex mu;
  Status first;
  for (;;) {
    // A partition's checkpoints are written one at a time, in order.
    while (writes_in_flight_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::atomic<int> busy{0};
    opt_.shards->RunOnAll([&](unsigned shard) {
      for (PartitionId p : shard_states_[shard].owned) {
        Slot& slot = *slots_[p];
        if (slot.stopped) continue;
        if (slot.writing) {
          ++busy;  // its async result is queued behind this task
          continue;
        }
        Status s = opt_.db->Write(BuildCheckpoint(slot));
        OnCheckpointWritten(slot, slot.next, s);
        if (!s.ok()) {
          std::lock_guard<std::mutex> l(mu);
          if (first.ok()) first = s;
        }
      }
    });
    if (busy == 0) return first;
  }
}

void Pipeline::Stop() {
  if (stopping_.exchange(true)) return;
  if (!started_) {
    *alive_ = false;
    return;
  }
  for (unsigned s = 0; s < ticks_.size(); ++s) opt_.shards->Cancel(s, ticks_[s]);
  if (!start_failed_) {
    Status s = Checkpoint();
    if (!s.ok()) log::Error("final checkpoint failed", {{"error", s}});
  }
  *alive_ = false;
  // A barrier: a timer that saw alive == true has finished once this returns.
  opt_.shards->RunOnAll([](unsigned) {});
}

void Pipeline::GetWindows(const std::string& tenant, Micros size, Micros since,
                          std::function<void(std::vector<WindowRow>)> done) {
  auto h = windows();
  RunOnEveryPartition(
      [h, tenant, size, since](Partition& p) { return p.Get(h).counts().Windows(size, tenant, since); },
      std::function<void(Result<std::vector<std::vector<WindowRow>>>)>(
          [done](Result<std::vector<std::vector<WindowRow>>> parts) {
            if (!parts.ok()) return done({});
            std::map<std::tuple<std::string, std::string, Micros>, WindowRow> merged;
            for (auto& part : *parts) {
              for (auto& r : part) {
                auto [it, fresh] = merged.try_emplace({r.tenant, r.user_class, r.start}, r);
                if (!fresh) it->second.counts += r.counts;
              }
            }
            std::vector<WindowRow> out;
            for (auto& [k, r] : merged) out.push_back(std::move(r));
            done(std::move(out));
          }));
}

void Pipeline::GetByLocalHour(const std::string& tenant,
                              std::function<void(std::array<OutcomeCounts, 24>)> done) {
  auto h = windows();
  RunOnEveryPartition(
      [h, tenant](Partition& p) { return p.Get(h).counts().ByLocalHour(tenant, "all"); },
      std::function<void(Result<std::vector<std::array<OutcomeCounts, 24>>>)>(
          [done](Result<std::vector<std::array<OutcomeCounts, 24>>> parts) {
            std::array<OutcomeCounts, 24> sum{};
            if (parts.ok()) {
              for (const auto& part : *parts) {
                for (size_t hr = 0; hr < 24; ++hr) sum[hr] += part[hr];
              }
            }
            done(sum);
          }));
}

void Pipeline::UpdateUsers(std::vector<UserUpdate> updates, std::function<void(Status)> done) {
  for (const UserUpdate& u : updates) {
    if (u.tz && !ValidTimeZone(*u.tz)) return done(Status::InvalidArgument("tz: unknown time zone " + *u.tz));
  }
  if (updates.empty()) return done(Status::Ok());
  struct Pending {
    std::vector<std::vector<UserUpdate>> by_partition;
    std::vector<std::uint64_t> first;
    std::atomic<int> left{0};
    std::mutex mu;
    Status first_error;
    std::function<void(Status)> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->by_partition.resize(partitioner_.partitions());
  pending->first.resize(partitioner_.partitions());
  pending->done = std::move(done);
  for (UserUpdate& u : updates) {
    pending->by_partition[partitioner_.PartitionOf(u.user_id)].push_back(std::move(u));
  }
  int groups = 0;
  for (const auto& g : pending->by_partition) groups += g.empty() ? 0 : 1;
  pending->left = groups;
  Micros now = opt_.clock->Now();
  for (PartitionId p = 0; p < pending->by_partition.size(); ++p) {
    const auto& list = pending->by_partition[p];
    if (list.empty()) continue;
    std::vector<std::string> records(list.size());
    std::vector<std::string_view> views;
    for (size_t i = 0; i < list.size(); ++i) {
      EncodeUserUpdate(list[i], &records[i]);
      views.emplace_back(records[i]);
    }
    opt_.log->Append(p, views, now, [this, p, pending](Status s, std::uint64_t first) {
      if (s.ok()) {
        pending->first[p] = first;
      } else {
        std::lock_guard<std::mutex> l(pending->mu);
        if (pending->first_error.ok()) pending->first_error = s;
        pending->by_partition[p].clear();
      }
      if (pending->left.fetch_sub(1) != 1) return;
      for (PartitionId q = 0; q < pending->by_partition.size(); ++q) {
        if (pending->by_partition[q].empty()) continue;
        opt_.shards->PostToPartition(q, [this, q, pending] {
          Slot& slot = *slots_[q];
          if (slot.stopped) return;
          std::uint64_t first = pending->first[q];
          if (first > slot.next) CatchUp(slot, first);
          const auto& list = pending->by_partition[q];
          for (size_t i = 0; i < list.size(); ++i) {
            if (first + i < slot.next) continue;
            if (first + i > slot.next) return;
            ApplyUserUpdate(slot, list[i], first + i);
            slot.next = first + i + 1;
          }
        });
      }
      pending->done(pending->first_error);
    });
  }
}

Status Pipeline::SetTimeZone(const std::string& tenant, const std::string& user_id,
                             const std::string& tz_name) {
  std::promise<Status> p;
  UpdateUsers({UserUpdate{tenant, user_id, tz_name}}, [&](Status s) { p.set_value(s); });
  return p.get_future().get();
}

void Pipeline::ApplyUserUpdate(Slot& slot, const UserUpdate& update, std::uint64_t) {
  slot.part.features().Apply(update);
  for (size_t i = 1; i < slot.part.states_.size(); ++i) {
    slot.part.states_[i]->OnUserUpdate(update, *opt_.clock);
  }
  slot.dirty = true;
}

}  // namespace herald::stream
