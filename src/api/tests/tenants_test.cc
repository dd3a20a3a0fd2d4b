#include <gtest/gtest.h>

#include <filesystem>

#include "api/tenants.h"

namespace herald::api {
namespace {

TEST(TenantsTest, KeysAuthenticateTheirTenantAndSurviveReopen) {
  auto dir = std::filesystem::temp_directory_path() / ("tenants-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  SystemClock clock;
  std::string admin_key, app_key;
  {
    auto db = store::Db::Open(dir.string(), {}, {kTenantsFamily}).value();
    auto t = TenantDirectory::Load(db.get(), &clock).value();
    EXPECT_TRUE(t->empty());
    admin_key = t->Create("default", "Default", true).value().api_key;
    app_key = t->Create("app2", "", false).value().api_key;
    EXPECT_EQ(t->Create("app2", "", false).status().code(), Code::kAlreadyExists);
    EXPECT_EQ(t->Create("bad/id", "", false).status().code(), Code::kInvalidArgument);
    EXPECT_NE(admin_key, app_key);
    EXPECT_EQ(admin_key.substr(0, 3), "hk_");
    EXPECT_EQ(admin_key.size(), 46u);
  }
  auto db = store::Db::Open(dir.string(), {}, {kTenantsFamily}).value();
  auto t = TenantDirectory::Load(db.get(), &clock).value();
  bool admin = false;
  EXPECT_EQ(t->Authenticate(admin_key, &admin).value(), "default");
  EXPECT_TRUE(admin);
  EXPECT_EQ(t->Authenticate(app_key, &admin).value(), "app2");
  EXPECT_FALSE(admin);
  EXPECT_EQ(t->Authenticate("hk_wrong", &admin).status().code(), Code::kUnauthenticated);
  ASSERT_EQ(t->List().size(), 2u);
  EXPECT_EQ(t->List()[0].name, "app2");  // sorted by id
  EXPECT_EQ(t->List()[1].name, "Default");

  // Only the hash of a key is stored.
  auto cf = db->Family(kTenantsFamily).value();
  bool leaked = false;
  ASSERT_TRUE(db->Scan(cf, "", [&](std::string_view, std::string_view v) {
                  leaked |= v.find(app_key) != std::string_view::npos;
                  return true;
                }).ok());
  EXPECT_FALSE(leaked);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::api

namespace herald::api {
namespace {

// The stored tenant record (tenants family, "t/<id>"): its fields and their types
// are an on-disk format.
TEST(TenantsTest, RecordFormatAndUnreadableRecordsAreSkipped) {
  auto dir = std::filesystem::temp_directory_path() / ("tenants-fmt-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  VirtualClock clock(1767571200LL * kMicrosPerSecond);
  std::string key;
  {
    auto db = store::Db::Open(dir.string(), {}, {kTenantsFamily}).value();
    auto t = TenantDirectory::Load(db.get(), &clock).value();
    key = t->Create("shop", "Shop", false).value().api_key;
    auto cf = db->Family(kTenantsFamily).value();
    std::string rec = db->Get(cf, "t/shop").value().value();
    std::string hash = Sha256Hex(key);
    EXPECT_EQ(rec, R"({"admin":false,"created_at":1767571200000000,"id":"shop","key_sha256":")" +
                       hash + R"(","name":"Shop"})");
    store::WriteBatch b;
    b.Put(cf, "t/broken", "{not json");
    b.Put(cf, "t/typed", R"({"id":7,"key_sha256":"x"})");
    ASSERT_TRUE(db->Write(std::move(b)).ok());
  }
  auto db = store::Db::Open(dir.string(), {}, {kTenantsFamily}).value();
  auto t = TenantDirectory::Load(db.get(), &clock);
  ASSERT_TRUE(t.ok()) << t.status().ToString();  // the server still starts
  EXPECT_EQ((*t)->skipped_records(), 2u);
  bool admin = true;
  EXPECT_EQ((*t)->Authenticate(key, &admin).value(), "shop");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::api
