#include "bench_board.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

namespace herald::bench {
namespace {

int BucketOf(uint64_t v) {
  if (v < 128) return static_cast<int>(v);
  int msb = 63 - std::countl_zero(v);  // >= 7
  int shift = msb - 6;                 // v >> shift is in [64, 128)
  int index = 128 + (msb - 7) * 64 + static_cast<int>((v >> shift) - 64);
  return std::min(index, LatencyHistogram::kBuckets - 1);
}

uint64_t BucketMiddle(int index) {
  if (index < 128) return static_cast<uint64_t>(index);
  int msb = (index - 128) / 64 + 7;
  uint64_t sub = static_cast<uint64_t>((index - 128) % 64 + 64);
  uint64_t low = sub << (msb - 6);
  uint64_t width = uint64_t{1} << (msb - 6);
  return low + width / 2;
}

}  // namespace

void LatencyHistogram::Clear() {
  std::memset(counts, 0, sizeof(counts));
  total = 0;
  min_ns = UINT64_MAX;
  max_ns = 0;
  sum_ns = 0;
}

void LatencyHistogram::Record(uint64_t ns) {
  ++counts[BucketOf(ns)];
  ++total;
  min_ns = std::min(min_ns, ns);
  max_ns = std::max(max_ns, ns);
  sum_ns += static_cast<long double>(ns);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts[i] += other.counts[i];
  total += other.total;
  min_ns = std::min(min_ns, other.min_ns);
  max_ns = std::max(max_ns, other.max_ns);
  sum_ns += other.sum_ns;
}

uint64_t LatencyHistogram::Quantile(double q) const {
  if (total == 0) return 0;
  // The rank of the sample at quantile q, 1-based: p99 of 1000 samples is the 990th.
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total) + 0.5);
  rank = std::clamp<uint64_t>(rank, 1, total);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts[i];
    if (seen >= rank) return std::clamp(BucketMiddle(i), min_ns, max_ns);
  }
  return max_ns;
}

Board* MapBoard(int workers) {
  void* mem =
      mmap(nullptr, sizeof(Board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    std::perror("herald-mqtt-bench: mmap of the shared board");
    std::abort();
  }
  // The mapping is zero-filled; atomics of zero are valid initial values.
  auto* board = static_cast<Board*>(mem);
  board->workers = workers;
  for (WorkerSlot& slot : board->slots) slot.latency.Clear();
  return board;
}

void UnmapBoard(Board* board) {
  munmap(board, sizeof(Board));
}

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void RecordError(WorkerSlot* slot, std::string_view message) {
  if (slot->error[0] != '\0') return;
  size_t n = std::min(message.size(), sizeof(slot->error) - 1);
  std::memcpy(slot->error, message.data(), n);
  slot->error[n] = '\0';
}

}  // namespace herald::bench
