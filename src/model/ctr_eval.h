// Reading CTR data sets and measuring a learner on them: what
// `herald model eval-ctr` runs.
//
// Formats:
//   libfm / svmlight  "label idx:val idx:val ..." with labels 0/1 or -1/+1; the
//                     indices are hashed into the learner's space
//   csv               a header line; the column "label" (or "click") is the label
//                     (0/1), every other column a categorical field: the feature
//                     is "column=value"
//   hashed            libfm lines whose indices are already the learner's
//                     (herald's logged push samples, *.hsv): used as they are, and
//                     an index outside the learner's bits is an error
// A malformed line is an error naming the file and line number.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "model/learner.h"

namespace herald::model {

enum class DataFormat { kLibfm, kCsv, kHashed };
Result<DataFormat> ParseDataFormat(std::string_view name);

// Samples in one flat array: sample i is features[offsets[i] .. offsets[i+1]).
struct Dataset {
  std::vector<Feature> features;
  std::vector<std::uint32_t> offsets{0};
  std::vector<std::uint8_t> labels;
  size_t size() const { return labels.size(); }
  Sample at(size_t i) const {
    return Sample(features.data() + offsets[i], offsets[i + 1] - offsets[i]);
  }
};

// Reads `path`; for csv, the header of the training file decides the columns
// (`columns` is filled from the first file read and checked on the next).
Result<Dataset> ReadDataset(const std::string& path, DataFormat format, unsigned bits,
                            std::vector<std::string>* columns);

struct Quality {
  double auc = 0, logloss = 0;
  double mean_prediction = 0, positive_rate = 0;
  // Calibration by decile of the prediction: mean predicted and observed rate.
  std::array<double, 10> predicted{}, observed{};
  std::array<std::uint64_t, 10> count{};
};
// `predictions` and `labels` of the same samples.
Quality Measure(const std::vector<double>& predictions, const std::vector<std::uint8_t>& labels);

}  // namespace herald::model
