// `herald model eval-ctr` (train on one file, measure on another) and
// `herald bench model` (predictions and updates per second per core).
#pragma once

#include <string>
#include <vector>

namespace herald::app {

int ModelCommand(const std::vector<std::string>& args);
// `herald train`: the next version of a model from a file of samples.
int TrainCommand(const std::vector<std::string>& args);
int BenchModel(const std::vector<std::string>& args);

}  // namespace herald::app
