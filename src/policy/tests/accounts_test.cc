// The account directory: accounts survive a reopen, unreadable records are
// skipped, and reputation turns marks per push into a weight and a reach.
#include "policy/accounts.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace herald::policy {
namespace {

TEST(AccountDirectoryTest, AccountsSurviveAReopenAndBadRecordsAreSkipped) {
  auto dir = std::filesystem::temp_directory_path() / ("accounts-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  VirtualClock clock(1'772'323'200'000'000);
  PolicyConfig cfg;
  {
    auto db = store::Db::Open(dir.string(), {}, {kAccountsFamily}).value();
    auto accounts = AccountDirectory::Load(db.get(), &clock, cfg).value();
    ASSERT_TRUE(accounts->Upsert("t", Account{"svc", AccountType::kService, "Service", 0.7, 0}).ok());
    ASSERT_TRUE(accounts->Upsert("t", Account{"ad", AccountType::kAd, "", 1, 0}).ok());
    ASSERT_TRUE(accounts->Upsert("other", Account{"svc", AccountType::kBusiness, "", 1, 0}).ok());
    store::WriteBatch b;
    b.Put(db->Family(kAccountsFamily).value(), store::TenantKey("t", "junk"), "{not json");
    ASSERT_TRUE(db->Write(std::move(b)).ok());
  }
  auto db = store::Db::Open(dir.string(), {}, {kAccountsFamily}).value();
  auto accounts = AccountDirectory::Load(db.get(), &clock, cfg).value();
  EXPECT_EQ(accounts->skipped_records(), 1u);
  auto svc = accounts->Find("t", "svc");
  ASSERT_TRUE(svc);
  EXPECT_EQ(svc->type, AccountType::kService);
  EXPECT_DOUBLE_EQ(svc->quality, 0.7);
  EXPECT_EQ(svc->created_at, clock.Now());
  EXPECT_EQ(accounts->Find("other", "svc")->type, AccountType::kBusiness);
  EXPECT_EQ(accounts->List("t").size(), 2u);
  EXPECT_EQ(accounts->NameOf("t", AccountKey("ad")), "ad");
  EXPECT_FALSE(accounts->Find("t", "nope"));
  db.reset();
  std::filesystem::remove_all(dir);
}

TEST(AccountDirectoryTest, MarksPerPushDownWeightThenThrottle) {
  auto dir = std::filesystem::temp_directory_path() / ("accounts-rep-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  VirtualClock clock(0);
  PolicyConfig cfg;  // 100 pushes at least; 2% down-weights, 5% throttles; a complaint is 3 marks
  auto db = store::Db::Open(dir.string(), {}, {kAccountsFamily}).value();
  auto accounts = AccountDirectory::Load(db.get(), &clock, cfg).value();
  Account a{"a", AccountType::kBusiness, "", 1, 0};
  auto view = [&](std::uint64_t pushes, std::uint64_t marks, std::uint64_t complaints) {
    accounts->SetReputation({{{"t", AccountKey("a")}, AccountCounts{pushes, marks, complaints}}});
    return accounts->View("t", a);
  };
  EXPECT_DOUBLE_EQ(view(99, 50, 0).weight, 1);   // too few pushes to judge
  EXPECT_DOUBLE_EQ(view(100, 1, 0).weight, 1);   // 1%
  EXPECT_DOUBLE_EQ(view(100, 2, 0).weight, 0.5); // 2%: down-weighted
  EXPECT_DOUBLE_EQ(view(100, 2, 0).reach, 1);
  EXPECT_DOUBLE_EQ(view(100, 4, 0).reach, 1);
  EXPECT_DOUBLE_EQ(view(100, 5, 0).reach, 0.2);  // 5%: throttled
  EXPECT_DOUBLE_EQ(view(100, 2, 1).reach, 0.2);  // 2 marks + 1 complaint x 3 = 5%
  EXPECT_DOUBLE_EQ(view(100, 2, 1).rate, 0.05);
  EXPECT_DOUBLE_EQ(accounts->View("t", Account{"b", AccountType::kBusiness, "", 1, 0}).reach, 1);
  db.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::policy
