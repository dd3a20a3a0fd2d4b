// The simulation's report: DIR/report.json (the numbers), DIR/report.html (the
// same side by side, per class, with 95% confidence intervals) and its SVG
// charts, viewable offline: no scripts, no fonts, nothing fetched.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "sim/simulator.h"

namespace herald::sim {

// report.json: {"users","days","seed","mode","source_open_rate_by_hour":[24],
// "strategies":{NAME:{"open_rate","ctr","conversion_rate","pushes_per_user_per_day",
// "uninstall_rate","not_interested_rate","complaint_rate","delivery_rate",
// "delivered_within_ttl_rate", ..."_ci":[lo,hi], "open_rate_by_hour":[24],
// "by_class":{CLASS:{...}}}}}. The same options and seed give the same text.
std::string ReportJson(const SimOptions& o, const std::vector<StrategyResult>& results);

// Writes report.json, report.html and the charts into `dir` (created).
Status WriteReport(const std::string& dir, const SimOptions& o, const std::vector<StrategyResult>& results);

// The 95% Wilson interval of k successes in n.
std::pair<double, double> Wilson(std::uint64_t k, std::uint64_t n);

}  // namespace herald::sim
