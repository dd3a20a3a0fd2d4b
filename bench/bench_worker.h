// A worker: one process's share of a scenario's connections, driven by one epoll
// loop on one thread.
//
// The worker opens its connections (at most connect_concurrency in setup at once),
// subscribes its subscribers, and reports `ready` on the board. When the
// coordinator moves the board to Phase::kRun, its publishers send their quota; its
// subscribers count distinct messages and record latency. At Phase::kStop it sends
// DISCONNECT, closes everything, and writes its final numbers to its slot.
//
// Every wakeup ends with one flush of each connection that has bytes queued, so
// acknowledgements and publishes are batched into as few writes as possible.
#pragma once

#include "bench_board.h"
#include "bench_options.h"

namespace herald::bench {

// Runs worker `index` of options.procs to completion; returns a process exit code
// (0 also when connections failed: failures are reported through the board).
// Runs on the calling thread; the caller is a freshly forked worker process.
int RunWorker(const BenchOptions& options, Board* board, int index);

}  // namespace herald::bench
