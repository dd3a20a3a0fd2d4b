#include "model/model_config.h"

#include <cctz/time_zone.h>

namespace herald::model {

config::Section<ModelConfig> ModelConfigSection() {
  using C = ModelConfig;
  config::Section<C> s("model", "The CTR and send-time models: the daily training (docs/models.md).");
  s.Choice("kind", &C::kind, {"lr", "fm"},
           "The learner a new CTR model starts as: lr (FTRL-Proximal) or fm (factorization machine).");
  s.String("training_time", &C::training_time,
           "Local time \"HH:MM\" (in training_tz) of the daily training: each sample file in\n"
           "samples_dir trains the next version, promoted only if not worse on its holdout.");
  s.String("training_tz", &C::training_tz, "Time zone of training_time.");
  s.String("samples_dir", &C::samples_dir,
           "Where the day's samples (libfm lines: label idx:val ...) are read from;\n"
           "empty: <data_dir>/models/samples. Trained files move to its done/ folder.\n"
           "herald writes its scored pushes there (open/YYYYMMDD-pNNN.hsv while the day lasts).");
  s.Uint("sample_window_s", &C::sample_window_s, 60, 30 * 86400,
         "Seconds after a scored push its sample is written, labelled 1 when the push\n"
         "was opened or clicked by then (the open window).");
  s.Uint("feature_bits", &C::feature_bits, 10, 26,
         "The hashed feature space (2^bits) of a CTR model trained from herald's own\n"
         "samples; a model in service keeps its own.");
  s.Check([](const C& c) {
    auto digit = [&](size_t i) { return i < c.training_time.size() && c.training_time[i] >= '0' && c.training_time[i] <= '9'; };
    const std::string& t = c.training_time;
    if (t.size() != 5 || !digit(0) || !digit(1) || t[2] != ':' || !digit(3) || !digit(4) ||
        (t[0] - '0') * 10 + (t[1] - '0') > 23 || (t[3] - '0') * 10 + (t[4] - '0') > 59) {
      return Status::InvalidArgument("model.training_time: must be a local time \"HH:MM\"");
    }
    cctz::time_zone tz;
    if (!cctz::load_time_zone(c.training_tz, &tz)) {
      return Status::InvalidArgument("model.training_tz: unknown time zone " + c.training_tz);
    }
    return Status::Ok();
  });
  return s;
}

}  // namespace herald::model
