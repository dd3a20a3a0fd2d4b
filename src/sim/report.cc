#include "sim/report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/send_time.h"

namespace herald::sim {

using json = nlohmann::json;

std::pair<double, double> Wilson(std::uint64_t k, std::uint64_t n) {
  if (n == 0) return {0, 0};
  const double z = 1.959964, nn = static_cast<double>(n), p = static_cast<double>(k) / nn;
  const double d = 1 + z * z / nn;
  const double center = (p + z * z / (2 * nn)) / d;
  const double half = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / d;
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

namespace {

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }
// Rounded to 9 significant digits: the same run prints the same text.
double R(double v) {
  if (v == 0 || !std::isfinite(v)) return 0;
  const double scale = std::pow(10, 8 - static_cast<int>(std::floor(std::log10(std::fabs(v)))));
  return std::round(v * scale) / scale;
}
json Ci(std::pair<double, double> ci) { return json::array({R(ci.first), R(ci.second)}); }

json Metrics(const Counts& c, int days) {
  json j;
  j["users"] = c.users;
  j["sent"] = c.sent;
  j["delivered"] = c.delivered;
  j["opened"] = c.opened;
  j["clicked"] = c.clicked;
  j["converted"] = c.converted;
  j["open_rate"] = R(Ratio(static_cast<double>(c.opened), static_cast<double>(c.delivered)));
  j["open_rate_ci"] = Ci(Wilson(c.opened, c.delivered));
  j["ctr"] = R(Ratio(static_cast<double>(c.clicked), static_cast<double>(c.delivered)));
  j["ctr_ci"] = Ci(Wilson(c.clicked, c.delivered));
  j["conversion_rate"] = R(Ratio(static_cast<double>(c.converted), static_cast<double>(c.delivered)));
  j["conversion_rate_ci"] = Ci(Wilson(c.converted, c.delivered));
  j["gmv_per_user"] = R(Ratio(c.gmv, static_cast<double>(c.users)));
  j["delivery_rate"] = R(Ratio(static_cast<double>(c.delivered), static_cast<double>(c.sent)));
  j["delivery_rate_ci"] = Ci(Wilson(c.delivered, c.sent));
  // Of the pushes a device could get (not those to users who had uninstalled).
  const std::uint64_t reachable = c.sent > c.unreachable ? c.sent - c.unreachable : 0;
  j["delivered_within_ttl_rate"] = R(Ratio(static_cast<double>(c.delivered_in_ttl), static_cast<double>(reachable)));
  j["delivered_within_ttl_rate_ci"] = Ci(Wilson(std::min(c.delivered_in_ttl, reachable), reachable));
  j["sent_to_uninstalled"] = c.unreachable;
  j["uninstall_rate"] = R(Ratio(static_cast<double>(c.uninstalled), static_cast<double>(c.users)));
  j["uninstall_rate_ci"] = Ci(Wilson(c.uninstalled, c.users));
  j["not_interested_rate"] = R(Ratio(static_cast<double>(c.not_interested), static_cast<double>(c.users)));
  j["not_interested_rate_ci"] = Ci(Wilson(c.not_interested, c.users));
  j["complaint_rate"] = R(Ratio(static_cast<double>(c.complained), static_cast<double>(c.users)));
  j["complaint_rate_ci"] = Ci(Wilson(c.complained, c.users));
  const double n = static_cast<double>(c.users);
  const double mean = Ratio(c.ppud_sum, n);
  const double var = n > 1 ? std::max(0.0, (c.ppud_sq - n * mean * mean) / (n - 1)) : 0;
  const double half = n > 0 ? 1.959964 * std::sqrt(var / n) : 0;
  j["pushes_per_user_per_day"] = R(mean);
  j["pushes_per_user_per_day_ci"] = Ci({std::max(0.0, mean - half), mean + half});
  json by_hour = json::array(), delivered = json::array();
  for (size_t h = 0; h < 24; ++h) {
    by_hour.push_back(c.delivered_by_hour[h] ? json(R(Ratio(static_cast<double>(c.opened_by_hour[h]),
                                                            static_cast<double>(c.delivered_by_hour[h]))))
                                             : json(nullptr));
    delivered.push_back(c.delivered_by_hour[h]);
  }
  j["open_rate_by_hour"] = by_hour;
  j["delivered_by_hour"] = delivered;
  (void)days;
  return j;
}

std::string Pct(double v, int digits = 2) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f%%", digits, v * 100);
  return b;
}
std::string Num(double v, int digits = 2) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}
std::string Esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o.push_back(c);
  }
  return o;
}

const char* kColors[] = {"#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd", "#8c564b"};

// Open rate by local hour: a line per strategy, the source's table as points and
// its interpolation dashed.
std::string HourChart(const json& report) {
  const int w = 720, h = 320, l = 60, r = 150, t = 20, b = 40;
  double top = 0.08;
  for (const auto& [name, s] : report["strategies"].items()) {
    for (const auto& v : s["open_rate_by_hour"]) {
      if (v.is_number()) top = std::max(top, v.get<double>() * 1.1);
    }
  }
  auto X = [&](double hour) { return l + (w - l - r) * hour / 23.0; };
  auto Y = [&](double v) { return t + (h - t - b) * (1 - v / top); };
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(w) + "\" height=\"" +
                  std::to_string(h) + "\" viewBox=\"0 0 " + std::to_string(w) + " " + std::to_string(h) +
                  "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double v = top * i / 4;
    s += "<line x1=\"" + Num(l, 0) + "\" x2=\"" + Num(w - r, 0) + "\" y1=\"" + Num(Y(v), 1) + "\" y2=\"" + Num(Y(v), 1) +
         "\" stroke=\"#ddd\"/><text x=\"" + Num(l - 6, 0) + "\" y=\"" + Num(Y(v) + 4, 1) + "\" text-anchor=\"end\">" +
         Pct(v, 1) + "</text>\n";
  }
  for (int hr = 0; hr < 24; hr += 3) {
    s += "<text x=\"" + Num(X(hr), 1) + "\" y=\"" + Num(h - b + 16, 0) + "\" text-anchor=\"middle\">" +
         std::to_string(hr) + ":00</text>\n";
  }
  s += "<text x=\"" + Num((l + w - r) / 2.0, 0) + "\" y=\"" + Num(h - 6, 0) +
       "\" text-anchor=\"middle\">local hour the push arrived</text>\n";
  std::string curve;
  for (int hr = 0; hr < 24; ++hr) {
    curve += (hr ? " L" : "M") + Num(X(hr), 1) + " " + Num(Y(model::SourceOpenRate(hr)), 1);
  }
  s += "<path d=\"" + curve + "\" fill=\"none\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>\n";
  for (int hr : {6, 8, 12, 19, 22}) {
    s += "<circle cx=\"" + Num(X(hr + 0.5), 1) + "\" cy=\"" + Num(Y(model::SourceOpenRate(hr)), 1) +
         "\" r=\"4\" fill=\"#000\"/>\n";
  }
  int k = 0;
  for (const auto& [name, st] : report["strategies"].items()) {
    const char* color = kColors[k % 6];
    std::string d;
    bool pen = false;
    for (int hr = 0; hr < 24; ++hr) {
      const json& v = st["open_rate_by_hour"][static_cast<size_t>(hr)];
      // Hours with few deliveries say little: left out of the line.
      if (!v.is_number() || st["delivered_by_hour"][static_cast<size_t>(hr)].get<std::uint64_t>() < 30) {
        pen = false;
        continue;
      }
      d += (pen ? " L" : " M") + Num(X(hr), 1) + " " + Num(Y(v.get<double>()), 1);
      pen = true;
      s += "<circle cx=\"" + Num(X(hr), 1) + "\" cy=\"" + Num(Y(v.get<double>()), 1) + "\" r=\"2.5\" fill=\"" + color +
           "\"/>\n";
    }
    s += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n";
    s += "<rect x=\"" + Num(w - r + 12, 0) + "\" y=\"" + Num(t + 16 * k, 0) + "\" width=\"10\" height=\"10\" fill=\"" +
         color + "\"/><text x=\"" + Num(w - r + 26, 0) + "\" y=\"" + Num(t + 9 + 16 * k, 0) + "\">" + Esc(name) +
         "</text>\n";
    ++k;
  }
  s += "<circle cx=\"" + Num(w - r + 17, 0) + "\" cy=\"" + Num(t + 5 + 16 * k, 0) + "\" r=\"4\" fill=\"#000\"/><text x=\"" +
       Num(w - r + 26, 0) + "\" y=\"" + Num(t + 9 + 16 * k, 0) + "\">the source's table</text>\n";
  return s + "</svg>\n";
}

// One panel per metric: a bar per strategy with its interval.
std::string BarsChart(const json& report) {
  struct M {
    const char* key;
    const char* label;
    bool pct;
  };
  const M ms[] = {{"open_rate", "open rate per push", true},
                  {"ctr", "CTR per push", true},
                  {"pushes_per_user_per_day", "pushes per user per day", false},
                  {"uninstall_rate", "uninstall rate", true},
                  {"not_interested_rate", "not-interested rate", true},
                  {"complaint_rate", "complaint rate", true}};
  const int pw = 240, ph = 200, cols = 3;
  const int w = pw * cols, h = ph * 2;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(w) + "\" height=\"" +
                  std::to_string(h) + "\" viewBox=\"0 0 " + std::to_string(w) + " " + std::to_string(h) +
                  "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  const auto& st = report["strategies"];
  for (size_t m = 0; m < std::size(ms); ++m) {
    const int ox = static_cast<int>(m % cols) * pw, oy = static_cast<int>(m / cols) * ph;
    double top = 1e-9;
    for (const auto& [name, v] : st.items()) top = std::max(top, v[std::string(ms[m].key) + "_ci"][1].get<double>());
    top *= 1.15;
    s += "<text x=\"" + std::to_string(ox + pw / 2) + "\" y=\"" + std::to_string(oy + 16) +
         "\" text-anchor=\"middle\" font-weight=\"bold\">" + ms[m].label + "</text>\n";
    const int n = static_cast<int>(st.size());
    const double bw = (pw - 40.0) / std::max(1, n);
    int k = 0;
    for (const auto& [name, v] : st.items()) {
      const double val = v[ms[m].key].get<double>();
      const double lo = v[std::string(ms[m].key) + "_ci"][0].get<double>(), hi = v[std::string(ms[m].key) + "_ci"][1].get<double>();
      const double base = oy + ph - 40.0, span = ph - 70.0;
      const double x = ox + 20 + bw * k + bw * 0.15, bwid = bw * 0.7;
      const double y = base - span * val / top;
      s += "<rect x=\"" + Num(x, 1) + "\" y=\"" + Num(y, 1) + "\" width=\"" + Num(bwid, 1) + "\" height=\"" +
           Num(base - y, 1) + "\" fill=\"" + kColors[k % 6] + "\"/>\n";
      const double cx = x + bwid / 2;
      s += "<line x1=\"" + Num(cx, 1) + "\" x2=\"" + Num(cx, 1) + "\" y1=\"" + Num(base - span * lo / top, 1) +
           "\" y2=\"" + Num(base - span * hi / top, 1) + "\" stroke=\"#000\"/>\n";
      s += "<text x=\"" + Num(cx, 1) + "\" y=\"" + Num(y - 4, 1) + "\" text-anchor=\"middle\">" +
           (ms[m].pct ? Pct(val, 2) : Num(val, 2)) + "</text>\n";
      s += "<text x=\"" + Num(cx, 1) + "\" y=\"" + Num(base + 14, 1) + "\" text-anchor=\"middle\" font-size=\"9\">" +
           Esc(name) + "</text>\n";
      ++k;
    }
  }
  return s + "</svg>\n";
}

}  // namespace

std::string ReportJson(const SimOptions& o, const std::vector<StrategyResult>& results) {
  json j;
  j["users"] = o.users;
  j["days"] = o.days;
  j["seed"] = o.seed;
  j["mode"] = o.through_mqtt ? "through-mqtt" : "fast";
  json zones = json::object();
  for (const auto& z : o.zones) zones[z.zone] = R(z.share);
  j["zones"] = zones;
  json source = json::array();
  for (int h = 0; h < 24; ++h) source.push_back(R(model::SourceOpenRate(h)));
  j["source_open_rate_by_hour"] = source;
  json strategies = json::object();
  for (const StrategyResult& r : results) {
    json s = Metrics(r.all, o.days);
    json by_class = json::object();
    for (size_t c = 0; c < kClasses; ++c) by_class[Classes()[c].name] = Metrics(r.by_class[c], o.days);
    s["by_class"] = by_class;
    s["suppressed_by_rule"] = r.suppressed;
    if (o.through_mqtt) {
      s["lost"] = r.lost;
      s["server_restarts"] = r.restarts;
      s["redelivered_after_restart"] = r.redelivered;
    }
    strategies[r.name] = s;
  }
  j["strategies"] = strategies;
  return j.dump(1);
}

Status WriteReport(const std::string& dir, const SimOptions& o, const std::vector<StrategyResult>& results) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("--report: cannot create " + dir + ": " + ec.message());
  const std::string text = ReportJson(o, results);
  const json report = json::parse(text);
  auto write = [&](const std::string& name, const std::string& body) -> Status {
    std::ofstream f(dir + "/" + name, std::ios::binary | std::ios::trunc);
    f << body;
    f.close();
    if (!f) return Status::IoError("cannot write " + dir + "/" + name);
    return Status::Ok();
  };
  HERALD_RETURN_IF_ERROR(write("report.json", text + "\n"));
  const std::string hours = HourChart(report), bars = BarsChart(report);
  HERALD_RETURN_IF_ERROR(write("open_rate_by_hour.svg", hours));
  HERALD_RETURN_IF_ERROR(write("strategies.svg", bars));

  std::string h;
  h += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>herald simulation</title>\n"
       "<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 24px}"
       "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
       "td:first-child,th:first-child{text-align:left}.ci{color:#888;font-size:85%}</style></head><body>\n";
  h += "<h1>herald simulation</h1>\n<p>" + std::to_string(o.users) + " simulated users, " + std::to_string(o.days) +
       " days, seed " + std::to_string(o.seed) + ", " + (o.through_mqtt ? "through MQTT" : "fast mode") +
       ". Every strategy ran on the same population and seed through the real herald on the virtual clock; "
       "intervals are 95% (Wilson for rates, normal for pushes per user per day). See docs/simulation.md.</p>\n";
  h += "<h2>Strategies side by side</h2>\n" + bars;
  struct Col {
    const char* key;
    const char* label;
    bool pct;
  };
  const Col cols[] = {{"open_rate", "open rate", true},
                      {"ctr", "CTR", true},
                      {"conversion_rate", "conversion", true},
                      {"delivery_rate", "delivered / sent", true},
                      {"delivered_within_ttl_rate", "delivered within TTL", true},
                      {"uninstall_rate", "uninstall", true},
                      {"not_interested_rate", "not interested", true},
                      {"complaint_rate", "complaint", true},
                      {"pushes_per_user_per_day", "pushes / user / day", false}};
  auto cell = [&](const json& m, const Col& c) {
    const double v = m[c.key].get<double>();
    const auto& ci = m[std::string(c.key) + "_ci"];
    auto f = [&](double x) { return c.pct ? Pct(x, 2) : Num(x, 2); };
    return "<td>" + f(v) + " <span class=\"ci\">[" + f(ci[0].get<double>()) + ", " + f(ci[1].get<double>()) +
           "]</span></td>";
  };
  auto header = [&](const char* first) {
    std::string s = "<tr><th>" + std::string(first) + "</th>";
    for (const Col& c : cols) s += "<th>" + std::string(c.label) + "</th>";
    return s + "<th>pushes sent</th></tr>\n";
  };
  h += "<table>\n" + header("strategy");
  for (const auto& [name, m] : report["strategies"].items()) {
    h += "<tr><td>" + Esc(name) + "</td>";
    for (const Col& c : cols) h += cell(m, c);
    h += "<td>" + std::to_string(m["sent"].get<std::uint64_t>()) + "</td></tr>\n";
  }
  h += "</table>\n";
  h += "<h2>Open rate by hour of day, against the source's table</h2>\n" + hours;
  h += "<p>Dashed: the source's open rate by hour (06–07 3.2%, 08–09 6.8%, 12–13 5.1%, 19–20 4.7%, 22–23 2.1%, "
       "interpolated); dots: its table.</p>\n";
  for (const auto& [name, m] : report["strategies"].items()) {
    h += "<h2>By class: " + Esc(name) + "</h2>\n<table>\n" + header("class") ;
    for (const auto& [cls, cm] : m["by_class"].items()) {
      h += "<tr><td>" + Esc(cls) + " <span class=\"ci\">(" + std::to_string(cm["users"].get<std::uint64_t>()) +
           ")</span></td>";
      for (const Col& c : cols) h += cell(cm, c);
      h += "<td>" + std::to_string(cm["sent"].get<std::uint64_t>()) + "</td></tr>\n";
    }
    h += "</table>\n";
    if (!m["suppressed_by_rule"].empty()) {
      h += "<p>Suppressed by herald, by rule: ";
      bool first = true;
      for (const auto& [rule, n] : m["suppressed_by_rule"].items()) {
        h += (first ? "" : ", ") + Esc(rule) + " " + std::to_string(n.get<std::uint64_t>());
        first = false;
      }
      h += ".</p>\n";
    }
  }
  h += "</body></html>\n";
  return write("report.html", h);
}

}  // namespace herald::sim
