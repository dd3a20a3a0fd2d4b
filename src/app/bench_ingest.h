// `herald bench ingest`: sustained ingest throughput, in process and over HTTP, and
// event-to-feature latency, on the real pipeline (event log, shards, features).
#pragma once

#include <string>
#include <vector>

namespace herald::app {

// Parses `args` (after "ingest") and runs; returns the exit code.
int BenchIngest(const std::vector<std::string>& args);

}  // namespace herald::app
