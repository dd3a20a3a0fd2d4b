// PartitionLog: reads and retention, which run on any thread next to the committer.
#include <algorithm>
#include <filesystem>

#include "core/log.h"
#include "log/partition_log.h"

namespace herald::eventlog {

Result<std::uint64_t> PartitionLog::Read(std::uint64_t from, std::size_t max_records,
                                         const RecordVisitor& fn) {
  // Loaded before any segment size: every record below `end` lies within the
  // sizes read afterwards (the committer publishes sizes first).
  const std::uint64_t end = durable_end_.load(std::memory_order_acquire);
  std::uint64_t next = from;
  std::size_t delivered = 0;
  int retries = 0;
  while (delivered < max_records && next < end) {
    ReadCursor c;
    Status located = Locate(&next, end, &c);
    if (located.code() == Code::kNotFound && ++retries < 100) continue;  // lost to retention
    HERALD_RETURN_IF_ERROR(located);
    RecordScanner scan(*c.file, c.start.pos, c.limit, c.start.offset, /*verify_crc=*/true);
    RecordScanner::Record r;
    RecordScanner::Outcome o;
    while ((o = scan.Next(&r)) == RecordScanner::Outcome::kRecord) {
      if (r.offset < next) continue;
      if (r.offset >= c.stop) break;
      next = r.offset + 1;
      ++delivered;
      if (!fn(r.offset, r.timestamp_us, r.payload) || delivered == max_records) return next;
    }
    if (o == RecordScanner::Outcome::kIoError) return Status::IoError(scan.error());
    if (o != RecordScanner::Outcome::kRecord && o != RecordScanner::Outcome::kEnd) {
      return Status::Corruption("event log partition " + std::to_string(id_) + ": " + scan.error());
    }
    if (next < c.stop) {
      return Status::Corruption("event log partition " + std::to_string(id_) + ": " +
                                c.segment->path + " ends at offset " + std::to_string(next) +
                                " but the next segment starts at " + std::to_string(c.stop));
    }
  }
  return std::max(next, StartOffset());
}

// Finds the segment holding offset *next (moving *next up to the start of the log
// when retention has removed it) and where to start scanning in it. NotFound means
// the segment was deleted by retention meanwhile; the caller retries.
Status PartitionLog::Locate(std::uint64_t* next, std::uint64_t end, ReadCursor* c) {
  bool need_index = false;
  {
    std::lock_guard<std::mutex> lk(seg_mu_);
    *next = std::max(*next, segments_.front()->base);
    auto it = std::upper_bound(
        segments_.begin(), segments_.end(), *next,
        [](std::uint64_t o, const std::shared_ptr<Segment>& s) { return o < s->base; });
    --it;  // segments_.front()->base <= *next, so `it` was not begin()
    c->segment = *it;
    c->stop = std::next(it) != segments_.end() ? std::min((*std::next(it))->base, end) : end;
    c->file = (*it)->file;
    c->limit = (*it)->size.load(std::memory_order_acquire);
    if ((*it)->indexed) {
      c->start = (*it)->Seek(*next);
    } else {
      c->start = {(*it)->base, 0};
      need_index = *next > (*it)->base;
    }
  }
  if (!c->file) {
    auto f = File::OpenForRead(c->segment->path);
    if (!f.ok()) {
      if (f.status().code() == Code::kNotFound && Deleted(*c->segment)) return f.status();
      return Status::IoError(f.status().message());
    }
    c->file = std::move(f.value());
  }
  if (need_index) {
    HERALD_RETURN_IF_ERROR(BuildIndex(*c));
    std::lock_guard<std::mutex> lk(seg_mu_);
    c->start = c->segment->Seek(*next);
  }
  return Status::Ok();
}

bool PartitionLog::Deleted(const Segment& seg) const {
  std::lock_guard<std::mutex> lk(seg_mu_);
  return segments_.front()->base > seg.base;
}

// Indexes a sealed segment found at start-up, on its first read from the middle,
// with one sequential pass over its headers. A damaged record ends the index
// early; the read that reaches it reports the damage.
Status PartitionLog::BuildIndex(const ReadCursor& c) {
  std::vector<IndexPoint> index;
  RecordScanner scan(*c.file, 0, c.limit, c.segment->base, /*verify_crc=*/false);
  RecordScanner::Record r;
  RecordScanner::Outcome o;
  std::uint64_t last = 0;
  while ((o = scan.Next(&r)) == RecordScanner::Outcome::kRecord) {
    if (r.pos - last >= kIndexIntervalBytes) {
      index.push_back({r.offset, r.pos});
      last = r.pos;
    }
  }
  if (o == RecordScanner::Outcome::kIoError) return Status::IoError(scan.error());
  std::lock_guard<std::mutex> lk(seg_mu_);
  if (!c.segment->indexed) {
    c.segment->index = std::move(index);
    c.segment->indexed = true;
  }
  return Status::Ok();
}

std::uint64_t PartitionLog::DiskBytes() const {
  std::lock_guard<std::mutex> lk(seg_mu_);
  std::uint64_t total = 0;
  for (const auto& s : segments_) total += s->size.load(std::memory_order_acquire);
  return total;
}

Status PartitionLog::EnforceRetention(Micros now, std::uint64_t keep_from) {
  const bool by_age = opts_.retention_age > 0;
  const Micros cutoff = now - opts_.retention_age;
  std::vector<std::shared_ptr<Segment>> doomed;
  {
    std::lock_guard<std::mutex> lk(seg_mu_);
    std::uint64_t total = 0;
    for (const auto& s : segments_) total += s->size.load(std::memory_order_acquire);
    // Oldest first, and never the active (last) segment, so offsets stay dense.
    while (segments_.size() > 1) {
      const bool too_big =
          opts_.retention_bytes_per_partition > 0 && total > opts_.retention_bytes_per_partition;
      const Micros after = segments_[1]->first_ts.load(std::memory_order_acquire);
      const bool expired = by_age && after != Segment::kNoTimestamp && after <= cutoff;
      if (!too_big && !expired) break;
      // The segment's records end where the next segment begins: still needed?
      if (segments_[1]->base > keep_from) break;
      (too_big ? m_.deleted_by_size : m_.deleted_by_age)->Inc();
      total -= segments_.front()->size.load(std::memory_order_acquire);
      doomed.push_back(std::move(segments_.front()));
      segments_.erase(segments_.begin());
    }
    start_offset_.store(segments_.front()->base, std::memory_order_release);
  }
  // Readers still holding a deleted segment keep reading it through their open
  // file; Linux frees the blocks when the last descriptor closes.
  Status result;
  for (const auto& seg : doomed) {
    std::error_code ec;
    std::filesystem::remove(seg->path, ec);
    if (ec && result.ok()) result = Status::IoError("remove " + seg->path + ": " + ec.message());
  }
  if (!doomed.empty() && opts_.sync == SyncMode::kFsync && result.ok()) result = SyncDir(dir_);
  return result;
}

}  // namespace herald::eventlog
