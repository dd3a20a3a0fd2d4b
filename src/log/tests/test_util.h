// Helpers shared by the event log tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "log/event_log.h"

namespace herald::eventlog::testing {

// A fresh directory, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    path_ = (std::filesystem::temp_directory_path() /
             ("herald-log-" + std::to_string(::getpid()) + "-" + std::to_string(n++)))
                .string();
    std::filesystem::remove_all(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Rec {
  std::uint64_t offset;
  Micros ts;
  std::string payload;
  bool operator==(const Rec&) const = default;
};

// Reads partition p from `from` to its end offset.
inline Result<std::vector<Rec>> ReadAll(const EventLog& log, PartitionId p, std::uint64_t from = 0,
                                        std::size_t max = SIZE_MAX) {
  std::vector<Rec> out;
  auto next = log.Read(p, from, max, [&](std::uint64_t o, Micros ts, std::string_view v) {
    out.push_back({o, ts, std::string(v)});
    return true;
  });
  if (!next.ok()) return next.status();
  return out;
}

inline std::string Payload(PartitionId p, std::uint64_t i, std::size_t size = 40) {
  std::string s;  // built by appends: GCC 12 warns falsely on "lit" + std::string&&
  s.append("p").append(std::to_string(p)).append("-r").append(std::to_string(i)).append("-");
  while (s.size() < size) s.push_back(static_cast<char>('a' + (s.size() + i) % 26));
  return s;
}

// The segment files of partition p, oldest first.
inline std::vector<std::string> SegmentFiles(const std::string& dir, PartitionId p) {
  char name[16];
  std::snprintf(name, sizeof name, "p%03u", p);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/" + name)) {
    files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace herald::eventlog::testing
