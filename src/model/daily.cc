#include "model/daily.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <vector>

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include "model/ctr_eval.h"
#include "model/train.h"

namespace herald::model {

Micros NextLocalTime(Micros now, const std::string& hh_mm, const std::string& tz_name) {
  cctz::time_zone tz;
  if (!cctz::load_time_zone(tz_name, &tz)) tz = cctz::utc_time_zone();
  const int h = std::stoi(hh_mm.substr(0, 2)), m = std::stoi(hh_mm.substr(3, 2));
  using Seconds = std::chrono::time_point<std::chrono::system_clock, cctz::seconds>;
  const cctz::civil_second cs = cctz::convert(Seconds(cctz::seconds(now / kMicrosPerSecond)), tz);
  cctz::civil_day day(cs);
  for (int i = 0; i < 3; ++i, ++day) {
    const Micros t = static_cast<Micros>(
                         cctz::convert(cctz::civil_second(day.year(), day.month(), day.day(), h, m, 0), tz)
                             .time_since_epoch()
                             .count()) *
                     kMicrosPerSecond;
    if (t > now) return t;
  }
  return now + 24 * kMicrosPerHour;
}

DailyResult TrainFromDirectory(ModelRegistry& registry, const std::string& samples_dir, const LearnerConfig& config) {
  namespace fs = std::filesystem;
  DailyResult r;
  std::error_code ec;
  // One version per file, except herald's own samples: a day's files (one per
  // partition, "YYYYMMDD-pNNN.hsv") train one version together.
  std::map<std::string, std::vector<fs::path>> groups;
  for (const auto& e : fs::directory_iterator(samples_dir, ec)) {
    const std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".libfm" && ext != ".svm" && ext != ".csv" && ext != ".hsv")) continue;
    const std::string name = e.path().filename().string();
    const size_t dash = name.find("-p");
    groups[ext == ".hsv" && dash != std::string::npos ? name.substr(0, dash) + ".hsv" : name].push_back(e.path());
  }
  fs::create_directories(fs::path(samples_dir) / "done", ec);
  for (auto& [group, files] : groups) {
    std::sort(files.begin(), files.end());
    ++r.files;
    LearnerConfig c = config;
    if (auto cur = registry.Current()) c = cur->config();
    std::vector<std::string> columns;
    Dataset all;
    Status s = Status::Ok();
    std::vector<fs::path> good;
    for (const auto& f : files) {
      const DataFormat format = f.extension() == ".csv"   ? DataFormat::kCsv
                                : f.extension() == ".hsv" ? DataFormat::kHashed
                                                          : DataFormat::kLibfm;
      auto data = ReadDataset(f.string(), format, c.bits, &columns);
      if (!data.ok()) {
        // This file is refused alone; the day's other files still train.
        if (r.error.empty()) r.error = f.filename().string() + ": " + data.status().message();
        fs::rename(f, fs::path(samples_dir) / "done" / (f.filename().string() + ".bad"), ec);
        continue;
      }
      good.push_back(f);
      const std::uint32_t base = static_cast<std::uint32_t>(all.features.size());
      all.features.insert(all.features.end(), data->features.begin(), data->features.end());
      for (size_t i = 1; i < data->offsets.size(); ++i) all.offsets.push_back(base + data->offsets[i]);
      all.labels.insert(all.labels.end(), data->labels.begin(), data->labels.end());
    }
    files = std::move(good);
    if (files.empty()) continue;
    if (s.ok()) {
      auto t = TrainIncremental(registry, all, c);
      s = t.status();
      if (t.ok() && t->promoted) ++r.promoted;
    }
    for (const auto& f : files) {
      fs::path dest = fs::path(samples_dir) / "done" / f.filename();
      if (!s.ok()) dest += ".bad";
      fs::rename(f, dest, ec);
    }
    if (!s.ok() && r.error.empty()) r.error = group + ": " + s.message();
  }
  return r;
}

}  // namespace herald::model
