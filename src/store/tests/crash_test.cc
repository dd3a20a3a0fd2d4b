// Every write the store acknowledged survives kill -9 of the writing process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "store/db.h"

namespace herald::store {
namespace {

TEST(StoreCrashTest, AcknowledgedWritesSurviveSigkill) {
  auto dir = (std::filesystem::temp_directory_path() / ("crash-" + std::to_string(::getpid())))
                 .string();
  std::filesystem::remove_all(dir);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // A fresh process (exec, not just fork): RocksDB's thread pools do not survive fork.
    ::close(fds[0]);
    ::dup2(fds[1], STDOUT_FILENO);
    ::execl(HERALD_CRASH_WRITER, HERALD_CRASH_WRITER, dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[1]);

  // Read acknowledgements until 30,000 have arrived, then kill -9 mid-load.
  std::string acks;
  char buf[65536];
  size_t lines = 0;
  while (lines < 30000) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    ASSERT_GT(n, 0) << "writer died early";
    acks.append(buf, static_cast<size_t>(n));
    lines += static_cast<size_t>(std::count(buf, buf + n, '\n'));
  }
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  // Acks written before the kill are still in the pipe.
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) acks.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);

  std::set<std::string> acked;
  size_t start = 0;
  for (size_t nl; (nl = acks.find('\n', start)) != std::string::npos; start = nl + 1) {
    acked.insert(acks.substr(start, nl - start));
  }
  ASSERT_GE(acked.size(), 30000u);

  DbOptions o;
  auto db = Db::Open(dir, o, {"data"});
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto cf = (*db)->Family("data").value();
  size_t missing = 0;
  for (const auto& key : acked) {
    auto v = (*db)->Get(cf, key);
    ASSERT_TRUE(v.ok());
    if (!v->has_value() || **v != "value-of-" + key + std::string(100, 'x')) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged writes";
  db->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::store
