#include "model/train.h"

namespace herald::model {

Result<TrainReport> TrainIncremental(ModelRegistry& registry, const Dataset& samples, const LearnerConfig& config,
                                     double holdout_fraction) {
  const size_t n = samples.size();
  const size_t hold = std::max<size_t>(1, static_cast<size_t>(static_cast<double>(n) * holdout_fraction));
  if (n < 2 || hold >= n) return Status::InvalidArgument("training needs at least 2 samples");
  std::shared_ptr<const Learner> current = registry.Current();
  std::unique_ptr<Learner> next;
  if (current) {
    next = current->Clone();
  } else {
    auto made = MakeLearner(config);
    if (!made.ok()) return made.status();
    next = std::move(*made);
  }
  const size_t train = n - hold;
  for (size_t i = 0; i < train; ++i) next->Update(samples.at(i), samples.labels[i]);
  std::vector<std::uint8_t> labels(samples.labels.begin() + static_cast<long>(train), samples.labels.end());
  std::vector<double> p_new, p_old;
  for (size_t i = train; i < n; ++i) {
    p_new.push_back(next->Predict(samples.at(i)));
    if (current) p_old.push_back(current->Predict(samples.at(i)));
  }
  TrainReport r;
  r.holdout = Measure(p_new, labels);
  if (current) r.previous_logloss = Measure(p_old, labels).logloss;
  r.promoted = !current || r.holdout.logloss <= r.previous_logloss;
  auto v = registry.Publish(*next, train, r.holdout.logloss, r.holdout.auc, r.promoted);
  if (!v.ok()) return v.status();
  r.version = *v;
  return r;
}

}  // namespace herald::model
