// Online CTR learners over hashed features: FTRL-Proximal logistic regression
// (McMahan et al., "Ad Click Prediction: a View from the Trenches", KDD 2013)
// and a factorization machine (Rendle, "Factorization Machines", ICDM 2010)
// trained online with per-coordinate AdaGrad steps.
//
// A sample is a sparse vector of (index, value) pairs, indices already hashed
// into [0, 2^bits). Predict() returns a probability; Update() takes one labelled
// sample (label 0 or 1) and returns the prediction made before the update, so a
// caller gets progressive validation for free.
//
// Thread-compatible: one writer; readers use an immutable copy (snapshots).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace herald::model {

struct Feature {
  std::uint32_t index = 0;
  float value = 1;
};
using Sample = std::span<const Feature>;

struct LearnerConfig {
  std::string kind = "lr";  // "lr" (FTRL-Proximal) or "fm"
  unsigned bits = 20;       // 2^bits weights
  // FTRL-Proximal.
  double alpha = 0.1, beta = 1.0, l1 = 1.0, l2 = 1.0;
  // FM: factors per feature, AdaGrad step, L2 on w and v, initial scale of v.
  unsigned factors = 8;
  double fm_step = 0.05, fm_l2_w = 1e-5, fm_l2_v = 1e-5, fm_init = 0.01;
};

class Learner {
 public:
  virtual ~Learner() = default;
  virtual double Predict(Sample x) const = 0;
  // Learns from one sample; returns the prediction before the update.
  virtual double Update(Sample x, int label) = 0;
  virtual std::unique_ptr<Learner> Clone() const = 0;
  virtual const LearnerConfig& config() const = 0;
  // Durable snapshot (format in learner.cc): a versioned header, the config and
  // the weights, with a CRC32C over everything before it.
  virtual std::string Serialize() const = 0;

  // For gradient checks: the gradient of one sample's log loss with respect to
  // each parameter the sample touches (the bias first), as Update() computes it,
  // and perturb(i, delta), which moves parameter i by delta.
  struct Probe {
    std::vector<double> gradient;
    std::function<void(size_t, double)> perturb;
  };
  virtual Probe ProbeGradient(Sample x, int label) = 0;
};

Result<std::unique_ptr<Learner>> MakeLearner(const LearnerConfig& config);
// Corruption (naming what is wrong) for a truncated, damaged or unknown snapshot.
Result<std::unique_ptr<Learner>> DeserializeLearner(std::string_view bytes);

// The hashed index of a feature name (field and value, e.g. "hour=8"), folded
// into `bits` bits.
std::uint32_t HashFeature(std::string_view name, unsigned bits);

}  // namespace herald::model
