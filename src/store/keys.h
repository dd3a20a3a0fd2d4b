// The store's key layout: every column family herald writes and how its keys are
// built. This is an on-disk format, recorded here in one place; each record's
// value format is documented next to its codec (named below).
//
// Layout version 2 (kLayoutVersion), current:
//
//   meta            process-wide records, plain text values:
//                     "layout"         the layout version, decimal ("2")
//                     "partitions"     server.partitions, decimal; fixed for life
//                     "virtual_clock"  the virtual clock's time, decimal micros
//   state           everything that belongs to one partition, keyed
//                     u16 partition (big-endian) | u8 StateTag | suffix
//                   so that one partition's records form one contiguous range
//                   (PartitionPrefix) and one kind of record within it another
//                   (PartitionTagPrefix). Suffixes by tag:
//                     kCheckpoint   ""                    stream/pipeline.cc
//                     kFeatures     tenant \0 user_id     stream/features_codec.cc
//                     kUser         tenant \0 user_id     stream/feature_store.cc
//                     kWindows      tenant \0 class \0 u8 size u64BE start,
//                                   or 0xff tenant \0 class
//                                                         stream/outcome_windows.cc
//                     kIngestKeys   tenant \0 key         stream/ingest_keys.cc
//                     kProfile, kProfileActivity, kProfileFollow
//                                                         profile/profile_store.h
//                     kSendTime     tenant \0 user_id, \0 "population"
//                                                         model/send_time_store.h
//                     kPolicyUser, kPolicyFollow, kPolicyDecision, kPolicyAccounts
//                                                         policy/policy_store.h
//                     kTest         any; never written by the herald binary
//   tenants         "t/<tenant_id>" -> JSON                 api/tenants.cc
//   accounts        tenant \0 account_id -> JSON            policy/accounts.cc
//   ingest_keys     (layout 1 only: idempotency keys now live in the state family)
//   devices         tenant \0 device_id -> JSON; "secret"   mqtt/devices.cc
//   mqtt_sessions   session key -> JSON                     mqtt/persist_format.h
//   mqtt_messages   session key \0 u64BE seq -> record      mqtt/persist_format.h
//   mqtt_retained   internal topic -> u8 qos | payload      mqtt/persist_format.h
//
// Layout version 1 (before partition-prefixed keys) kept the features in a
// "features" family and time zones in a "users" family, both keyed
// tenant \0 user_id, and checkpoints as "ckpt/<p>" -> "<next> <watermark>" text in
// "stream_meta". stream/layout.h migrates such a directory in place.
//
// Tenant ids and user ids never contain NUL (core/ids.h), so "tenant \0 rest"
// keys of one tenant sort together and split unambiguously.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/partition.h"

namespace herald::store {

inline constexpr int kLayoutVersion = 2;

inline constexpr const char* kMetaFamily = "meta";
inline constexpr const char* kStateFamily = "state";

// The kind of a partition record. The values are durable: never renumber or
// reuse one. Modules above stream take theirs from the ranges reserved here.
enum class StateTag : std::uint8_t {
  kCheckpoint = 0,   // the partition's log offset and watermark
  kFeatures = 1,     // stream: per-user features
  kUser = 2,         // stream: per-user attributes (time zone)
  kWindows = 3,      // stream: push outcome windows and counts by local hour
  kIngestKeys = 4,   // stream: idempotency keys of ingests that reached the partition
  kProfile = 16,          // profile: per-user attributes
  kProfileActivity = 17,  // profile: per-user behaviour, interests and cell
  kProfileFollow = 18,    // profile: follows, for follows(...) in segments
  kSendTime = 32,        // model: per-user send-time evidence and the population's
  kPolicyUser = 48,      // policy: per-user counters and fatigue
  kPolicyFollow = 49,    // policy: per user x account (the follow)
  kPolicyDecision = 50,  // policy: recorded decisions
  kPolicyAccounts = 51,  // policy: pushes and marks per account and day
  kEngineMessage = 64,   // engine: every push's life (engine/engine_store.h)
  kEngineCampaign = 65,  // engine: a campaign's funnel counts in the partition
  kEngineSchedule = 66,  // engine: the durable schedule (engine/schedule.h)
  kEngineSample = 67,    // engine: scored pushes whose open window has not closed (engine/engine_store.h)
  kEngineInDoubt = 69,   // engine: pushes sent whose gateway outcome is not in the log yet (engine/engine_store.h)
  kEngineArticle = 68,   // engine: subscription articles waiting for a user's daily digest (engine/digest.h)
  // 16..31 profile, 33..47 model, 52..63 policy, 64..95 engine, 96..111 experiment.
  kTest = 255,       // tests only
};

// u16 partition (big-endian) | u8 tag: the prefix of one kind of record of one
// partition. Partitions are below 65536 (server.partitions).
std::string PartitionTagPrefix(PartitionId p, StateTag tag);
// u16 partition (big-endian): the prefix of all of one partition's records.
std::string PartitionPrefix(PartitionId p);
// PartitionTagPrefix(p, tag) + suffix.
std::string PartitionKey(PartitionId p, StateTag tag, std::string_view suffix);
// PartitionKey(p, tag, tenant \0 user_id).
std::string UserKey(PartitionId p, StateTag tag, std::string_view tenant, std::string_view user_id);
// Splits a state key into its partition, tag and suffix; false if it is shorter
// than the 3-byte prefix.
bool ParsePartitionKey(std::string_view key, PartitionId* p, StateTag* tag, std::string_view* suffix);

}  // namespace herald::store
