// A store::Db that passes everything to a real one, except that it fails reads
// or writes on demand, as a failing disk would. Thread-safe.
#pragma once

#include <atomic>
#include <memory>

#include "store/db.h"

namespace herald::stream::testing {

class FaultyDb final : public store::Db {
 public:
  explicit FaultyDb(std::unique_ptr<store::Db> real) : real_(std::move(real)) {}

  std::atomic<bool> fail_writes{false};
  std::atomic<bool> fail_reads{false};
  std::atomic<int> failed_writes{0};

  Result<store::ColumnFamily> Family(std::string_view name) const override { return real_->Family(name); }
  Result<std::optional<std::string>> Get(store::ColumnFamily cf, std::string_view key) override {
    if (fail_reads) return Status::IoError("injected read error");
    return real_->Get(cf, key);
  }
  Status Write(store::WriteBatch batch) override {
    if (fail_writes) {
      ++failed_writes;
      return Status::IoError("injected write error");
    }
    return real_->Write(std::move(batch));
  }
  void WriteAsync(store::WriteBatch batch, std::function<void(Status)> done) override {
    if (fail_writes) {
      ++failed_writes;
      return done(Status::IoError("injected write error"));
    }
    real_->WriteAsync(std::move(batch), std::move(done));
  }
  Status Scan(store::ColumnFamily cf, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    if (fail_reads) return Status::IoError("injected read error");
    return real_->Scan(cf, prefix, fn);
  }
  Status Flush() override { return real_->Flush(); }
  Status CompactAll() override { return real_->CompactAll(); }
  Status Checkpoint(const std::string& dir) override { return real_->Checkpoint(dir); }

 private:
  std::unique_ptr<store::Db> real_;
};

}  // namespace herald::stream::testing
