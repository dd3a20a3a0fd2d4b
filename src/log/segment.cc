// File I/O with retries, and the sequential record scanner shared by recovery,
// indexing and reads.
#include "log/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace herald::eventlog {
namespace {

// Scanner read size: large enough that replay is sequential I/O, small enough to
// keep a reader's memory bounded.
constexpr std::size_t kScanChunk = 256 << 10;

Status Errno(std::string_view what, const std::string& path, int err) {
  std::string msg = std::string(what) + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) return Status::NotFound(std::move(msg));
  return Status::IoError(std::move(msg));
}

Result<std::unique_ptr<File>> OpenFile(const std::string& path, int flags) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Errno("open", path, errno);
  return std::make_unique<File>(fd, path);
}

}  // namespace

Result<std::unique_ptr<File>> File::OpenForRead(const std::string& path) {
  return OpenFile(path, O_RDONLY);
}

// O_EXCL: a new segment never silently reuses a file another run left behind.
Result<std::unique_ptr<File>> File::OpenForWrite(const std::string& path, bool create) {
  return OpenFile(path, O_RDWR | (create ? O_CREAT | O_EXCL : 0));
}

File::~File() {
  ::close(fd_);
}

Status File::WriteAt(std::uint64_t pos, const char* data, std::size_t n) {
  // pwrite at an explicit position: the committer tracks the end of the segment,
  // so a failed partial write never moves a shared file offset.
  while (n > 0) {
    ssize_t w = ::pwrite(fd_, data, n, static_cast<off_t>(pos));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("write", path_, errno);
    }
    data += w;
    n -= static_cast<std::size_t>(w);
    pos += static_cast<std::uint64_t>(w);
  }
  return Status::Ok();
}

Status File::ReadAt(std::uint64_t pos, char* buf, std::size_t n, std::size_t* got) const {
  *got = 0;
  while (*got < n) {
    ssize_t r = ::pread(fd_, buf + *got, n - *got, static_cast<off_t>(pos + *got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Errno("read", path_, errno);
    }
    if (r == 0) break;  // end of file
    *got += static_cast<std::size_t>(r);
  }
  return Status::Ok();
}

Status File::Sync() {
  if (::fdatasync(fd_) != 0) return Errno("fdatasync", path_, errno);
  return Status::Ok();
}

Status File::Truncate(std::uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return Errno("truncate", path_, errno);
  return Status::Ok();
}

Result<std::uint64_t> File::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Errno("stat", path_, errno);
  return static_cast<std::uint64_t>(st.st_size);
}

Status SyncDir(const std::string& dir) {
  auto f = OpenFile(dir, O_RDONLY | O_DIRECTORY);
  if (!f.ok()) return f.status();
  if (::fsync(f.value()->fd()) != 0) return Errno("fsync", dir, errno);
  return Status::Ok();
}

IndexPoint Segment::Seek(std::uint64_t offset) const {
  auto it = std::upper_bound(index.begin(), index.end(), offset,
                             [](std::uint64_t o, const IndexPoint& p) { return o < p.offset; });
  if (it == index.begin()) return {base, 0};
  return *std::prev(it);
}

RecordScanner::Outcome RecordScanner::Fail(Outcome o, std::string why) {
  error_ = file_.path() + " at byte " + std::to_string(pos_) + ": " + why;
  return o;
}

RecordScanner::Outcome RecordScanner::Fill(std::size_t n) {
  const std::uint64_t have_end = buf_pos_ + buf_len_;
  if (pos_ >= buf_pos_ && pos_ + n <= have_end) return Outcome::kRecord;
  // Keep the unread bytes (the start of a record cut by the previous chunk) and
  // read the next chunk after them: one pread per chunk, not per record.
  std::size_t keep = 0;
  if (pos_ >= buf_pos_ && pos_ < have_end) {
    keep = static_cast<std::size_t>(have_end - pos_);
    std::memmove(buf_.data(), buf_.data() + (pos_ - buf_pos_), keep);
  }
  std::size_t want = std::max<std::size_t>(
      n, static_cast<std::size_t>(std::min<std::uint64_t>(kScanChunk, limit_ - pos_)));
  if (buf_.size() < want) buf_.resize(want);
  std::size_t got = 0;
  Status s = file_.ReadAt(pos_ + keep, buf_.data() + keep, want - keep, &got);
  buf_pos_ = pos_;
  buf_len_ = keep + got;
  if (!s.ok()) return Fail(Outcome::kIoError, s.ToString());
  if (buf_len_ < n) return Fail(Outcome::kTruncated, "file ends before the expected size");
  return Outcome::kRecord;
}

RecordScanner::Outcome RecordScanner::Next(Record* out) {
  if (pos_ >= limit_) return Outcome::kEnd;
  if (limit_ - pos_ < format::kHeaderSize) return Fail(Outcome::kTruncated, "partial header");
  if (Outcome o = Fill(format::kHeaderSize); o != Outcome::kRecord) return o;
  const format::RecordHeader h = format::DecodeHeader(buf_.data() + (pos_ - buf_pos_));
  if (h.length > format::kMaxPayloadBytes) {
    return Fail(Outcome::kCorrupt, "record length " + std::to_string(h.length) + " is too large");
  }
  const std::uint64_t total = format::kHeaderSize + std::uint64_t{h.length};
  if (limit_ - pos_ < total) return Fail(Outcome::kTruncated, "partial record");
  if (Outcome o = Fill(total); o != Outcome::kRecord) return o;
  const char* rec = buf_.data() + (pos_ - buf_pos_);
  if (verify_ && !format::CrcMatches(rec, h.length)) return Fail(Outcome::kCorrupt, "crc mismatch");
  if (h.offset != expected_) {
    return Fail(Outcome::kCorrupt, "record has offset " + std::to_string(h.offset) + ", expected " +
                                       std::to_string(expected_));
  }
  out->pos = pos_;
  out->offset = h.offset;
  out->timestamp_us = h.timestamp_us;
  out->payload = std::string_view(rec + format::kHeaderSize, h.length);
  out->continues = h.continues;
  pos_ += total;
  ++expected_;
  return Outcome::kRecord;
}

}  // namespace herald::eventlog
