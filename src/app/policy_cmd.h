// `herald policy replay` (what-if replay of history through the policy) and
// `herald bench policy` (decisions per second per core; replay throughput).
#pragma once

#include <string>
#include <vector>

namespace herald::app {

int PolicyReplay(const std::vector<std::string>& args);
int BenchPolicy(const std::vector<std::string>& args);

}  // namespace herald::app
