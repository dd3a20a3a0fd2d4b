// Db: herald's keyed storage (levels L2 and L3 of the cache hierarchy), on RocksDB.
//
// A Db holds named column families, one per kind of record. Writes are grouped:
// concurrent writers hand their batches to one committer thread, which merges them
// (up to StoreOptions::max_batch_ops operations) into a single RocksDB write and
// then acknowledges each. A write is acknowledged only after RocksDB has accepted
// it into its write-ahead log, so an acknowledged write survives kill -9; with
// SyncMode::kFsync each group also ends with one fsync and survives power loss.
//
// RocksDB types never appear in this header: errors come back as Status.
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store_config.h"
#include "core/status.h"

namespace herald {
class MetricsRegistry;
}

namespace herald::store {

// Index of a column family, from Db::Family(). Cheap to copy.
struct ColumnFamily {
  std::uint32_t index = 0;
};

// A set of puts and deletes applied atomically.
class WriteBatch {
 public:
  void Put(ColumnFamily cf, std::string_view key, std::string_view value) {
    ops_.push_back({cf, false, std::string(key), std::string(value)});
  }
  void Delete(ColumnFamily cf, std::string_view key) {
    ops_.push_back({cf, true, std::string(key), {}});
  }
  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }

  struct Op {
    ColumnFamily cf;
    bool is_delete;
    std::string key;
    std::string value;
  };
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
};

struct DbOptions {
  StoreConfig store;
  // Where to publish herald_store_* metrics; may be null.
  MetricsRegistry* metrics = nullptr;
};

class Db {
 public:
  // Opens (creating if needed) the database in `dir` with at least the named column
  // families ("default" is always present). Column families found on disk but not
  // named are opened too, so an older binary never refuses a newer database.
  static Result<std::unique_ptr<Db>> Open(const std::string& dir, const DbOptions& options,
                                          const std::vector<std::string>& column_families);

  virtual ~Db() = default;

  // The column family with this name; NotFound if it was not opened.
  virtual Result<ColumnFamily> Family(std::string_view name) const = 0;

  // The value at `key`, or nullopt when absent.
  virtual Result<std::optional<std::string>> Get(ColumnFamily cf, std::string_view key) = 0;

  // Applies `batch` through the group commit and returns once it is acknowledged.
  virtual Status Write(WriteBatch batch) = 0;

  // Applies `batch` through the group commit and calls `done` once it is
  // acknowledged (or failed). `done` runs on the committer thread: it must be
  // short and must not call Write() (it may call WriteAsync()). Never blocks:
  // when about a million operations are already waiting, `done` gets
  // ResourceExhausted at once, on the calling thread. Write() waits for room
  // instead.
  virtual void WriteAsync(WriteBatch batch, std::function<void(Status)> done) = 0;

  // WriteAsync() that is never refused for a full queue: for writes whose callers
  // are bounded already and whose loss would cost more than their memory
  // (checkpoints, the broker's bookkeeping of what it has acknowledged).
  virtual void WriteAsyncAlways(WriteBatch batch, std::function<void(Status)> done) {
    WriteAsync(std::move(batch), std::move(done));
  }

  // Calls fn(key, value) for each key starting with `prefix`, in key order, until
  // fn returns false. A scan of a whole family (empty prefix) leaves the block
  // cache as it was.
  virtual Status Scan(ColumnFamily cf, std::string_view prefix,
                      const std::function<bool(std::string_view, std::string_view)>& fn) = 0;

  // Scan() of the keys with `prefix` that are >= `start`: reading the tail of a
  // long range does not pay for its head.
  virtual Status ScanFrom(ColumnFamily cf, std::string_view prefix, std::string_view start,
                          const std::function<bool(std::string_view, std::string_view)>& fn) {
    return Scan(cf, prefix, [&](std::string_view k, std::string_view v) {
      return k < start ? true : fn(k, v);
    });
  }

  // Flushes memtables to SST files (used at clean shutdown to speed up reopening).
  virtual Status Flush() = 0;
  // Flushes, then compacts every family fully (deleted and overwritten records
  // are gone from disk afterwards). Blocking: never on a shard or an I/O loop.
  virtual Status CompactAll() = 0;

  // Writes a consistent, openable copy of the database to `dir` (hard links where
  // possible). `dir` must not exist.
  virtual Status Checkpoint(const std::string& dir) = 0;
};

// Keys of tenant-scoped records: "<tenant_id>\0<rest>". Tenant ids never contain
// NUL (see core/ids.h), so a tenant's records form one contiguous, prefix-scannable
// range. This is an on-disk format.
std::string TenantKey(std::string_view tenant_id, std::string_view rest);
std::string TenantPrefix(std::string_view tenant_id);

}  // namespace herald::store
