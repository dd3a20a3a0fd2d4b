// The board: what the coordinator process and its worker processes share.
//
// herald-mqtt-bench runs every scenario as one coordinator plus P forked worker
// processes (P > 1 when the connections do not fit under one process's open-file
// limit). The board lives in one anonymous MAP_SHARED mapping created before the
// fork, so plain lock-free std::atomic fields work across the processes.
//
// Ownership: the coordinator alone writes `phase`, `run_start_ns` and `stop_publishing`; worker w
// alone writes `slots[w]`. Everyone else only reads, so no locks are needed. Counters are published
// with relaxed stores; `ready` and `finished` are release stores so a reader that sees them also
// sees the counters written before them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace herald::bench {

enum class Phase : int {
  kSetup = 0,  // workers connect (and subscribe); the coordinator waits for `ready`
  kRun = 1,    // publishers send; subscribers count
  kStop = 2,   // workers send DISCONNECT, close, write their histogram, exit
};

// A log-linear latency histogram in nanoseconds: exact below 128 ns, then 64 buckets
// per power of two (at most 1.6% relative error), up to about 39 hours. Plain data,
// so it can sit in the shared mapping; one writer at a time.
struct LatencyHistogram {
  static constexpr int kBuckets = 128 + 41 * 64;
  uint64_t counts[kBuckets];
  uint64_t total;
  uint64_t min_ns;
  uint64_t max_ns;
  long double sum_ns;

  void Clear();
  void Record(uint64_t ns);
  void Merge(const LatencyHistogram& other);
  // The value at quantile q in [0, 1] (the middle of its bucket); 0 when empty.
  uint64_t Quantile(double q) const;
  double MeanNs() const { return total ? static_cast<double>(sum_ns / total) : 0.0; }
};

// One worker's published state. Counters are totals over its connections.
struct alignas(64) WorkerSlot {
  std::atomic<uint64_t> connected;        // CONNACK accepted
  std::atomic<uint64_t> failed;           // could not connect / refused / closed in setup
  std::atomic<uint64_t> lost;             // closed by the broker after setup
  std::atomic<uint64_t> published;        // PUBLISH packets written
  std::atomic<uint64_t> completed;        // QoS 0 written, QoS 1 PUBACKed, QoS 2 PUBCOMPed
  std::atomic<uint64_t> received;         // distinct messages received
  std::atomic<uint64_t> duplicates;       // repeated or out-of-order (publisher, seq)
  std::atomic<uint64_t> pings;            // PINGREQ sent
  std::atomic<uint64_t> publishers_done;  // publishers that sent and settled their quota
  std::atomic<int64_t> first_connect_ns;  // first TCP connect() started
  std::atomic<int64_t> last_connack_ns;   // last CONNACK (or SUBACK when subscribing)
  std::atomic<int64_t> first_publish_ns;
  std::atomic<int64_t> last_receive_ns;
  std::atomic<int> ready;     // 1: every connection of this worker is set up or failed
  std::atomic<int> finished;  // 1: stopped, histogram written; the process may exit
  char error[256];            // first error, NUL-terminated; written before failed++
  LatencyHistogram latency;   // written once, before `finished`
};

struct Board {
  static constexpr int kMaxWorkers = 64;
  std::atomic<int> phase;
  std::atomic<int64_t> run_start_ns;
  std::atomic<int> stop_publishing;  // 1: the time is up; publishers settle and stop
  int workers;
  WorkerSlot slots[kMaxWorkers];
};

// Maps a zeroed Board shared with processes forked afterwards. Aborts if the
// kernel refuses the mapping (there is nothing a benchmark can do without it).
Board* MapBoard(int workers);
void UnmapBoard(Board* board);

// CLOCK_MONOTONIC in nanoseconds: comparable across the processes of one host.
int64_t MonoNs();

// Copies `message` into slot->error if no error was recorded yet (truncating).
void RecordError(WorkerSlot* slot, std::string_view message);

}  // namespace herald::bench
