#include "model/ctr_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>

namespace herald::model {
namespace {

std::uint32_t HashIndex(std::uint64_t idx, unsigned bits) {
  idx ^= idx >> 33;
  idx *= 0xff51afd7ed558ccdull;
  idx ^= idx >> 33;
  idx *= 0xc4ceb9fe1a85ec53ull;
  idx ^= idx >> 33;
  return static_cast<std::uint32_t>(idx & ((1ull << bits) - 1));
}

Status LineError(const std::string& path, size_t line, const std::string& what) {
  return Status::InvalidArgument(path + ":" + std::to_string(line) + ": " + what);
}

std::vector<std::string_view> SplitCsv(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    out.push_back(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

Result<DataFormat> ParseDataFormat(std::string_view name) {
  if (name == "libfm" || name == "svmlight") return DataFormat::kLibfm;
  if (name == "csv") return DataFormat::kCsv;
  if (name == "hashed") return DataFormat::kHashed;
  return Status::InvalidArgument("--format must be libfm, svmlight, csv or hashed, not " + std::string(name));
}

Result<Dataset> ReadDataset(const std::string& path, DataFormat format, unsigned bits,
                            std::vector<std::string>* columns) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument(path + ": cannot open");
  Dataset d;
  std::string line;
  size_t n = 0;
  int label_col = -1;
  std::vector<std::string> names;
  std::string key;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (format == DataFormat::kCsv) {
      if (n == 1) {
        for (auto c : SplitCsv(line)) names.emplace_back(c);
        for (size_t i = 0; i < names.size(); ++i) {
          if (names[i] == "label" || names[i] == "click") label_col = static_cast<int>(i);
        }
        if (label_col < 0) return LineError(path, n, "the header has no label (or click) column");
        if (columns->empty()) {
          *columns = names;
        } else if (*columns != names) {
          return LineError(path, n, "the header differs from the training file's");
        }
        continue;
      }
      if (line.empty()) continue;
      auto fields = SplitCsv(line);
      if (fields.size() != names.size()) {
        return LineError(path, n, "expected " + std::to_string(names.size()) + " fields, got " +
                                      std::to_string(fields.size()));
      }
      std::string_view lab = fields[label_col];
      if (lab != "0" && lab != "1") return LineError(path, n, "label must be 0 or 1, got \"" + std::string(lab) + "\"");
      d.labels.push_back(lab == "1");
      for (size_t i = 0; i < fields.size(); ++i) {
        if (static_cast<int>(i) == label_col) continue;
        key.assign(names[i]);
        key.push_back('=');
        key.append(fields[i]);
        d.features.push_back({HashFeature(key, bits), 1.0f});
      }
      d.offsets.push_back(static_cast<std::uint32_t>(d.features.size()));
      continue;
    }
    // libfm / svmlight
    const char* p = line.c_str();
    while (*p == ' ' || *p == '\t') ++p;
    if (!*p) continue;
    const char* end = p;
    while (*end && *end != ' ' && *end != '\t') ++end;
    std::string_view lab(p, static_cast<size_t>(end - p));
    int y;
    if (lab == "1" || lab == "+1" || lab == "1.0") {
      y = 1;
    } else if (lab == "0" || lab == "-1" || lab == "0.0" || lab == "-1.0") {
      y = 0;
    } else {
      return LineError(path, n, "label must be 0, 1, -1 or +1, got \"" + std::string(lab) + "\"");
    }
    d.labels.push_back(static_cast<std::uint8_t>(y));
    p = end;
    while (true) {
      while (*p == ' ' || *p == '\t') ++p;
      if (!*p) break;
      char* colon = nullptr;
      const unsigned long long idx = std::strtoull(p, &colon, 10);
      if (colon == p || *colon != ':') {
        const char* e = p;
        while (*e && *e != ' ' && *e != '\t') ++e;
        return LineError(path, n, "bad feature \"" + std::string(p, static_cast<size_t>(e - p)) + "\" (want idx:value)");
      }
      char* after = nullptr;
      const double v = std::strtod(colon + 1, &after);
      if (after == colon + 1 || (*after && *after != ' ' && *after != '\t') || !std::isfinite(v)) {
        return LineError(path, n, "bad feature value after index " + std::to_string(idx));
      }
      if (format == DataFormat::kHashed && idx >> bits) {
        return LineError(path, n, "index " + std::to_string(idx) + " is outside the model's " + std::to_string(bits) +
                                      " bits");
      }
      d.features.push_back(
          {format == DataFormat::kHashed ? static_cast<std::uint32_t>(idx) : HashIndex(idx, bits), static_cast<float>(v)});
      p = after;
    }
    d.offsets.push_back(static_cast<std::uint32_t>(d.features.size()));
  }
  if (d.size() == 0) return Status::InvalidArgument(path + ": no samples");
  return d;
}

Quality Measure(const std::vector<double>& p, const std::vector<std::uint8_t>& y) {
  Quality q;
  const size_t n = p.size();
  if (n == 0) return q;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  // AUC by the rank sum of the positives (ties share their average rank).
  double rank_sum = 0;
  std::uint64_t pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && p[order[j]] == p[order[i]]) ++j;
    const double avg = (static_cast<double>(i) + static_cast<double>(j) + 1) / 2;  // 1-based
    for (size_t k = i; k < j; ++k) {
      if (y[order[k]]) {
        rank_sum += avg;
        ++pos;
      }
    }
    i = j;
  }
  const std::uint64_t neg = n - pos;
  q.auc = pos && neg ? (rank_sum - static_cast<double>(pos) * (static_cast<double>(pos) + 1) / 2) /
                           (static_cast<double>(pos) * static_cast<double>(neg))
                     : 0.5;
  double loss = 0, mean = 0;
  for (size_t i = 0; i < n; ++i) {
    const double pi = std::clamp(p[i], 1e-15, 1 - 1e-15);
    loss -= y[i] ? std::log(pi) : std::log(1 - pi);
    mean += p[i];
  }
  q.logloss = loss / static_cast<double>(n);
  q.mean_prediction = mean / static_cast<double>(n);
  q.positive_rate = static_cast<double>(pos) / static_cast<double>(n);
  for (size_t r = 0; r < n; ++r) {
    const size_t dec = std::min<size_t>(9, r * 10 / n);
    q.predicted[dec] += p[order[r]];
    q.observed[dec] += y[order[r]];
    ++q.count[dec];
  }
  for (size_t k = 0; k < 10; ++k) {
    if (q.count[k]) {
      q.predicted[k] /= static_cast<double>(q.count[k]);
      q.observed[k] /= static_cast<double>(q.count[k]);
    }
  }
  return q;
}

}  // namespace herald::model
