// The daily training inside `herald serve`: at model.training_time every day, on
// the background pool (never a shard or an I/O loop), each sample file waiting in
// samples_dir trains the next version of the CTR model from the one in service.
#pragma once

#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "model/learner.h"
#include "model/registry.h"

namespace herald::model {

// The next instant after `now` whose local time in `tz_name` is `hh_mm`.
Micros NextLocalTime(Micros now, const std::string& hh_mm, const std::string& tz_name);

struct DailyResult {
  int files = 0, promoted = 0;
  std::string error;  // the first failure (a bad file is moved to done/ with .bad)
};
// Trains on every *.libfm, *.svm or *.csv file in `samples_dir` in name order, one
// version each, and on herald's logged samples (*.hsv, indices already hashed),
// one version for each day's files together; moves each file to samples_dir/done/
// (with ".bad" appended when it was refused).
DailyResult TrainFromDirectory(ModelRegistry& registry, const std::string& samples_dir, const LearnerConfig& config);

}  // namespace herald::model
