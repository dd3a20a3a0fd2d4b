#include "sim/population.h"

#include <cctz/time_zone.h>

#include <algorithm>
#include <cmath>

#include "model/send_time.h"

namespace herald::sim {

const std::array<ClassSpec, kClasses>& Classes() {
  // name, share, app opens a day, propensity, P(convert | click), tolerance, sensitivity, rhythm
  static const std::array<ClassSpec, kClasses> k = {{
      {"new_user", 0.03, 3.0, 1.3, 0.05, 3, 1.2, ClassSpec::kDay},
      {"high_value_silent", 0.03, 0.3, 0.9, 0.15, 2, 1.5, ClassSpec::kLow},
      {"dormant", 0.10, 0.1, 0.35, 0.02, 1, 1.5, ClassSpec::kLow},
      {"churn_risk", 0.07, 0.4, 0.6, 0.03, 2, 1.4, ClassSpec::kDay},
      {"executive", 0.05, 2.0, 0.9, 0.08, 2, 1.2, ClassSpec::kMorning},
      {"business", 0.05, 2.5, 1.0, 0.10, 3, 1.0, ClassSpec::kDay},
      {"student", 0.15, 4.0, 1.1, 0.04, 4, 0.8, ClassSpec::kEvening},
      {"content_creator", 0.04, 6.0, 1.3, 0.05, 5, 0.7, ClassSpec::kEvening},
      {"instant_consumption", 0.06, 3.0, 1.2, 0.20, 4, 0.9, ClassSpec::kDay},
      {"night_owl", 0.08, 3.0, 1.0, 0.05, 3, 1.0, ClassSpec::kNight},
      {"high_frequency", 0.14, 8.0, 1.4, 0.06, 6, 0.6, ClassSpec::kDay},
      {"low_frequency", 0.20, 0.8, 0.8, 0.03, 2, 1.1, ClassSpec::kDay},
  }};
  return k;
}

namespace {

double Tilt(ClassSpec::Tilt t, int h) {
  switch (t) {
    case ClassSpec::kDay:
    case ClassSpec::kLow:
      return 1;
    case ClassSpec::kMorning:
      return h >= 6 && h <= 9 ? 1.6 : h >= 19 ? 0.7 : 1;
    case ClassSpec::kEvening:
      return h >= 6 && h <= 9 ? 0.6 : h >= 19 ? 1.6 : 1;
    case ClassSpec::kNight:
      return h <= 3 ? 3.0 : h >= 21 ? 1.8 : h >= 6 && h <= 10 ? 0.5 : 0.8;
  }
  return 1;
}

struct Tables {
  std::array<std::array<double, 24>, kClasses> open{}, activity{};
  Tables() {
    const auto& cs = Classes();
    for (int h = 0; h < 24; ++h) {
      double norm = 0;
      for (const auto& c : cs) norm += c.share * c.propensity * Tilt(c.tilt, h);
      for (size_t c = 0; c < kClasses; ++c) {
        open[c][static_cast<size_t>(h)] =
            model::SourceOpenRate(h) * cs[c].propensity * Tilt(cs[c].tilt, h) / norm;
      }
    }
    for (size_t c = 0; c < kClasses; ++c) {
      double sum = 0;
      for (int h = 0; h < 24; ++h) sum += model::SourceOpenRate(h) * Tilt(cs[c].tilt, h);
      for (int h = 0; h < 24; ++h) {
        activity[c][static_cast<size_t>(h)] = model::SourceOpenRate(h) * Tilt(cs[c].tilt, h) / sum;
      }
    }
  }
};
const Tables& T() {
  static const Tables t;
  return t;
}

}  // namespace

double BaseOpen(size_t cls, int hour) { return T().open[cls % kClasses][static_cast<size_t>((hour % 24 + 24) % 24)]; }
double ActivityShare(size_t cls, int hour) {
  return T().activity[cls % kClasses][static_cast<size_t>((hour % 24 + 24) % 24)];
}

std::vector<ZoneShare> DefaultZones() {
  return {{"Asia/Shanghai", 0.85}, {"Asia/Tokyo", 0.04}, {"Asia/Singapore", 0.04}, {"Europe/London", 0.03},
          {"America/Los_Angeles", 0.02}, {"America/New_York", 0.02}};
}

Result<std::vector<ZoneShare>> ParseZones(std::string_view text) {
  std::vector<ZoneShare> out;
  double total = 0;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument("--zones: \"" + std::string(item) + "\" is not ZONE=SHARE");
    }
    ZoneShare z{std::string(item.substr(0, eq)), 0};
    cctz::time_zone tz;
    if (!cctz::load_time_zone(z.zone, &tz)) return Status::InvalidArgument("--zones: unknown time zone " + z.zone);
    const std::string share(item.substr(eq + 1));
    char* end = nullptr;
    z.share = std::strtod(share.c_str(), &end);
    if (share.empty() || *end || !(z.share > 0) || !std::isfinite(z.share)) {
      return Status::InvalidArgument("--zones: the share of " + z.zone + " must be a positive number");
    }
    total += z.share;
    out.push_back(std::move(z));
  }
  if (out.empty()) return Status::InvalidArgument("--zones: no zone given");
  if (out.size() > 255) return Status::InvalidArgument("--zones: at most 255 zones");
  for (auto& z : out) z.share /= total;
  return out;
}

std::vector<SimAccount> DefaultAccounts() {
  // Posts at the source's hours (06:30, 08:00, 12:00, 19:30, 22:30) and between.
  return {
      {"weather", "Weather", "business", 6 * 60 + 30, "Rain later today, take an umbrella", "text", 0.30, 1},
      {"news", "Morning News", "business", 8 * 60, "Morning briefing: 5 stories", "image_text", 0.50, 1},
      {"bank", "Bank", "service", 9 * 60, "Your monthly statement is ready", "service_card", 0.35, 3},
      {"food", "Food Daily", "subscription", 10 * 60, "Hand-pulled noodles at home", "image_text", 0.25, 1},
      {"deals", "Deals", "business", 12 * 60, "Flash sale \xF0\x9F\x94\xA5 today only", "image_text", 0.35, 1},
      {"mall", "Mall", "service", 14 * 60, "Your parcel is on its way", "service_card", 0.30, 2},
      {"tech", "Tech Weekly", "subscription", 15 * 60, "3 gadgets worth it", "image_text", 0.25, 1},
      {"travel", "Travel", "subscription", 18 * 60, "Quiet beaches \xF0\x9F\x8F\x96", "image_text", 0.20, 1},
      {"sports", "Sports", "business", 19 * 60 + 30, "Match highlights in 15 s", "video", 0.30, 1},
      {"late", "Tonight", "business", 22 * 60 + 30, "Tonight's top picks", "text", 0.25, 1},
  };
}

std::uint64_t Mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double Uniform(std::uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

namespace {
// A standard normal draw (Box-Muller).
double Normal(std::uint64_t& s) {
  const double u1 = std::max(Uniform(s), 1e-12), u2 = Uniform(s);
  return std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}
}  // namespace

Population MakePopulation(size_t users, std::uint64_t seed, const std::vector<ZoneShare>& zones) {
  Population p;
  p.accounts = DefaultAccounts();
  p.zones = zones;
  p.users.resize(users);
  const auto& cs = Classes();
  for (size_t i = 0; i < users; ++i) {
    std::uint64_t s = Mix(seed, i);
    SimUser& u = p.users[i];
    double r = Uniform(s), acc = 0;
    u.cls = static_cast<std::uint8_t>(kClasses - 1);
    for (size_t c = 0; c < kClasses; ++c) {
      acc += cs[c].share;
      if (r < acc) {
        u.cls = static_cast<std::uint8_t>(c);
        break;
      }
    }
    r = Uniform(s);
    acc = 0;
    for (size_t z = 0; z < zones.size(); ++z) {
      acc += zones[z].share;
      if (r < acc || z + 1 == zones.size()) {
        u.zone = static_cast<std::uint8_t>(z);
        break;
      }
    }
    const std::string_view name = cs[u.cls].name;
    u.age = static_cast<std::uint8_t>(name == "student" ? 16 + Uniform(s) * 6 : 24 + Uniform(s) * 36);
    u.activity = static_cast<float>(std::exp(0.4 * Normal(s) - 0.08));
    for (size_t a = 0; a < p.accounts.size(); ++a) {
      if (Uniform(s) < p.accounts[a].reach) {
        // Affinity: log-normal with mean 1.
        u.follows.emplace_back(static_cast<std::uint8_t>(a), static_cast<float>(std::exp(0.5 * Normal(s) - 0.125)));
      }
    }
  }
  return p;
}

int Recent::Within(std::int64_t now, std::int64_t seconds) const {
  int n = 0;
  for (std::int64_t t : at) n += t && t <= now && t > now - seconds;
  return n;
}

PushOutcome Respond(const SimUser& u, const SimAccount& account, float affinity, int hour, int recent, bool asleep,
                    std::uint64_t draw) {
  const ClassSpec& c = Classes()[u.cls];
  PushOutcome o;
  bool digits = false;
  for (char ch : account.title) digits = digits || (ch >= '0' && ch <= '9');
  bool emoji = false;
  for (unsigned char ch : account.title) emoji = emoji || ch >= 0xF0;  // a 4-byte UTF-8 sequence
  const double over = std::max(0.0, recent + 1 - c.tolerance);
  const double fatigue = std::pow(0.8, over);
  double p = BaseOpen(u.cls, hour) * affinity * (digits ? 1.19 : 1.0) * fatigue;
  std::uint64_t s = draw;
  o.opened = Uniform(s) < std::min(0.95, p);
  if (o.opened) {
    const double d = Uniform(s);
    o.delay_steps = d < 0.6 ? 0 : d < 0.85 ? 1 : 2;
    o.clicked = Uniform(s) < 0.35 * (emoji ? 1.27 : 1.0);
    if (o.clicked) {
      o.converted = Uniform(s) < c.convert * (account.form == "video" ? 1.41 : 1.0);
      if (o.converted) o.gmv = 50 * (account.form == "service_card" ? 1.18 : 1.0) * (0.5 + Uniform(s));
    }
    return o;
  }
  // Unwanted: past the user's tolerance, or in the user's night.
  const double annoyance = (over + (asleep ? 1.5 : 0)) * c.sensitivity;
  if (annoyance <= 0) return o;
  const double r = Uniform(s);
  o.uninstall = r < 0.0015 * annoyance;
  o.complaint = !o.uninstall && r < 0.0035 * annoyance;
  o.not_interested = !o.uninstall && !o.complaint && r < 0.0135 * annoyance;
  return o;
}

PushOutcome RespondToPush(const Population& pop, size_t user, std::string_view account_id, int hour,
                          std::int64_t now_s, Recent& recent, std::uint64_t draw) {
  static const SimAccount kDigest{"digest", "Digest", "subscription", 0, "Today from the accounts you follow",
                                  "image_text", 0, 1};
  const SimUser& u = pop.users[user];
  const SimAccount* account = &kDigest;
  float affinity = 0;
  for (size_t a = 0; a < pop.accounts.size(); ++a) {
    if (pop.accounts[a].id == account_id) account = &pop.accounts[a];
  }
  for (const auto& [a, f] : u.follows) {
    if (account != &kDigest && pop.accounts[a].id == account_id) affinity = f;
    if (account == &kDigest && pop.accounts[a].type == "subscription") affinity = std::max(affinity, f * 1.1f);
  }
  if (affinity == 0) affinity = 1;
  const int r24 = recent.Within(now_s, 86400);
  recent.Add(now_s);
  return Respond(u, *account, affinity, hour, r24, hour >= 23 || hour < 7, draw);
}

}  // namespace herald::sim
