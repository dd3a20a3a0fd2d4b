// Every record the event log acknowledged survives kill -9 of the appending
// process: present exactly once, at its acknowledged offset, with a valid CRC.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "log/event_log.h"
#include "log/tests/test_util.h"

namespace herald::eventlog {
namespace {

struct Ack {
  PartitionId partition;
  std::uint64_t offset;
};

// Runs the crash writer until `want` acknowledgements have arrived, kills it with
// SIGKILL and returns every acknowledgement it printed.
std::map<std::string, Ack> RunAndKill(const std::string& dir, const char* mode, std::size_t want) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::dup2(fds[1], STDOUT_FILENO);
    ::execl(HERALD_LOG_CRASH_WRITER, HERALD_LOG_CRASH_WRITER, dir.c_str(), mode,
            static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[1]);
  std::string acks;
  char buf[65536];
  for (std::size_t lines = 0; lines < want;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) {
      ADD_FAILURE() << "writer died early";
      break;
    }
    acks.append(buf, static_cast<std::size_t>(n));
    lines += static_cast<std::size_t>(std::count(buf, buf + n, '\n'));
  }
  EXPECT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    acks.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);

  std::map<std::string, Ack> out;
  std::istringstream in(acks.substr(0, acks.rfind('\n') + 1));  // a torn last line is no ack
  std::string key;
  Ack a;
  while (in >> key >> a.partition >> a.offset) out[key] = a;
  return out;
}

class LogCrashTest : public ::testing::TestWithParam<std::pair<const char*, std::size_t>> {};

TEST_P(LogCrashTest, AcknowledgedRecordsSurviveSigkill) {
  testing::TempDir dir;
  auto [mode, want] = GetParam();
  auto acked = RunAndKill(dir.path(), mode, want);
  ASSERT_GE(acked.size(), want);

  LogOptions o;
  o.dir = dir.path();
  o.partitions = 8;
  auto log = EventLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::map<std::string, Ack> found;
  std::size_t duplicates = 0, out_of_order = 0;
  for (PartitionId p = 0; p < 8; ++p) {
    std::map<std::string, long> last_seq;  // per writer thread
    auto r = (*log)->Read(p, 0, SIZE_MAX, [&](std::uint64_t off, Micros, std::string_view v) {
      auto colon2 = v.find(':', v.find(':') + 1);
      std::string key(v.substr(0, colon2));
      EXPECT_EQ(v, key + ":" + std::string(60, 'k'));
      if (!found.emplace(key, Ack{p, off}).second) ++duplicates;
      std::string thread = key.substr(0, key.find(':'));
      long seq = std::stol(key.substr(key.find(':') + 1));
      auto it = last_seq.find(thread);
      if (it != last_seq.end() && it->second >= seq) ++out_of_order;
      last_seq[thread] = seq;
      return true;
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();  // every CRC checked
  }
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(out_of_order, 0u);
  std::size_t missing = 0, misplaced = 0;
  for (const auto& [key, ack] : acked) {
    auto it = found.find(key);
    if (it == found.end()) {
      ++missing;
    } else if (it->second.partition != ack.partition || it->second.offset != ack.offset) {
      ++misplaced;
    }
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged records";
  EXPECT_EQ(misplaced, 0u);
  // The recovered log takes appends at its end.
  const std::uint64_t end = (*log)->EndOffset(3);
  EXPECT_EQ((*log)->AppendSync(3, "after the crash", 1).value(), end);
}

INSTANTIATE_TEST_SUITE_P(Modes, LogCrashTest,
                         ::testing::Values(std::make_pair("process", std::size_t{100000}),
                                           std::make_pair("fsync", std::size_t{4000})),
                         [](const auto& info) { return std::string(info.param.first); });

}  // namespace
}  // namespace herald::eventlog
