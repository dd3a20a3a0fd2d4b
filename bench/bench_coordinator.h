// The coordinator: the parent process of a run. It moves the board through its
// phases (setup -> run -> stop), bounds every phase by a deadline so a run never
// hangs, samples the broker's RSS, reaps the workers, and adds up their slots.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench_board.h"
#include "bench_options.h"

namespace herald::bench {

// The numbers of one run. Times in seconds, rates per second; -1 where a number
// does not apply or could not be measured.
struct Report {
  bool ok = true;
  std::string error;  // set when !ok, or the first connection error seen anyway
  bool timed_out = false;

  // Setup (every scenario): connections and, for subscribers, SUBACKs.
  uint64_t connected = 0, failed = 0, lost = 0, pings = 0;
  double setup_s = -1, conn_per_s = -1;

  // conn
  double hold_s = -1;
  long rss_before_kb = -1, rss_after_kb = -1;
  double bytes_per_conn = -1;

  // fanin, fanout, latency
  uint64_t published = 0, completed = 0, received = 0, duplicates = 0;
  uint64_t expected = 0;  // messages the broker accepted from publishers: one delivery each
  double completeness = -1;
  double msgs_per_s = -1;          // distinct receptions / (last receive - first publish)
  double publish_msgs_per_s = -1;  // published / (publishers settled - first publish)
  double elapsed_s = -1;

  LatencyHistogram latency;  // latency scenario only

  // The generator's own cost: CPU seconds of all workers over the run's wall time.
  // Near 100% per worker process means the generator, not the broker, may be the limit.
  double wall_s = -1, bench_cpu_s = -1;
};

// Runs the phases for the workers `pids` (already forked, sharing `board`) and
// waits for them to exit, killing any that outlive the stop phase by 10 s.
Report Coordinate(const BenchOptions& options, Board* board, const std::vector<pid_t>& pids);

// The VmRSS of process `pid` in kB, or -1 if it cannot be read.
long ReadRssKb(long pid);

}  // namespace herald::bench
