#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "core/metrics.h"
#include "store/db.h"

namespace herald::store {
namespace {

std::string TempDir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           (name + "-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
  std::filesystem::remove_all(p);
  return p.string();
}

std::unique_ptr<Db> OpenOrDie(const std::string& dir, MetricsRegistry* m = nullptr) {
  DbOptions o;
  o.store.block_cache_mb = 8;
  o.store.write_buffer_mb = 4;
  o.metrics = m;
  auto db = Db::Open(dir, o, {"tenants", "events"});
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return std::move(db).value();
}

TEST(DbTest, PutGetDeleteAndScanByPrefix) {
  auto dir = TempDir("db");
  auto db = OpenOrDie(dir);
  auto cf = db->Family("tenants").value();
  WriteBatch b;
  b.Put(cf, TenantKey("t1", "a"), "1");
  b.Put(cf, TenantKey("t1", "b"), "2");
  b.Put(cf, TenantKey("t10", "a"), "3");
  b.Put(cf, TenantKey("t2", "a"), "4");
  ASSERT_TRUE(db->Write(std::move(b)).ok());
  EXPECT_EQ(db->Get(cf, TenantKey("t1", "b")).value(), "2");
  EXPECT_FALSE(db->Get(cf, TenantKey("t1", "zz")).value().has_value());

  // A tenant's prefix never covers another tenant whose id merely starts the same.
  std::vector<std::string> seen;
  ASSERT_TRUE(db->Scan(cf, TenantPrefix("t1"), [&](std::string_view k, std::string_view v) {
                  seen.push_back(std::string(k.substr(3)) + "=" + std::string(v));
                  return true;
                }).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"a=1", "b=2"}));

  WriteBatch d;
  d.Delete(cf, TenantKey("t1", "a"));
  ASSERT_TRUE(db->Write(std::move(d)).ok());
  EXPECT_FALSE(db->Get(cf, TenantKey("t1", "a")).value().has_value());
  std::filesystem::remove_all(dir);
}

TEST(DbTest, ColumnFamiliesAreSeparateAndSurviveReopen) {
  auto dir = TempDir("db");
  {
    auto db = OpenOrDie(dir);
    WriteBatch b;
    b.Put(db->Family("events").value(), "k", "events-value");
    b.Put(db->Family("tenants").value(), "k", "tenants-value");
    ASSERT_TRUE(db->Write(std::move(b)).ok());
    EXPECT_EQ(db->Family("nope").status().code(), Code::kNotFound);
  }
  DbOptions o;
  auto db = Db::Open(dir, o, {}).value();  // families on disk open even when not named
  EXPECT_EQ(db->Get(db->Family("events").value(), "k").value(), "events-value");
  EXPECT_EQ(db->Get(db->Family("tenants").value(), "k").value(), "tenants-value");
  std::filesystem::remove_all(dir);
}

// Many concurrent writers are merged into far fewer RocksDB writes.
TEST(DbTest, ConcurrentWritersShareGroupCommits) {
  auto dir = TempDir("db");
  MetricsRegistry metrics;
  auto db = OpenOrDie(dir, &metrics);
  auto cf = db->Family("events").value();
  constexpr int kThreads = 8, kPer = 2000;
  std::atomic<int> acked{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        WriteBatch b;
        b.Put(cf, std::to_string(t) + "/" + std::to_string(i), "v");
        db->WriteAsync(std::move(b), [&](Status s) {
          if (s.ok()) acked++;
        });
      }
    });
  }
  for (auto& t : ts) t.join();
  WriteBatch last;
  last.Put(cf, "last", "v");
  ASSERT_TRUE(db->Write(std::move(last)).ok());  // FIFO: everything before is acked too
  EXPECT_EQ(acked.load(), kThreads * kPer);
  auto commits = metrics.GetCounter("herald_store_commits_total", "").Value();
  auto ops = metrics.GetCounter("herald_store_write_ops_total", "").Value();
  EXPECT_EQ(ops, static_cast<std::uint64_t>(kThreads * kPer + 1));
  EXPECT_LT(commits, ops);
  std::filesystem::remove_all(dir);
}

TEST(DbTest, CheckpointIsAnOpenableCopy) {
  auto dir = TempDir("db");
  auto cp = TempDir("cp");
  {
    auto db = OpenOrDie(dir);
    WriteBatch b;
    b.Put(db->Family("events").value(), "k", "v");
    ASSERT_TRUE(db->Write(std::move(b)).ok());
    ASSERT_TRUE(db->Checkpoint(cp).ok());
  }
  auto copy = OpenOrDie(cp);
  EXPECT_EQ(copy->Get(copy->Family("events").value(), "k").value(), "v");
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(cp);
}

// Asynchronous writes are bounded: past about a million waiting operations they
// are refused at once, while WriteAsyncAlways() and Write() still get through.
TEST(DbTest, AsynchronousWritesAreRefusedPastTheQueueBound) {
  auto dir = TempDir("db");
  MetricsRegistry m;
  auto db = OpenOrDie(dir, &m);
  auto cf = db->Family("events").value();
  constexpr int kOps = (1 << 20) + 16;
  WriteBatch first, second;
  for (int i = 0; i < kOps; ++i) {
    first.Delete(cf, "a" + std::to_string(i));
    second.Delete(cf, "b" + std::to_string(i));
  }
  std::atomic<int> done{0};
  // Each exceeds a group, so `second` waits in the queue while `first` commits.
  db->WriteAsyncAlways(std::move(first), [&](Status s) { EXPECT_TRUE(s.ok()); ++done; });
  db->WriteAsyncAlways(std::move(second), [&](Status s) { EXPECT_TRUE(s.ok()); ++done; });
  Status refused = Status::Ok();
  WriteBatch small;
  small.Put(cf, "x", "1");
  db->WriteAsync(std::move(small), [&](Status s) { refused = s; });  // answered on this thread
  EXPECT_EQ(refused.code(), Code::kResourceExhausted) << refused.ToString();
  std::atomic<bool> always{false};
  WriteBatch must;
  must.Put(cf, "y", "1");
  db->WriteAsyncAlways(std::move(must), [&](Status s) { always = s.ok(); });
  WriteBatch waits;
  waits.Put(cf, "z", "1");
  EXPECT_TRUE(db->Write(std::move(waits)).ok());  // waits for room, then commits
  while (done < 2 || !always) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(db->Get(cf, "y").value().has_value());
  EXPECT_FALSE(db->Get(cf, "x").value().has_value());
  db.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::store
