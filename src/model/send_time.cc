#include "model/send_time.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

namespace herald::model {

std::uint32_t NearHours(std::uint32_t hours) {
  hours &= 0xffffff;
  const std::uint32_t left = ((hours << 1) | (hours >> 23)) & 0xffffff;
  const std::uint32_t right = ((hours >> 1) | (hours << 23)) & 0xffffff;
  return hours | left | right;
}

void SendTimeModel::AddDay(SendTimeUser& u, int kind, std::uint32_t hours) {
  ++u.days[kind];
  const std::uint32_t near = NearHours(hours);
  for (int h = 0; h < 24; ++h) u.near[kind][h] += (near >> h) & 1;
}

void SendTimeModel::AddPopulationDay(int kind, std::uint32_t hours) { AddDay(population_, kind, hours); }

double SourceOpenRate(int hour) {
  // Anchors (hour, rate) from the source's table, the night's low, and the
  // next day's 06:00 again; each hour is interpolated between its anchors.
  static constexpr double kAnchors[][2] = {{-2, 0.021}, {3, 0.005},  {6, 0.032},  {8, 0.068},
                                            {12, 0.051}, {19, 0.047}, {22, 0.021}, {27, 0.005}};
  hour = ((hour % 24) + 24) % 24;
  for (size_t i = 0; i + 1 < std::size(kAnchors); ++i) {
    const double a = kAnchors[i][0], b = kAnchors[i + 1][0];
    if (hour >= a && hour < b) {
      const double t = (hour - a) / (b - a);
      return kAnchors[i][1] + t * (kAnchors[i + 1][1] - kAnchors[i][1]);
    }
  }
  return kAnchors[0][1];
}

double SendTimeModel::PopulationRate(int kind, int hour) const {
  // One pseudo-day of the source's hourly shape (scaled to a mean of 1/8) keeps
  // an empty population at the source's best hour, 08:00.
  static const std::array<double, 24> prior = [] {
    std::array<double, 24> p{};
    double sum = 0;
    for (int h = 0; h < 24; ++h) sum += SourceOpenRate(h);
    for (int h = 0; h < 24; ++h) p[h] = 0.125 * SourceOpenRate(h) * 24 / sum;
    return p;
  }();
  return (population_.near[kind][hour] + prior[hour]) / (population_.days[kind] + 1.0);
}

double SendTimeModel::AllDaysRate(const SendTimeUser& u, int kind, int hour) const {
  const double k = u.near[0][hour] + u.near[1][hour];
  const double n = u.days[0] + u.days[1];
  double prior = PopulationRate(kind, hour);
  if (u.group) {
    const SendTimeUser& g = *u.group;
    prior = (g.near[kind][hour] + prior_.group_strength * prior) / (g.days[kind] + prior_.group_strength);
  }
  return (k + prior_.population_strength * prior) / (n + prior_.population_strength);
}

double SendTimeModel::Rate(const SendTimeUser& u, int kind, int hour) const {
  const double p_all = AllDaysRate(u, kind, hour);
  return (u.near[kind][hour] + prior_.user_strength * p_all) / (u.days[kind] + prior_.user_strength);
}

int SendTimeModel::BestHour(const SendTimeUser& u, int kind) const {
  int best = 0;
  double top = -1;
  for (int h = 0; h < 24; ++h) {
    const double r = Rate(u, kind, h);
    if (r > top) {
      top = r;
      best = h;
    }
  }
  return best;
}

int SendTimeModel::PopulationBestHour(int kind) const { return BestHour(SendTimeUser{}, kind); }

double SendTimeModel::SampleRate(const SendTimeUser& u, int kind, int h, std::mt19937_64& rng) const {
  const double p_all = AllDaysRate(u, kind, h);
  const double a = u.near[kind][h] + prior_.user_strength * p_all;
  const double b = (u.days[kind] - u.near[kind][h]) + prior_.user_strength * (1 - p_all);
  std::gamma_distribution<double> ga(a, 1.0), gb(b, 1.0);
  const double x = ga(rng), y = gb(rng);
  return x / (x + y);
}

int SendTimeModel::SampleHour(const SendTimeUser& u, int kind, int from, int to, std::mt19937_64& rng) const {
  int best = from;
  double top = -1;
  for (int i = 0; i < 24; ++i) {
    const int h = (from + i) % 24;
    const double draw = SampleRate(u, kind, h, rng);
    if (draw > top) {
      top = draw;
      best = h;
    }
    if (h == to % 24) break;
  }
  return best;
}

Micros BestTimeInWindow(const SendTimeModel& model, const SendTimeUser& user, Micros from, Micros to,
                        const cctz::time_zone& tz, std::mt19937_64& rng) {
  if (to <= from) return from;
  using Seconds = std::chrono::time_point<std::chrono::system_clock, cctz::seconds>;
  // The candidate instants: `from`, then the start of every local hour after it.
  struct Slot {
    Micros at;
    int hour, kind;
  };
  std::vector<Slot> slots;
  Micros t = from;
  while (t < to && slots.size() < 24 * 14) {
    const cctz::civil_second cs = cctz::convert(Seconds(cctz::seconds(t / kMicrosPerSecond)), tz);
    const int kind = static_cast<int>(cctz::get_weekday(cctz::civil_day(cs))) >= 5 ? 1 : 0;
    slots.push_back({t, cs.hour(), kind});
    const cctz::civil_hour next = cctz::civil_hour(cs) + 1;
    t = static_cast<Micros>(cctz::convert(cctz::civil_second(next), tz).time_since_epoch().count()) * kMicrosPerSecond;
  }
  size_t best = 0;
  double top = -1;
  for (size_t i = 0; i < slots.size(); ++i) {
    // One Thompson draw per slot, from that hour's posterior on its kind of day.
    const double draw = model.SampleRate(user, slots[i].kind, slots[i].hour, rng);
    if (draw > top) {
      top = draw;
      best = i;
    }
  }
  return slots[best].at;
}

namespace {

struct Row {
  long ts;
  int hour;    // local
  int day;     // local civil day number
  int kind;    // 0 weekday, 1 weekend
  bool activity;
};

Status LineError(const std::string& path, size_t line, const std::string& what) {
  return Status::InvalidArgument(path + ":" + std::to_string(line) + ": " + what);
}

}  // namespace

Result<std::string> EvalSendTime(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument(path + ": cannot open");
  std::string line;
  size_t n = 0;
  int c_user = -1, c_ts = -1, c_type = -1, c_tz = -1;
  size_t columns = 0;
  std::map<std::string, const cctz::time_zone*> zones;
  std::vector<std::unique_ptr<cctz::time_zone>> zone_store;
  const cctz::time_zone utc = cctz::utc_time_zone();
  std::unordered_map<std::string, std::vector<Row>> users;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> f;
    size_t start = 0;
    while (true) {
      size_t comma = line.find(',', start);
      f.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (n == 1) {
      for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] == "user_id") c_user = static_cast<int>(i);
        else if (f[i] == "ts") c_ts = static_cast<int>(i);
        else if (f[i] == "type") c_type = static_cast<int>(i);
        else if (f[i] == "tz") c_tz = static_cast<int>(i);
      }
      if (c_user < 0 || c_ts < 0 || c_type < 0) {
        return LineError(path, n, "the header must name user_id, ts and type (and may name tz)");
      }
      columns = f.size();
      continue;
    }
    if (line.empty()) continue;
    if (f.size() != columns) {
      return LineError(path, n, "expected " + std::to_string(columns) + " fields, got " + std::to_string(f.size()));
    }
    char* end = nullptr;
    const long ts = std::strtol(f[c_ts].c_str(), &end, 10);
    if (f[c_ts].empty() || *end || ts < 946684800L || ts >= 4102444800L) {
      return LineError(path, n, "ts must be unix seconds between 2000 and 2100, got \"" + f[c_ts] + "\"");
    }
    const std::string& type = f[c_type];
    if (type != "sent" && type != "opened" && type != "active") {
      return LineError(path, n, "type must be sent, opened or active, got \"" + type + "\"");
    }
    if (f[c_user].empty()) return LineError(path, n, "user_id is empty");
    const cctz::time_zone* tz = &utc;
    if (c_tz >= 0 && !f[c_tz].empty()) {
      auto it = zones.find(f[c_tz]);
      if (it == zones.end()) {
        auto z = std::make_unique<cctz::time_zone>();
        if (!cctz::load_time_zone(f[c_tz], z.get())) return LineError(path, n, "unknown time zone \"" + f[c_tz] + "\"");
        it = zones.emplace(f[c_tz], z.get()).first;
        zone_store.push_back(std::move(z));
      }
      tz = it->second;
    }
    using Seconds = std::chrono::time_point<std::chrono::system_clock, cctz::seconds>;
    const cctz::civil_second cs = cctz::convert(Seconds(cctz::seconds(ts)), *tz);
    const cctz::civil_day day(cs);
    const int weekday = static_cast<int>(cctz::get_weekday(day));  // Monday = 0
    users[f[c_user]].push_back(Row{ts, cs.hour(), static_cast<int>(day - cctz::civil_day(1970, 1, 1)),
                                   weekday >= 5 ? 1 : 0, type != "sent"});
  }
  if (users.empty()) return Status::InvalidArgument(path + ": no events");

  // Per user: days in order, each with its kind and activity hours; the first
  // two thirds train, the rest are held out.
  struct Day {
    int day, kind;
    std::uint32_t hours = 0;
  };
  struct User {
    std::vector<Day> train, test;
    std::array<std::uint32_t, 24> counts{};  // activity events by hour in training
  };
  std::vector<User> all;
  std::array<std::uint64_t, 24> global{};
  SendTimeModel model;
  for (auto& [id, rows] : users) {
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ts < b.ts; });
    std::vector<Day> days;
    for (const Row& r : rows) {
      if (days.empty() || days.back().day != r.day) days.push_back({r.day, r.kind, 0});
      if (r.activity) days.back().hours |= 1u << r.hour;
    }
    User u;
    const size_t held = days.size() / 3;
    const size_t cut = days.size() - held;
    u.train.assign(days.begin(), days.begin() + static_cast<long>(cut));
    u.test.assign(days.begin() + static_cast<long>(cut), days.end());
    const int last_train_day = cut ? days[cut - 1].day : -1;
    for (const Row& r : rows) {
      if (r.activity && r.day <= last_train_day) {
        ++u.counts[r.hour];
        ++global[r.hour];
      }
    }
    for (const Day& d : u.train) model.AddPopulationDay(d.kind, d.hours);
    all.push_back(std::move(u));
  }
  const int global_best = static_cast<int>(std::max_element(global.begin(), global.end()) - global.begin());
  auto hit = [](std::uint32_t hours, int h) { return (NearHours(1u << h) & hours) != 0; };
  std::uint64_t tested = 0, hits_model = 0, hits_global = 0, hits_mode = 0, users_tested = 0;
  for (User& u : all) {
    SendTimeUser s;
    for (const Day& d : u.train) model.AddDay(s, d.kind, d.hours);
    int mode = global_best;
    std::uint32_t top = 0;
    for (int h = 0; h < 24; ++h) {
      if (u.counts[h] > top) {
        top = u.counts[h];
        mode = h;
      }
    }
    bool any = false;
    for (const Day& d : u.test) {
      if (!d.hours) continue;  // nothing to hit on a day without activity
      any = true;
      ++tested;
      hits_model += hit(d.hours, model.BestHour(s, d.kind));
      hits_global += hit(d.hours, global_best);
      hits_mode += hit(d.hours, mode);
      // Both the model and the user's mode learn as the held-out days pass.
      model.AddDay(s, d.kind, d.hours);
      for (int h = 0; h < 24; ++h) {
        if (!((d.hours >> h) & 1)) continue;
        if (++u.counts[h] > top) {
          top = u.counts[h];
          mode = h;
        }
      }
    }
    users_tested += any;
  }
  if (tested == 0) return Status::InvalidArgument(path + ": no held-out day with activity (too few days per user)");
  char buf[512];
  std::string out;
  std::snprintf(buf, sizeof buf, "users %zu, held-out days with activity %llu (users with one: %llu)\n", all.size(),
                static_cast<unsigned long long>(tested), static_cast<unsigned long long>(users_tested));
  out += buf;
  std::snprintf(buf, sizeof buf, "hit_rate model=%.4f global_best_hour=%.4f user_mode=%.4f\n",
                static_cast<double>(hits_model) / static_cast<double>(tested),
                static_cast<double>(hits_global) / static_cast<double>(tested),
                static_cast<double>(hits_mode) / static_cast<double>(tested));
  out += buf;
  return out;
}

}  // namespace herald::model
