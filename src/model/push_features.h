// The features of a candidate push, hashed for the CTR learners. The engine
// builds the vector once, scores it, and logs it with the push, so that the
// sample the model later learns from is exactly what it scored (no skew).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/learner.h"
#include "model/registry.h"

namespace herald::model {

struct PushContext {
  std::string user_class;        // profile class ("student", ...), empty if unknown
  std::string account_id;
  std::string form;              // text, image_text, video, mini_program, service_card
  int local_hour = -1;           // 0..23 in the user's zone
  int weekday = -1;              // 0 = Monday
  std::string title;
  std::string device, network;   // e.g. "ios", "wifi"
  std::vector<std::string> tags;            // the user's top interest tags
  std::vector<std::uint64_t> tag_keys;      // or their keys (stream::KeyOf)
  std::vector<std::string> experiment;      // "layer:variant" of the user's experiments
  double activity_at_hour = -1;  // the user's decayed activity at this hour of the week
};

// Title traits the source measured: digits (+19% opens), emoji (+27% CTR), length.
struct TitleTraits {
  bool digits = false, emoji = false;
  size_t chars = 0;  // UTF-8 code points
};
TitleTraits TraitsOf(std::string_view title);

// One-hot fields and crosses: class, account, form, hour, weekday, hour x weekday,
// title traits, device, network, tags, experiments, class x form, account x hour,
// activity bucket. Indices in [0, 2^bits).
std::vector<Feature> PushFeatures(const PushContext& c, unsigned bits);
// The same in three parts, for scoring many messages for one user (a digest):
// the user's (class, hour, weekday and their cross, device, network, tags,
// experiments, activity), the message's (account, form, title traits) and their
// crosses (class x form, account x hour). PushFeatures is the three in this order.
void AppendUserFeatures(const PushContext& c, unsigned bits, std::vector<Feature>* out);
void AppendMessageFeatures(const PushContext& c, unsigned bits, std::vector<Feature>* out);
void AppendCrossFeatures(const PushContext& c, unsigned bits, std::vector<Feature>* out);

// What the engine asks of the CTR model: a candidate scored. The features are
// hashed into the space of the model in service and scored by it; before any
// model was trained (no registry, or none promoted) they are hashed into `bits`
// and the score is the source's open rate at the local hour (version 0). The
// features are logged with the push, so that the sample learned from is the
// vector scored.
struct PushScore {
  double pctr = 0;
  std::uint32_t version = 0;
  std::vector<Feature> features;
};
PushScore ScorePush(const ModelRegistry* registry, const PushContext& c, unsigned bits);

// Many messages scored for one user, as a digest ranks its articles: the user's
// part of `c` hashed once, each message's (its account, form and title) and the
// crosses per message; out[i] is messages[i]'s score, as ScorePush would give it.
struct MessageTraits {
  std::string_view account_id, form, title;
};
void ScoreMessages(const ModelRegistry* registry, PushContext c, std::span<const MessageTraits> messages,
                   unsigned bits, std::vector<PushScore>* out);

}  // namespace herald::model
