#include "model/daily.h"

#include <algorithm>
#include <filesystem>
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
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(samples_dir, ec)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".libfm" || ext == ".svm" || ext == ".csv")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  fs::create_directories(fs::path(samples_dir) / "done", ec);
  for (const auto& f : files) {
    ++r.files;
    LearnerConfig c = config;
    if (auto cur = registry.Current()) c = cur->config();
    std::vector<std::string> columns;
    auto data = ReadDataset(f.string(), f.extension() == ".csv" ? DataFormat::kCsv : DataFormat::kLibfm, c.bits, &columns);
    Status s = data.status();
    if (data.ok()) {
      auto t = TrainIncremental(registry, *data, c);
      s = t.status();
      if (t.ok() && t->promoted) ++r.promoted;
    }
    fs::path dest = fs::path(samples_dir) / "done" / f.filename();
    if (!s.ok()) {
      if (r.error.empty()) r.error = s.message();
      dest += ".bad";
    }
    fs::rename(f, dest, ec);
  }
  return r;
}

}  // namespace herald::model
