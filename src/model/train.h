// Incremental training: the next version of a model from a day's samples,
// starting from the version in service, promoted only if it is not worse.
#pragma once

#include "model/ctr_eval.h"
#include "model/registry.h"

namespace herald::model {

struct TrainReport {
  ModelVersion version;      // the version written
  bool promoted = false;
  double previous_logloss = 0;  // the version in service on the same holdout (0: none)
  Quality holdout;              // the new version on the holdout
};

// Trains a copy of the registry's current model (a new one of `config` when none)
// on all but the last `holdout_fraction` of `samples`, measures both on that
// holdout, writes the new version and promotes it if its logloss is not worse.
Result<TrainReport> TrainIncremental(ModelRegistry& registry, const Dataset& samples, const LearnerConfig& config,
                                     double holdout_fraction = 0.1);

}  // namespace herald::model
