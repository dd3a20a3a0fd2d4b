// The models' settings: [model].
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

namespace herald::model {

struct ModelConfig {
  std::string kind = "lr";            // the CTR learner a new model starts as: lr or fm
  std::string training_time = "03:00";  // local time of the daily training, in training_tz
  std::string training_tz = "UTC";
  std::string samples_dir;            // default: <data_dir>/models/samples
  std::uint64_t sample_window_s = 86400;  // a push's open window: its sample's label
  unsigned feature_bits = 20;         // the features' space before any model was trained
};

config::Section<ModelConfig> ModelConfigSection();

}  // namespace herald::model
