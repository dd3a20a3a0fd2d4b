// EngineStore: the engine's state of one partition, a PartitionState registered
// after the policy store.
//
// - Messages: the life of every push of the partition's users, folded from the
//   log: its `sent` event (account, campaign, expiry), the gateway's outcome
//   (delivered, queued, expired, refused) and the device receipts (opened,
//   clicked, dismissed, not_interested, complaint, converted). GET
//   /v1/messages/{id} reads them. A record leaves memory at the next
//   checkpoint; one still changing `kMessageDays` after its push is deleted.
// - Reservations: pushes decided on the shard and not yet applied through the
//   log. A decision counts them as sent (policy::ApplySend on a copy of the
//   user's state), so two pushes decided one after the other cannot both pass a
//   cap; the `sent` event of a reservation, once applied, replaces it.
//
// - Samples: a scored push (its `sent` event carries the CTR model's feature
//   vector, attrs.x) waits until its open window closes, `sample_window` after
//   it was sent; the engine then writes the vector labelled by its receipts
//   (opened or clicked) to the day's sample file and removes the entry.
//
// Records, in the state family (store/keys.h):
//   kEngineMessage   tenant \0 message_id  -> EncodeMessage
//   kEngineCampaign  tenant \0 campaign_id -> 15 varints (Funnel, in field order;
//                    older records have the first 11)
//   kEngineSample    u64BE window close | tenant \0 message_id -> "" 
//   kEngineInDoubt   tenant \0 message_id -> a push sent whose outcome had not come
//
// Lives on the partition's shard.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/policy_store.h"
#include "policy/rules.h"
#include "stream/partition_state.h"

namespace herald::engine {

inline constexpr Micros kMessageDays = 7;

struct Receipt {
  std::string type;  // opened, clicked, dismissed, not_interested, complaint, converted
  Micros at = 0;
  std::string article_id;  // a digest's article the receipt names ("" for none)
  bool operator==(const Receipt&) const = default;
};

struct MessageRecord {
  std::string user_id, account_id, campaign_id;
  Micros sent_at = 0, expires_at = 0;
  std::string outcome;  // "", delivered, queued, expired, refused
  Micros outcome_at = 0;
  std::vector<Receipt> receipts;
  // The CTR model's score at the decision (-1: not scored), the version that
  // scored it (0: the source's hourly rate, before any model), and the hashed
  // features it scored.
  double pctr = -1;
  std::uint32_t model_version = 0;
  std::vector<std::uint32_t> features;
  // An ad's price per click and its charge per delivered push, in millionths of
  // the bids' currency, and the budget day they count against (0: not an ad).
  std::uint64_t price_micros = 0, charge_micros = 0;
  std::int64_t budget_day = 0;
  // A digest's articles as listed (best first): each article's id (its campaign)
  // and the hashed features it was scored on, one CTR sample each.
  struct Article {
    std::string id;
    std::vector<std::uint32_t> features;
    bool operator==(const Article&) const = default;
  };
  std::vector<Article> articles;
  bool operator==(const MessageRecord&) const = default;
  // Opened or clicked by `until`.
  bool Engaged(Micros until) const;
  // The digest article `id` was opened or clicked by `until` (a receipt naming no
  // article counts for the first).
  bool ArticleEngaged(std::string_view id, Micros until) const;
};
std::string EncodeMessage(const MessageRecord& m);
// The key of a sample entry (the suffix after the partition's tag prefix), and back.
std::string SampleKey(Micros close, std::string_view tenant, std::string_view message_id);
bool DecodeSampleKey(std::string_view suffix, Micros* close, std::string* tenant, std::string* message_id);
// The score's attrs of a sent event: "pctr", "model_version" and "x" (the feature
// indices in hex, comma-separated); parsed back into `m`.
void AppendScoreAttrs(double pctr, std::uint32_t version, const std::vector<std::uint32_t>& features, std::string* attrs);
void ParseScoreAttrs(std::string_view attrs, MessageRecord* m);
// An ad's attrs of a sent event: "price" and "charge" (per click and per
// delivered push) and "budget_day"; parsed back into `m`.
void AppendAdAttrs(double price, double charge, std::int64_t budget_day, std::string* attrs);
// A digest's articles: "articles", "id:hex,hex;id:hex,..." in the order listed.
void AppendArticleAttrs(const std::vector<MessageRecord::Article>& articles, std::string* attrs);
Result<MessageRecord> DecodeMessage(std::string_view bytes);

// The payload attr of a sent event ("payload": the MQTT payload as a string).
void AppendPayloadAttr(const std::string& payload, std::string* attrs);

// A push in the log whose gateway outcome is not (delivered, queued, refused or
// expired): a crash may have come between the two.
struct InDoubtPush {
  std::string tenant, user_id, message_id, account_id, campaign_id, payload;
  Micros expires_at = 0;
};

// A campaign's outcomes in one partition, each counted once per push.
struct Funnel {
  std::uint64_t sent = 0, delivered = 0, queued = 0, expired = 0, refused = 0;
  std::uint64_t opened = 0, clicked = 0, converted = 0, dismissed = 0, not_interested = 0, complaint = 0;
  // Ads, in millionths: the charges of delivered pushes (the spend) and their
  // prices per click; and what the pushes sent on the latest budget day commit.
  std::uint64_t spend_micros = 0, price_micros = 0;
  std::uint64_t budget_day = 0, day_committed_micros = 0;
  Funnel& operator+=(const Funnel& o);  // budget days: the latest's commitments
};

// A push decided and not yet applied.
struct Reservation {
  std::string message_id;
  std::uint64_t account = 0;  // policy::AccountKey
  policy::AccountType type = policy::AccountType::kBusiness;
  policy::Lane lane = policy::Lane::kMarketing;
  std::uint32_t collapse_key = 0, idempotency_key = 0;
  Micros at = 0;
};

class EngineStore final : public stream::PartitionState {
 public:
  // `sample_window`: how long after a scored push its sample waits for a receipt
  // (0: no samples are kept).
  // `stored(partition, close)` runs on the shard once a checkpoint stored sample
  // entries, the earliest closing at `close`.
  EngineStore(store::Db* db, store::ColumnFamily cf, PartitionId p, Micros sample_window = 0,
              std::function<void(PartitionId, Micros)> stored = nullptr)
      : db_(db), cf_(cf), partition_(p), sample_window_(sample_window), stored_(std::move(stored)) {}

  // The message, from memory or the store; NotFound when unknown.
  Result<MessageRecord> Find(std::string_view tenant, std::string_view message_id);

  // The campaign's counts in this partition (zeros when none).
  Funnel FunnelOf(std::string_view tenant, std::string_view campaign_id) const;
  // The pushes sent and not expired at `now` whose outcome is not in the log
  // (those stored by a checkpoint and those replayed since).
  std::vector<InDoubtPush> InDoubt(Micros now);
  // Every campaign's counts with an ad's commitments (tenant \0 campaign, counts).
  std::vector<std::pair<std::string, Funnel>> AdFunnels() const;

  // The user's reservations, oldest first.
  const std::vector<Reservation>* Reserved(std::string_view tenant, std::string_view user_id) const;
  void Reserve(std::string_view tenant, std::string_view user_id, Reservation r);
  // Drops a reservation whose push was not appended after all.
  void Release(std::string_view tenant, std::string_view user_id, std::string_view message_id);

  // `u` and `follow` with the user's reservations applied as sends.
  void ApplyReservations(std::string_view tenant, std::string_view user_id, policy::UserPolicy& u,
                         policy::FollowPolicy* follow, std::uint64_t account, const cctz::time_zone& tz,
                         const policy::PolicyConfig& cfg) const;

  // Removes and returns the sample keys not yet checkpointed whose window closed
  // by `now` (the older ones are in the store).
  std::vector<std::string> TakeDueSamples(Micros now);
  // Puts back keys taken by TakeDueSamples whose samples could not be written.
  void ReturnSamples(std::vector<std::string> keys);
  // The earliest close of a stored sample entry: 0 when unknown (after a start:
  // the store must be looked at), kNever when there is none.
  Micros stored_sample_close() const { return stored_close_; }
  void set_stored_sample_close(Micros close) { stored_close_ = close; }
  // The earliest close of a sample entry stored or new (0: unknown, kNever:
  // none); those of a checkpoint being written are announced by `stored` once
  // they are in the store.
  Micros next_sample_close() const {
    const Micros fresh = new_samples_.empty() ? kNever : new_samples_.front().first;
    return std::min(stored_close_, fresh);
  }

  Status Load(stream::StateReader& reader) override;
  void OnEvent(stream::AppliedEvent& e) override;
  void Checkpoint(stream::CheckpointWriter& writer) override;
  void OnCheckpointed() override;

 private:
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::string Key(std::string_view tenant, std::string_view id) const;

  store::Db* db_;
  store::ColumnFamily cf_;
  PartitionId partition_;
  std::unordered_map<std::string, MessageRecord, KeyHash, std::equal_to<>> messages_;  // changed since load
  std::vector<std::string> dirty_;
  std::unordered_map<std::string, std::vector<Reservation>, KeyHash, std::equal_to<>> reserved_;
  std::unordered_map<std::string, Funnel, KeyHash, std::equal_to<>> funnels_;  // tenant \0 campaign
  std::vector<std::string> dirty_funnels_;
  Micros watermark_ = 0;
  Micros sample_window_;
  // Sample keys not yet checkpointed, with their close times, oldest first; those
  // taken by TakeDueSamples are never written.
  std::deque<std::pair<Micros, std::string>> new_samples_;
  // Pushes sent whose outcome has not come (tenant \0 id): those not yet stored,
  // and those whose outcome came since the last checkpoint (deleted by the next).
  std::unordered_map<std::string, InDoubtPush, KeyHash, std::equal_to<>> in_doubt_;
  std::vector<std::string> doubt_cleared_;
  Micros stored_close_ = 0;
  Micros checkpointing_close_ = kNever;  // of the entries of the checkpoint being written
  std::function<void(PartitionId, Micros)> stored_;
};

}  // namespace herald::engine
