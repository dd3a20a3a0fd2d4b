// Engine: decides and sends pushes. This part serves the single push
// (POST /v1/push), the call most backends make:
//
//   request ─▶ user's shard: policy (with the pushes reserved and not yet applied),
//              template rendering from the profile, payload
//           ─▶ allowed: the `sent` event is appended to the log (durable), then the
//              gateway delivers; its outcome and the device's receipts come back as
//              events and fold into the message's record (EngineStore)
//           ─▶ deferred or suppressed: the decision and its rule, nothing sent
//
// Thread-safe: Push and FindMessage may be called from any thread but a shard;
// their callbacks run on a shard or a log thread.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <functional>
#include <set>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/worker_pool.h"
#include <cctz/time_zone.h>
#include "engine/auction.h"
#include "engine/campaigns.h"
#include "engine/engine_config.h"
#include "engine/engine_store.h"
#include "engine/message.h"
#include "engine/schedule.h"
#include "model/push_features.h"
#include "model/registry.h"
#include "model/send_time_store.h"
#include "mqtt/delivery.h"
#include "policy/accounts.h"
#include "policy/policy_store.h"
#include "profile/profile_store.h"
#include "profile/segment_directory.h"
#include "stream/pipeline.h"

namespace herald::engine {

// Where the engine hands pushes to devices (the MQTT gateway's Deliver).
using Deliver = std::function<Status(mqtt::PushMessage, mqtt::DeliveryCallback)>;
// The same for many pushes at once, with no callback (Gateway::DeliverBatch).
using DeliverBatch = std::function<Status(std::vector<mqtt::PushMessage>&)>;

struct EngineOptions {
  stream::Pipeline* pipeline = nullptr;
  stream::StateHandle<policy::PolicyStore> policy;
  stream::StateHandle<profile::ProfileStore> profiles;
  stream::StateHandle<EngineStore> store;
  stream::StateHandle<ScheduleState> schedule;
  store::Db* db = nullptr;  // the schedule's entries, in the state family
  store::ColumnFamily state_cf{};
  const policy::AccountDirectory* accounts = nullptr;
  const policy::PolicyConfig* policy_config = nullptr;
  const Clock* clock = nullptr;
  MetricsRegistry* metrics = nullptr;
  CampaignDirectory* campaigns = nullptr;
  const profile::SegmentDirectory* segments = nullptr;
  WorkerPool* background = nullptr;  // where campaigns are sent from
  // The models (model/): the CTR model in service scores every push sent (null:
  // the source's hourly open rate), and the send-time evidence picks the time of
  // a "window" campaign (unset: the user's decayed activity by hour).
  const model::ModelRegistry* ctr = nullptr;
  unsigned feature_bits = 20;  // the features' space before any model was trained
  std::optional<stream::StateHandle<model::SendTimeStore>> send_time;
  // Where the scored pushes' samples go once their window closed (empty: none):
  // <samples_dir>/open/YYYYMMDD-pNN.hsv while the day lasts, then moved to
  // samples_dir for the daily training.
  std::string samples_dir;
  Micros sample_window = 24 * kMicrosPerHour;
  // Slot arbitration, the digest and ads (defaults when null).
  const EngineConfig* engine_config = nullptr;
  const AdsConfig* ads_config = nullptr;
  std::uint64_t seed = 0;  // message ids and sampling; 0: random
};

struct PushRequest {
  std::string tenant, user_id, account_id, campaign_id;
  Message message;
  Micros expires_at = 0;  // when the message expires; 0: its TTL from the decision
};

struct PushResult {
  std::string message_id;
  policy::Decision decision;
  std::string explanation;
  std::string outcome;  // set when the caller waits for delivery; "" otherwise
};

class Engine {
 public:
  explicit Engine(const EngineOptions& o);
  // The schedule's partition state, registered after the engine was built.
  void SetSchedule(stream::StateHandle<ScheduleState> h) { o_.schedule = h; }
  // Posts the partition's timer at its earliest entry (on the partition's shard).
  void Arm(stream::Partition& p);
  // The partition is live: its share of the ad budgets' commitments today is
  // counted (ads wait until every partition's is) and its timer armed.
  void Recovered(stream::Partition& p);
  // Writes the partition's samples whose window closed, then again a minute later
  // on the partition's clock (started once the partition is live).
  void Harvest(stream::Partition& p);
  // A checkpoint stored sample entries closing at `close` (EngineStore's callback):
  // the harvest is armed for them when it would come later.
  void OnSamplesStored(PartitionId partition, Micros close);

  // Until set, allowed pushes are appended as sent but reach no device.
  void SetDeliver(Deliver deliver, DeliverBatch batch = nullptr);

  // Decides the push on the user's shard and, when allowed, appends its `sent`
  // event and hands it to the gateway; `done` gets the decision once the sent
  // event is durable (NotFound for an unknown user or account).
  void Push(PushRequest request, std::function<void(Result<PushResult>)> done);

  // Checks and stores the campaign, then plans and sends it in the background
  // (schedule "now"): the audience is expanded on every shard in parallel, each
  // user decided as a single push. `done` gets the stored campaign (created is
  // false for a retried Idempotency-Key); InvalidArgument names the field, with
  // *position for a bad segment expression.
  void CreateCampaign(const std::string& tenant, Campaign c, const std::string& idempotency_key,
                      std::function<void(Result<Campaign>, bool created, size_t position)> done);
  // The campaign as JSON with its whole funnel.
  void CampaignStatus(const std::string& tenant, const std::string& id, std::function<void(Result<std::string>)> done);
  // Cancels a campaign still planning (FailedPrecondition once it was sent).
  Status Cancel(const std::string& tenant, const std::string& id);

  // True when no partition is firing its schedule, has entries due by `now`
  // waiting for their timer, or is writing samples: what was due has been sent.
  // Blocks; not from a shard (a simulation waits on it between steps).
  bool Settled(Micros now);

  // The message's record, looked up on every partition.
  void FindMessage(const std::string& tenant, const std::string& message_id,
                   std::function<void(Result<MessageRecord>)> done);

 private:
  std::string NewMessageId();
  std::string CampaignMessageId(std::string_view campaign_id, std::string_view user_id) const;
  void Plan(const std::string& tenant, const Campaign& c, std::shared_ptr<const profile::Segment> segment);
  struct Planned;
  void Fire(stream::Partition& p);
  struct FireBatch;
  struct Contender;
  // The user's candidates due at once (Fire): ranked by value, the best sent, the
  // others deferred to the next slot or dropped.
  void Contend(stream::Partition& p, std::vector<ScheduleEntry*>& entries, Micros now, FireBatch& out);
  // A digest entry's push: the user's articles ranked; false when there are none.
  bool PrepareDigest(stream::Partition& p, const ScheduleEntry& e, Micros now, Contender* c, FireBatch& out);
  // When the user's next digest is due, from `now`: the golden hour in the
  // window of today's or tomorrow's local day, and that day.
  Micros DigestDue(stream::Partition& p, const std::string& tenant, const std::string& user, Micros now,
                   const cctz::time_zone& tz, std::int64_t* day);

  // Ad campaigns' budgets for the day over all partitions (tenant \0 campaign):
  // what each partition's pushes committed, and the pacer.
  struct AdBudget {
    std::int64_t day = 0;
    std::vector<double> committed;
    Pacer pacer;
  };
  std::int64_t BudgetDay(Micros now, double* fraction) const;
  // Whether an ad may enter the auction now, with a charge of at most `max_charge`:
  // kNone, kAdPaced (try later) or kAdBudget (the day's budget is spent).
  // Admitted, `max_charge` is set aside in partition p's commitments until the
  // auction prices it (CommitAd with the difference).
  policy::Rule AdmitAd(const std::string& key, double budget, Micros now, std::int64_t day, double fraction,
                       double max_charge, double draw, PartitionId p);
  void CommitAd(const std::string& key, std::int64_t day, PartitionId p, double delta);
  // The user's next day's digest entry (for articles left after today's).
  void DigestTomorrow(stream::Partition& p, const ScheduleEntry& e, Micros now, FireBatch& out);
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool seeding_late_ = false;
  std::mutex budgets_mu_;
  std::map<std::string, AdBudget> budgets_;
  std::vector<std::uint8_t> seeded_;
  size_t seeded_count_ = 0;
  EngineConfig engine_cfg_;
  AdsConfig ads_cfg_;
  AuctionConfig auction_cfg_;
  int digest_from_min_ = 0, digest_to_min_ = 0;
  cctz::time_zone budget_tz_;
  // Hands each push to the gateway, retrying up to `attempts` ms while its queue is full.
  void DeliverAll(std::vector<mqtt::PushMessage>& pushes, int attempts, bool observe,
                  std::atomic<std::uint64_t>* dispatched = nullptr);
  std::shared_ptr<const Message> MessageOf(const std::string& tenant, const std::string& campaign_id);
  std::mutex messages_mu_;
  std::map<std::string, std::shared_ptr<const Message>> messages_;  // tenant \0 campaign
  void Send(const std::string& tenant, const std::string& id, std::shared_ptr<Planned> planned);
  // The planning progress of campaigns (tenant \0 id), while the engine runs.
  struct Progress {
    std::atomic<std::uint64_t> partitions{0}, partitions_done{0}, decided{0}, dispatched{0};
  };
  std::shared_ptr<Progress> ProgressOf(const std::string& tenant, const std::string& id, bool create);
  std::mutex progress_mu_;
  std::map<std::string, std::shared_ptr<Progress>> progress_;
  std::mutex cancel_mu_;
  std::set<std::string> cancelled_;  // tenant \0 id of campaigns cancelled while planning
  EngineOptions o_;
  std::shared_ptr<Deliver> deliver_;
  std::shared_ptr<DeliverBatch> deliver_batch_;
  std::vector<mqtt::PushMessage> redeliver_;  // recovered before SetDeliver
  std::mutex deliver_mu_;
  std::atomic<std::uint64_t> sequence_{0};
  std::uint64_t seed_ = 0;
  void CountSuppressed(std::string_view rule, std::uint64_t n);
  // Posts the partition's next harvest at the earliest close (at once when due).
  void ArmHarvest(stream::Partition& p, bool more = false);
  Counter *m_allowed_, *m_deferred_, *m_suppressed_, *m_dispatched_, *m_planned_, *m_fired_, *m_samples_;
  Counter *m_contention_won_, *m_contention_deferred_, *m_contention_dropped_, *m_digests_;
  Histogram* m_dispatch_latency_;
};

}  // namespace herald::engine
