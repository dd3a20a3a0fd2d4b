// PartitionLog: recovery, the append side and the committer side.
#include "log/partition_log.h"

#include <algorithm>
#include <filesystem>

#include "core/log.h"

namespace herald::eventlog {
namespace fs = std::filesystem;

namespace {

// Buffers that grew beyond this for a burst are released after use rather than
// kept for the partition's lifetime.
constexpr std::size_t kMaxRetainedBufferBytes = 4 << 20;

// The timestamp of the first record of a segment file, or kNoTimestamp when the
// file holds no complete, intact first record. Only retention by age uses it, so
// a damaged record just leaves the segment before it to retention by size.
Micros ReadFirstTimestamp(const std::string& path) {
  auto f = File::OpenForRead(path);
  if (!f.ok()) return Segment::kNoTimestamp;
  std::string rec(format::kHeaderSize, '\0');
  std::size_t got = 0;
  if (!(*f)->ReadAt(0, rec.data(), rec.size(), &got).ok() || got < rec.size()) {
    return Segment::kNoTimestamp;
  }
  const format::RecordHeader h = format::DecodeHeader(rec.data());
  if (h.length > format::kMaxPayloadBytes) return Segment::kNoTimestamp;
  rec.resize(format::kHeaderSize + h.length);
  if (!(*f)->ReadAt(format::kHeaderSize, rec.data() + format::kHeaderSize, h.length, &got).ok() ||
      got < h.length || !format::CrcMatches(rec.data(), h.length)) {
    return Segment::kNoTimestamp;
  }
  return h.timestamp_us;
}

}  // namespace

std::string PartitionLog::SegmentPath(std::uint64_t base) const {
  return dir_ + "/" + format::SegmentFileName(base);
}

Status PartitionLog::Recover() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status::IoError("create " + dir_ + ": " + ec.message());
  std::vector<std::uint64_t> bases;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::uint64_t base;
    if (e.is_regular_file() && format::ParseSegmentFileName(e.path().filename().string(), &base)) {
      bases.push_back(base);
    }
  }
  if (ec) return Status::IoError("list " + dir_ + ": " + ec.message());
  std::sort(bases.begin(), bases.end());
  if (bases.empty()) {
    HERALD_RETURN_IF_ERROR(CreateActive(0));
    return opts_.sync == SyncMode::kFsync ? SyncDir(dir_) : Status::Ok();
  }
  // Sealed segments are only sized here; their records are checked when read.
  for (std::size_t i = 0; i + 1 < bases.size(); ++i) {
    auto seg = std::make_shared<Segment>(bases[i], SegmentPath(bases[i]));
    std::uint64_t size = fs::file_size(seg->path, ec);
    if (ec) return Status::IoError("stat " + seg->path + ": " + ec.message());
    seg->size.store(size);
    seg->first_ts.store(ReadFirstTimestamp(seg->path));
    segments_.push_back(std::move(seg));
  }
  return RecoverActive(bases.back());
}

// Scans the last segment, checking every record, and truncates whatever follows
// the last valid one: after kill -9 or power loss that is a write cut short.
Status PartitionLog::RecoverActive(std::uint64_t base) {
  auto seg = std::make_shared<Segment>(base, SegmentPath(base));
  auto opened = File::OpenForWrite(seg->path, /*create=*/false);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<File> file = std::move(opened.value());
  auto size = file->Size();
  if (!size.ok()) return size.status();

  RecordScanner scan(*file, 0, *size, base, /*verify_crc=*/true);
  RecordScanner::Record r;
  RecordScanner::Outcome o;
  // The end of the last complete append: records after it belong to an append
  // that the crash cut short, and go with the torn tail.
  std::uint64_t complete_pos = 0, complete_next = base;
  bool at_start = true;  // the next record starts an append
  while ((o = scan.Next(&r)) == RecordScanner::Outcome::kRecord) {
    if (r.pos == 0) seg->first_ts.store(r.timestamp_us);
    // Index points fall on append boundaries, as WriteRun places them.
    if (at_start && r.pos - last_index_pos_ >= kIndexIntervalBytes) {
      seg->index.push_back({r.offset, r.pos});
      last_index_pos_ = r.pos;
    }
    at_start = !r.continues;
    if (r.continues) continue;
    complete_pos = scan.position();
    complete_next = scan.expected_offset();
  }
  if (o == RecordScanner::Outcome::kIoError) return Status::IoError(scan.error());
  const std::uint64_t valid = complete_pos;
  while (!seg->index.empty() && seg->index.back().pos >= valid) seg->index.pop_back();
  last_index_pos_ = seg->index.empty() ? 0 : seg->index.back().pos;
  if (valid < *size) {
    std::string reason = scan.position() > valid ? "an append cut short" : scan.error();
    if (scan.position() > valid && !scan.error().empty()) reason += "; " + scan.error();
    log::Warn("event log: truncating torn tail", {{"partition", id_},
                                                  {"segment", seg->path},
                                                  {"at_byte", valid},
                                                  {"dropped_bytes", *size - valid},
                                                  {"reason", reason}});
    m_.truncated_tails->Inc();
    m_.truncated_bytes->Inc(*size - valid);
    HERALD_RETURN_IF_ERROR(file->Truncate(valid));
    if (opts_.sync == SyncMode::kFsync) HERALD_RETURN_IF_ERROR(file->Sync());
  }
  seg->size.store(valid);
  seg->indexed = true;
  seg->file = file;
  segments_.push_back(seg);
  active_ = std::move(seg);
  active_file_ = std::move(file);
  active_size_ = valid;
  next_offset_ = complete_next;
  durable_end_.store(next_offset_);
  start_offset_.store(segments_.front()->base);
  return Status::Ok();
}

// Creates an empty segment starting at `base` and makes it the active one.
Status PartitionLog::CreateActive(std::uint64_t base) {
  auto seg = std::make_shared<Segment>(base, SegmentPath(base));
  auto opened = File::OpenForWrite(seg->path, /*create=*/true);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<File> file = std::move(opened.value());
  seg->indexed = true;
  seg->file = file;
  {
    std::lock_guard<std::mutex> lk(seg_mu_);
    if (!segments_.empty()) segments_.back()->file.reset();  // sealed: readers open their own
    segments_.push_back(seg);
    start_offset_.store(segments_.front()->base, std::memory_order_release);
  }
  active_ = std::move(seg);
  active_file_ = std::move(file);
  active_size_ = 0;
  last_index_pos_ = 0;
  return Status::Ok();
}

Status PartitionLog::Enqueue(std::span<const std::string_view> payloads, Micros ts,
                             AppendCallback& done, bool may_block, bool* became_dirty) {
  std::unique_lock<std::mutex> lk(mu_);
  const std::size_t n = payloads.size();
  if (may_block && pending_records_ > 0 && pending_records_ + n > opts_.max_batch_records) {
    ++waiters_;
    space_cv_.wait(lk, [&] {
      return pending_records_ == 0 || pending_records_ + n <= opts_.max_batch_records ||
             !refusal_.ok();
    });
    --waiters_;
  }
  if (!refusal_.ok()) return refusal_;
  const std::uint64_t first = next_offset_;
  for (std::size_t i = 0; i < n; ++i) {
    format::AppendRecord(&pending_, next_offset_++, ts, payloads[i], /*continues=*/i + 1 < n);
  }
  pending_records_ += n;
  pending_entries_.push_back({std::move(done), first, pending_.size()});
  *became_dirty = !dirty_;
  dirty_ = true;
  return Status::Ok();
}

void PartitionLog::Close() {
  std::lock_guard<std::mutex> lk(mu_);
  if (refusal_.ok()) refusal_ = Status::Unavailable("event log is closed");
  space_cv_.notify_all();
}

bool PartitionLog::TakePending() {
  std::lock_guard<std::mutex> lk(mu_);
  dirty_ = false;
  if (pending_entries_.empty()) return false;
  inflight_bytes_.swap(pending_);
  inflight_entries_.swap(pending_entries_);
  inflight_end_ = next_offset_;
  inflight_records_ = pending_records_;
  pending_records_ = 0;
  if (waiters_ > 0) space_cv_.notify_all();
  return true;
}

// Writes the in-flight appends in runs that fit the active segment, rolling to a
// new segment between appends, never inside one.
Status PartitionLog::WriteInflight() {
  if (!write_error_.ok()) return write_error_;
  if (opts_.write_fault) {
    if (Status f = opts_.write_fault(id_); !f.ok()) {
      FailWrites(f);
      return f;
    }
  }
  const auto& es = inflight_entries_;
  std::size_t i = 0, from_byte = 0;
  while (i < es.size()) {
    std::size_t j = i, to_byte = from_byte;
    while (j < es.size()) {
      std::uint64_t after = active_size_ + (es[j].end_byte - from_byte);
      if (after > opts_.segment_bytes && (j > i || active_size_ > 0)) break;
      to_byte = es[j].end_byte;
      ++j;
    }
    Status s = j == i ? Roll(es[i].first_offset) : WriteRun(i, j, from_byte, to_byte);
    if (!s.ok()) {
      FailWrites(s);
      return s;
    }
    if (j > i) {
      i = j;
      from_byte = to_byte;
    }
  }
  return Status::Ok();
}

// Writes the records of appends [first_entry, end_entry), bytes [from, to) of the
// in-flight buffer, at the end of the active segment.
Status PartitionLog::WriteRun(std::size_t first_entry, std::size_t end_entry, std::size_t from_byte,
                              std::size_t to_byte) {
  const char* data = inflight_bytes_.data();
  HERALD_RETURN_IF_ERROR(
      active_file_->WriteAt(active_size_, data + from_byte, to_byte - from_byte));
  if (active_size_ == 0) {
    active_->first_ts.store(format::DecodeHeader(data + from_byte).timestamp_us,
                            std::memory_order_release);
  }
  {
    // Index points fall on append boundaries, at most one per kIndexIntervalBytes.
    std::lock_guard<std::mutex> lk(seg_mu_);
    std::size_t entry_start = from_byte;
    for (std::size_t k = first_entry; k < end_entry; ++k) {
      std::uint64_t pos = active_size_ + (entry_start - from_byte);
      if (pos - last_index_pos_ >= kIndexIntervalBytes) {
        active_->index.push_back({inflight_entries_[k].first_offset, pos});
        last_index_pos_ = pos;
      }
      entry_start = inflight_entries_[k].end_byte;
    }
  }
  active_size_ += to_byte - from_byte;
  active_->size.store(active_size_, std::memory_order_release);
  return Status::Ok();
}

// Seals the active segment and starts a new one whose first record is `base`.
Status PartitionLog::Roll(std::uint64_t base) {
  // In kFsync mode the sealed segment is complete on disk before any later one
  // gets data, so recovery only ever finds a torn tail in the last segment.
  if (opts_.sync == SyncMode::kFsync) HERALD_RETURN_IF_ERROR(active_file_->Sync());
  HERALD_RETURN_IF_ERROR(CreateActive(base));
  return opts_.sync == SyncMode::kFsync ? SyncDir(dir_) : Status::Ok();
}

Status PartitionLog::SyncInflight() {
  if (!write_error_.ok()) return write_error_;
  Status s = active_file_->Sync();
  if (!s.ok()) FailWrites(s);
  return s;
}

// After a failed write the file may end in a partial record that later records
// would follow, so the partition refuses appends until reopened (which truncates).
void PartitionLog::FailWrites(const Status& s) {
  write_error_ = s;
  log::Error("event log: write failed; partition refuses appends until reopened",
             {{"partition", id_}, {"error", s}});
  std::lock_guard<std::mutex> lk(mu_);
  refusal_ = s;
  space_cv_.notify_all();
}

void PartitionLog::CompleteInflight(const Status& s) {
  if (s.ok()) {
    durable_end_.store(inflight_end_, std::memory_order_release);
    m_.records->Inc(inflight_records_);
    m_.bytes->Inc(inflight_bytes_.size());
  } else {
    m_.write_errors->Inc();
  }
  for (auto& e : inflight_entries_) e.done(s, e.first_offset);
  inflight_entries_.clear();
  inflight_bytes_.clear();
  if (inflight_bytes_.capacity() > kMaxRetainedBufferBytes) std::string().swap(inflight_bytes_);
  inflight_records_ = 0;
}

}  // namespace herald::eventlog
