#include "mqtt/devices.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace herald::mqtt {
namespace {

TEST(DevicesTest, TokensAuthenticateRevokeAndSurviveReopen) {
  auto dir = std::filesystem::temp_directory_path() / ("devices-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  SystemClock clock;
  std::string t1, t2;
  {
    auto db = store::Db::Open(dir.string(), {}, {kDevicesFamily}).value();
    auto reg = DeviceRegistry::Open(db.get(), &clock).value();
    t1 = reg->Register("shop", "u1", "d1").value();
    auto id = reg->Authenticate("d1", t1).value();
    EXPECT_EQ(id.tenant, "shop");
    EXPECT_EQ(id.user_id, "u1");
    EXPECT_EQ(id.device_id, "d1");
    EXPECT_FALSE(reg->Authenticate("d2", t1).ok());             // another device's name
    EXPECT_FALSE(reg->Authenticate("d1", t1 + "x").ok());       // tampered mac
    EXPECT_FALSE(reg->Authenticate("d1", "other" + t1.substr(4)).ok());  // other tenant
    EXPECT_FALSE(reg->Authenticate("d1", "garbage").ok());
    t2 = reg->Register("shop", "u1", "d1").value();  // re-issue: the old token dies
    EXPECT_FALSE(reg->Authenticate("d1", t1).ok());
    EXPECT_TRUE(reg->Authenticate("d1", t2).ok());
    EXPECT_FALSE(reg->Register("shop", "u/1", "d9").ok());
  }
  auto db = store::Db::Open(dir.string(), {}, {kDevicesFamily}).value();
  auto reg = DeviceRegistry::Open(db.get(), &clock).value();
  EXPECT_TRUE(reg->Authenticate("d1", t2).ok());  // same secret after reopening
  EXPECT_TRUE(reg->Revoke("shop", "d1").ok());
  EXPECT_FALSE(reg->Authenticate("d1", t2).ok());
  EXPECT_EQ(reg->Revoke("shop", "d1").code(), Code::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::mqtt

namespace herald::mqtt {
namespace {

// The stored device record (devices family, tenant \0 device_id): its fields and
// their types are an on-disk format.
TEST(DevicesTest, RecordFormatAndUnreadableRecordsAreSkipped) {
  auto dir = std::filesystem::temp_directory_path() / ("devices-fmt-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  VirtualClock clock(1767571200LL * kMicrosPerSecond);
  std::string token;
  {
    auto db = store::Db::Open(dir.string(), {}, {kDevicesFamily}).value();
    auto reg = DeviceRegistry::Open(db.get(), &clock).value();
    token = reg->Register("shop", "u1", "d1").value();
    auto cf = db->Family(kDevicesFamily).value();
    std::string rec = db->Get(cf, std::string("shop\0d1", 7)).value().value();
    std::string nonce = token.substr(5, token.find('.', 5) - 5);  // "shop.<nonce>.<mac>"
    EXPECT_EQ(rec, R"({"nonce":")" + nonce + R"(","registered_at":1767571200000000,"user_id":"u1"})");
    store::WriteBatch b;
    b.Put(cf, std::string("shop\0bad", 8), "[]");
    b.Put(cf, std::string("shop\0typed", 10), R"({"user_id":1,"nonce":"n"})");
    ASSERT_TRUE(db->Write(std::move(b)).ok());
  }
  auto db = store::Db::Open(dir.string(), {}, {kDevicesFamily}).value();
  auto reg = DeviceRegistry::Open(db.get(), &clock);
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  EXPECT_EQ((*reg)->skipped_records(), 2u);
  EXPECT_TRUE((*reg)->Authenticate("d1", token).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::mqtt
