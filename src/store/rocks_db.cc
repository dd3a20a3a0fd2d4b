// The RocksDB implementation of Db, with its group committer.
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "core/metrics.h"
#include "store/db.h"

namespace herald::store {
namespace {

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return Status::Unavailable(msg);
  return Status::IoError(msg);
}

struct Pending {
  WriteBatch batch;
  std::function<void(Status)> done;
};

class RocksDb final : public Db {
 public:
  RocksDb(const DbOptions& opts) : opts_(opts) {}
  ~RocksDb() override;

  Status OpenAt(const std::string& dir, const std::vector<std::string>& families);

  Result<ColumnFamily> Family(std::string_view name) const override;
  Result<std::optional<std::string>> Get(ColumnFamily cf, std::string_view key) override;
  Status Write(WriteBatch batch) override;
  void WriteAsync(WriteBatch batch, std::function<void(Status)> done) override;
  void WriteAsyncAlways(WriteBatch batch, std::function<void(Status)> done) override {
    WriteAsync(std::move(batch), std::move(done), /*bounded=*/false);
  }
  void WriteAsync(WriteBatch batch, std::function<void(Status)> done, bool bounded);
  Status Scan(ColumnFamily cf, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) override;
  Status ScanFrom(ColumnFamily cf, std::string_view prefix, std::string_view start,
                  const std::function<bool(std::string_view, std::string_view)>& fn) override;
  Status Flush() override;
  Status CompactAll() override;
  Status Checkpoint(const std::string& dir) override;

 private:
  void CommitLoop();
  void CommitGroup(std::vector<Pending>& group);

  DbOptions opts_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::vector<std::string> names_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // GUARDED_BY(mu_)
  // Operations waiting in queue_. Past kMaxQueuedOps asynchronous writes are
  // refused (a clear error the caller handles) and synchronous ones wait.
  static constexpr size_t kMaxQueuedOps = 1 << 20;
  size_t queued_ops_ = 0;  // GUARDED_BY(mu_)
  std::condition_variable room_cv_;
  Counter* m_refused_ = nullptr;
  bool stopping_ = false;      // GUARDED_BY(mu_)
  std::thread committer_;

  Counter* commits_ = nullptr;
  Counter* ops_ = nullptr;
  Counter* errors_ = nullptr;
  Histogram* group_size_ = nullptr;
  Histogram* commit_seconds_ = nullptr;
};

rocksdb::Options MakeOptions(const StoreConfig& cfg) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  o.IncreaseParallelism(2);
  o.write_buffer_size = cfg.write_buffer_mb << 20;
  o.max_total_wal_size = 4 * (cfg.write_buffer_mb << 20);
  o.compression = rocksdb::kLZ4Compression;
  o.keep_log_file_num = 5;
  o.max_log_file_size = 8 << 20;
  rocksdb::BlockBasedTableOptions t;
  // Index and filter blocks stay with their open table files, outside the block
  // cache (about 1.25 bytes of filter a key): a filter of a large file does not
  // fit one cache shard, and a point lookup of an absent key would then read the
  // whole filter from the file every time.
  t.block_cache = rocksdb::NewLRUCache(cfg.block_cache_mb << 20);
  t.cache_index_and_filter_blocks = false;
  // Point lookups of absent keys (a user's first event, a new session) are common:
  // a bloom filter answers most of them without reading a block.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

Status RocksDb::OpenAt(const std::string& dir, const std::vector<std::string>& families) {
  rocksdb::Options options = MakeOptions(opts_.store);
  std::set<std::string> want(families.begin(), families.end());
  want.insert(rocksdb::kDefaultColumnFamilyName);
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(options, dir, &existing).ok()) {
    want.insert(existing.begin(), existing.end());
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& name : want) {
    descs.emplace_back(name, rocksdb::ColumnFamilyOptions(options));
    names_.push_back(name);
  }
  rocksdb::DB* raw = nullptr;
  HERALD_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(options, dir, descs, &handles_, &raw),
                                   "opening store at " + dir));
  db_.reset(raw);
  if (opts_.metrics) {
    MetricsRegistry& m = *opts_.metrics;
    commits_ = &m.GetCounter("herald_store_commits_total", "Group commits written to RocksDB.");
    ops_ = &m.GetCounter("herald_store_write_ops_total", "Puts and deletes written.");
    errors_ = &m.GetCounter("herald_store_write_errors_total", "Group commits that failed.");
    group_size_ = &m.GetHistogram("herald_store_group_ops", "Operations per group commit.",
                                  {1, 4, 16, 64, 256, 1024, 4096, 16384});
    commit_seconds_ = &m.GetHistogram("herald_store_commit_seconds",
                                      "Time to write one group commit.", LatencyBuckets());
    m_refused_ = &m.GetCounter("herald_store_writes_refused_total",
                               "Asynchronous writes refused because the write queue was full.");
  }
  committer_ = std::thread([this] { CommitLoop(); });
  return Status::Ok();
}

RocksDb::~RocksDb() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  room_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  if (db_) db_->Close().PermitUncheckedError();
}

Result<ColumnFamily> RocksDb::Family(std::string_view name) const {
  for (std::uint32_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return ColumnFamily{i};
  }
  return Status::NotFound("no column family " + std::string(name));
}

Result<std::optional<std::string>> RocksDb::Get(ColumnFamily cf, std::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_.at(cf.index),
                               rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get");
  return std::optional<std::string>(std::move(value));
}

Status RocksDb::Write(WriteBatch batch) {
  // A synchronous writer waits for room rather than failing: it can afford to.
  {
    std::unique_lock<std::mutex> lock(mu_);
    room_cv_.wait(lock, [&] { return queued_ops_ < kMaxQueuedOps || stopping_; });
  }
  std::promise<Status> p;
  auto f = p.get_future();
  WriteAsync(std::move(batch), [&p](Status s) { p.set_value(std::move(s)); }, /*bounded=*/false);
  return f.get();
}

void RocksDb::WriteAsync(WriteBatch batch, std::function<void(Status)> done) {
  WriteAsync(std::move(batch), std::move(done), /*bounded=*/true);
}

void RocksDb::WriteAsync(WriteBatch batch, std::function<void(Status)> done, bool bounded) {
  Status refused = Status::Unavailable("store is closing");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && (!bounded || queued_ops_ < kMaxQueuedOps)) {
      queued_ops_ += batch.size();
      queue_.push_back({std::move(batch), std::move(done)});
      cv_.notify_one();
      return;
    }
    if (!stopping_) {
      refused = Status::ResourceExhausted("the store's write queue is full (" +
                                          std::to_string(queued_ops_) + " operations waiting)");
    }
  }
  if (m_refused_) m_refused_->Inc();
  done(refused);
}

void RocksDb::CommitLoop() {
  std::vector<Pending> group;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and everything is committed
      // Take whole batches until the group is full; a single batch larger than the
      // cap still goes alone, since a batch is atomic.
      size_t ops = 0;
      while (!queue_.empty() &&
             (group.empty() || ops + queue_.front().batch.size() <= opts_.store.max_batch_ops)) {
        ops += queue_.front().batch.size();
        queued_ops_ -= queue_.front().batch.size();
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    room_cv_.notify_all();
    CommitGroup(group);
    group.clear();
  }
}

void RocksDb::CommitGroup(std::vector<Pending>& group) {
  auto start = std::chrono::steady_clock::now();
  rocksdb::WriteBatch wb;
  size_t ops = 0;
  for (const Pending& p : group) {
    for (const WriteBatch::Op& op : p.batch.ops()) {
      rocksdb::ColumnFamilyHandle* h = handles_.at(op.cf.index);
      rocksdb::Status s = op.is_delete ? wb.Delete(h, op.key) : wb.Put(h, op.key, op.value);
      s.PermitUncheckedError();
      ++ops;
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = opts_.store.sync == SyncMode::kFsync;
  Status st = ops ? FromRocks(db_->Write(wo, &wb), "write") : Status::Ok();
  if (commits_) {
    commits_->Inc();
    ops_->Inc(ops);
    if (!st.ok()) errors_->Inc();
    group_size_->Observe(static_cast<double>(ops));
    commit_seconds_->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  for (Pending& p : group) p.done(st);
}

namespace {

// The first key after every key that starts with `prefix` (empty: none, the
// prefix is all 0xff bytes or empty). An iterator bounded by it stops at the
// prefix's end instead of walking the deleted and overwritten records after it
// to the next live key.
std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

}  // namespace

Status RocksDb::Scan(ColumnFamily cf, std::string_view prefix,
                     const std::function<bool(std::string_view, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  // A whole family is read once, at start-up: it must not push the hot records
  // out of the block cache (nor grow the process by the cache's size).
  ro.fill_cache = !prefix.empty();
  const std::string end = PrefixEnd(prefix);
  rocksdb::Slice bound(end);
  if (!end.empty()) ro.iterate_upper_bound = &bound;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_.at(cf.index)));
  rocksdb::Slice p(prefix.data(), prefix.size());
  for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
    if (!fn(std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  return FromRocks(it->status(), "scan");
}

Status RocksDb::ScanFrom(ColumnFamily cf, std::string_view prefix, std::string_view start,
                         const std::function<bool(std::string_view, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  const std::string end = PrefixEnd(prefix);
  rocksdb::Slice bound(end);
  if (!end.empty()) ro.iterate_upper_bound = &bound;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_.at(cf.index)));
  rocksdb::Slice p(prefix.data(), prefix.size());
  std::string_view from = start > prefix ? start : prefix;
  for (it->Seek(rocksdb::Slice(from.data(), from.size())); it->Valid() && it->key().starts_with(p);
       it->Next()) {
    if (!fn(std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  return FromRocks(it->status(), "scan");
}

Status RocksDb::Flush() {
  rocksdb::FlushOptions fo;
  return FromRocks(db_->Flush(fo, handles_), "flush");
}

Status RocksDb::CompactAll() {
  HERALD_RETURN_IF_ERROR(Flush());
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    HERALD_RETURN_IF_ERROR(FromRocks(db_->CompactRange(co, h, nullptr, nullptr), "compaction"));
  }
  return Status::Ok();
}

Status RocksDb::Checkpoint(const std::string& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  HERALD_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  return FromRocks(cp->CreateCheckpoint(dir), "checkpoint to " + dir);
}

}  // namespace

Result<std::unique_ptr<Db>> Db::Open(const std::string& dir, const DbOptions& options,
                                     const std::vector<std::string>& column_families) {
  auto db = std::make_unique<RocksDb>(options);
  HERALD_RETURN_IF_ERROR(db->OpenAt(dir, column_families));
  return std::unique_ptr<Db>(std::move(db));
}

std::string TenantPrefix(std::string_view tenant_id) {
  std::string k(tenant_id);
  k.push_back('\0');
  return k;
}

std::string TenantKey(std::string_view tenant_id, std::string_view rest) {
  std::string k = TenantPrefix(tenant_id);
  k.append(rest);
  return k;
}

}  // namespace herald::store
