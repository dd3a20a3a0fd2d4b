// log_crash_writer DIR MODE: appends records to an event log at DIR (MODE is
// "process" or "fsync") from four threads as fast as it accepts them, printing a
// line "<thread>:<seq> <partition> <offset>" on stdout for each acknowledged
// record, until it is killed. Driven by crash_test.cc.
#include <unistd.h>

#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "log/event_log.h"

namespace {

// The payload of key "<thread>:<seq>"; crash_test.cc rebuilds it to compare.
std::string PayloadOf(const std::string& key) {
  return key + ":" + std::string(60, 'k');
}

void WriteAll(const std::string& s) {
  if (::write(STDOUT_FILENO, s.data(), s.size()) != static_cast<ssize_t>(s.size())) _exit(5);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace herald::eventlog;
  if (argc != 3) return 2;
  LogOptions o;
  o.dir = argv[1];
  o.partitions = 8;
  o.sync = std::string(argv[2]) == "fsync" ? herald::SyncMode::kFsync : herald::SyncMode::kProcess;
  o.segment_bytes = 256 << 10;  // rolls mid-load
  auto log = EventLog::Open(o);
  if (!log.ok()) return 3;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::counting_semaphore<64> in_flight(64);
      for (int seq = 0;; seq += 2) {
        // Two records per append, so acknowledgements cover multi-record appends.
        std::string k0 = std::to_string(t) + ":" + std::to_string(seq);
        std::string k1 = std::to_string(t) + ":" + std::to_string(seq + 1);
        std::string v0 = PayloadOf(k0), v1 = PayloadOf(k1);
        std::string_view views[] = {v0, v1};
        auto p = static_cast<herald::PartitionId>((t * 5 + seq / 6) % o.partitions);
        in_flight.acquire();
        (*log)->Append(p, views, seq, [&in_flight, k0, k1, p](herald::Status s, std::uint64_t off) {
          if (!s.ok()) _exit(4);
          WriteAll(k0 + " " + std::to_string(p) + " " + std::to_string(off) + "\n" + k1 + " " +
                   std::to_string(p) + " " + std::to_string(off + 1) + "\n");
          in_flight.release();
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  return 0;
}
