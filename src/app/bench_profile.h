// `herald bench profile`: bulk profile upserts over HTTP, segment evaluation over
// every profile (five clauses, through POST /v1/segments/preview), and the memory
// a user costs: profile, then features and policy state after one event each.
#pragma once

#include <string>
#include <vector>

namespace herald::app {

int BenchProfile(const std::vector<std::string>& args);

}  // namespace herald::app
