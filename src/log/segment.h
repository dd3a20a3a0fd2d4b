// Private to the log module: files, segments and the record scanner.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "log/format.h"

namespace herald::eventlog {

// An open file descriptor, closed on destruction. Methods retry EINTR and short
// transfers. Thread-compatible; ReadAt() alone may run concurrently with anything.
class File {
 public:
  // Opens `path` read-only, or read-write (creating it when `create`).
  static Result<std::unique_ptr<File>> OpenForRead(const std::string& path);
  static Result<std::unique_ptr<File>> OpenForWrite(const std::string& path, bool create);

  explicit File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Writes all of data[0, n) at byte `pos`.
  Status WriteAt(std::uint64_t pos, const char* data, std::size_t n);
  // Reads up to n bytes at `pos` into buf; *got < n only at end of file.
  Status ReadAt(std::uint64_t pos, char* buf, std::size_t n, std::size_t* got) const;
  Status Sync();  // fdatasync
  Status Truncate(std::uint64_t size);
  Result<std::uint64_t> Size() const;
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  int fd_;
  std::string path_;
};

// fsyncs a directory, making the creation or removal of its entries durable.
Status SyncDir(const std::string& dir);

// Sparse index point: the record with `offset` starts at byte `pos`.
struct IndexPoint {
  std::uint64_t offset;
  std::uint64_t pos;
};

// One index point per this many bytes of segment, at most.
constexpr std::uint64_t kIndexIntervalBytes = 64 << 10;

// One segment file of a partition. `base`, `path` never change. The owning
// PartitionLog's segment mutex guards `file`, `index` and `indexed`; `size` and
// `first_ts` are atomics written only by the committer.
struct Segment {
  static constexpr Micros kNoTimestamp = std::numeric_limits<Micros>::min();

  Segment(std::uint64_t b, std::string p) : base(b), path(std::move(p)) {}

  const std::uint64_t base;
  const std::string path;
  // Bytes of complete records. Readers never look past it.
  std::atomic<std::uint64_t> size{0};
  // Timestamp of the first record; kNoTimestamp while the segment is empty.
  std::atomic<Micros> first_ts{kNoTimestamp};

  std::shared_ptr<File> file;     // open only while active; readers open sealed ones
  std::vector<IndexPoint> index;  // ascending; empty until indexed
  bool indexed = false;           // index covers the whole segment

  // Where to start reading for `offset` (largest index point at or below it).
  // Requires indexed; the caller holds the segment mutex.
  IndexPoint Seek(std::uint64_t offset) const;
};

// Reads records sequentially from bytes [start, limit) of a file, checking that
// their offsets are dense from `expected_offset`. Payload views stay valid until
// the next call to Next().
class RecordScanner {
 public:
  enum class Outcome {
    kRecord,     // *out holds a valid record
    kEnd,        // clean end: position() == limit
    kTruncated,  // the bytes up to `limit` end inside a record
    kCorrupt,    // bad length, CRC or offset; see error()
    kIoError,    // see error()
  };
  struct Record {
    std::uint64_t pos;  // byte position of the record in the file
    std::uint64_t offset;
    Micros timestamp_us;
    std::string_view payload;
    bool continues;  // more records of the same append follow
  };

  RecordScanner(const File& file, std::uint64_t start, std::uint64_t limit,
                std::uint64_t expected_offset, bool verify_crc)
      : file_(file), pos_(start), limit_(limit), expected_(expected_offset), verify_(verify_crc) {}

  Outcome Next(Record* out);
  // Byte position just after the last record returned.
  std::uint64_t position() const { return pos_; }
  // Offset the next record must carry.
  std::uint64_t expected_offset() const { return expected_; }
  const std::string& error() const { return error_; }

 private:
  // Makes bytes [pos_, pos_ + n) available in buf_.
  // Returns kRecord on success, else the failure (with error() set).
  Outcome Fill(std::size_t n);
  Outcome Fail(Outcome o, std::string why);

  const File& file_;
  std::uint64_t pos_;
  const std::uint64_t limit_;
  std::uint64_t expected_;
  const bool verify_;
  std::string buf_;  // holds file bytes [buf_pos_, buf_pos_ + buf_len_)
  std::uint64_t buf_pos_ = 0;
  std::size_t buf_len_ = 0;
  std::string error_;
};

}  // namespace herald::eventlog
